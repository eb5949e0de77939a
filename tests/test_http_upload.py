"""Uploads through the test client: POST multipart and raw PUT, the upload
response, options, custom slugs, malformed bodies, hostile filenames, the size limit and
upload tokens. Every refused upload is also checked to leave nothing on disk or in the
metadata store."""

from __future__ import annotations

import dataclasses
import io
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from teledrop import hookimpl
from teledrop.core.drop import Drop
from teledrop.web.app import service_of
from tests.http_helpers import (
    BOUNDARY,
    DROP_FIELDS,
    ISO_Z,
    JSON,
    MULTIPART,
    Part,
    assert_json_error,
    assert_nothing_stored,
    assert_text_error,
    blake3_hash,
    created_json,
    epoch,
    field_part,
    file_part,
    lifetime,
    multipart_body,
    post_file,
    post_parts,
    put_file,
    records,
    slug_of,
    stored_paths,
    upload,
)

DAY = 86400


def download(client: Any, drop: dict[str, Any]) -> bytes:
    response = client.get(f"/{drop['slug']}")
    assert response.status_code == 200
    return response.data


# --- the upload response ---------------------------------------------------------------

def test_post_answers_201_with_location_token_and_the_link_alone(client: Any) -> None:
    response = post_file(client)
    assert response.status_code == 201
    slug = slug_of(response)
    assert re.fullmatch(r"[A-Za-z0-9_-]{8,}", slug)
    assert response.headers["X-Delete-Token"]
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == f"http://localhost/{slug}\n"


def test_post_with_accept_json_answers_the_drop_and_its_delete_token(client: Any) -> None:
    before = time.time()
    response = post_file(client, b"hello world", "notes.txt", headers=JSON)
    drop = created_json(response)
    assert set(drop) == DROP_FIELDS | {"delete_token"}
    assert drop["slug"] == slug_of(response)
    assert drop["url"] == f"http://localhost/{drop['slug']}"
    assert drop["filename"] == "notes.txt"
    assert drop["size"] == 11
    assert drop["content_type"] == "text/plain"
    assert drop["hash"] == blake3_hash(b"hello world")
    assert re.fullmatch(ISO_Z, drop["created_at"]) and re.fullmatch(ISO_Z, drop["expires_at"])
    assert before - 1 <= epoch(drop["created_at"]) <= time.time()
    assert lifetime(drop) == 7 * DAY
    assert drop["max_downloads"] is None and drop["downloads"] == 0
    assert drop["delete_token"] == response.headers["X-Delete-Token"]


@pytest.mark.parametrize(("accept", "json_expected"), [
    ("text/plain;q=0.5, application/json", True),
    ("application/json;q=0, text/plain", False),
    ("*/*", False),
])
def test_json_is_chosen_only_when_accept_names_it(client: Any, accept: str,
                                                  json_expected: bool) -> None:
    response = post_file(client, headers={"Accept": accept})
    assert response.status_code == 201
    assert (response.mimetype == "application/json") is json_expected


def test_generated_slugs_differ(client: Any) -> None:
    slugs = {slug_of(post_file(client)) for _ in range(5)}
    assert len(slugs) == 5


def test_bytes_that_look_like_multipart_framing_survive_intact(client: Any) -> None:
    # Partial boundaries and CRLFs inside the file, across several 1 MiB reads.
    data = (os.urandom(700_000) + b"\r\n--td-boundary-7Q\r\n--\r\n") * 3
    drop = created_json(post_file(client, data, "blob.bin", headers=JSON))
    assert drop["size"] == len(data) and drop["hash"] == blake3_hash(data)
    assert download(client, drop) == data


def test_a_file_part_without_filename_is_named_file(client: Any) -> None:
    drop = created_json(post_parts(client, Part("file", b"abc"), headers=JSON))
    assert drop["filename"] == "file"
    assert download(client, drop) == b"abc"


def test_put_filename_stores_the_raw_body_under_that_name(client: Any) -> None:
    data = os.urandom(50_000)
    drop = created_json(put_file(client, "/report.pdf", data, headers=JSON))
    assert drop["filename"] == "report.pdf"
    assert drop["content_type"] == "application/pdf"
    assert drop["hash"] == blake3_hash(data)
    assert download(client, drop) == data


def test_put_root_names_the_file_file(client: Any) -> None:
    response = put_file(client, "/", b"raw")
    assert response.status_code == 201
    assert response.get_data(as_text=True) == f"http://localhost/{slug_of(response)}\n"
    drop = client.get(f"/api/drops/{slug_of(response)}").get_json()
    assert drop["filename"] == "file"
    assert drop["content_type"] == "application/octet-stream"


def test_put_keeps_a_specific_content_type(client: Any) -> None:
    drop = created_json(put_file(client, "/pic", b"\x89PNG",
                                 headers={**JSON, "Content-Type": "image/png; charset=x"}))
    assert drop["content_type"] == "image/png"


@pytest.mark.parametrize("method", ["post", "put"])
def test_a_zero_byte_file_is_a_drop(client: Any, method: str) -> None:
    if method == "post":
        response = post_file(client, b"", "empty.txt", headers=JSON)
    else:
        response = put_file(client, "/empty.txt", b"", headers=JSON)
    drop = created_json(response)
    assert drop["size"] == 0 and drop["hash"] == blake3_hash(b"")
    got = client.get(f"/{drop['slug']}")
    assert got.status_code == 200 and got.data == b""
    assert got.headers["Content-Length"] == "0"


# --- options ---------------------------------------------------------------------------

EXPIRES = [("90", 90), ("30s", 30), ("15m", 900), ("2h", 7200), ("1d", DAY), ("1.5h", 5400)]


@pytest.mark.parametrize(("value", "seconds"), EXPIRES)
def test_expires_as_a_form_field(client: Any, value: str, seconds: int) -> None:
    assert lifetime(upload(client, expires=value)) == seconds


@pytest.mark.parametrize(("value", "seconds"), EXPIRES)
def test_expires_as_a_query_parameter(client: Any, value: str, seconds: int) -> None:
    drop = created_json(put_file(client, headers=JSON, query={"expires": value}))
    assert lifetime(drop) == seconds


def test_every_option_as_query_on_put(client: Any) -> None:
    drop = created_json(put_file(client, "/a.txt", b"x", headers=JSON,
                                 query={"slug": "my-put", "expires": "1h",
                                        "max_downloads": "3"}))
    assert drop["slug"] == "my-put" and lifetime(drop) == 3600 and drop["max_downloads"] == 3


def test_every_option_as_query_on_post(client: Any) -> None:
    drop = created_json(post_file(client, headers=JSON,
                                  query={"slug": "my-post", "expires": "2h",
                                         "max_downloads": "1"}))
    assert drop["slug"] == "my-post" and lifetime(drop) == 7200 and drop["max_downloads"] == 1


def test_every_option_as_form_fields(client: Any) -> None:
    drop = upload(client, slug="my-form", expires="15m", max_downloads="5")
    assert drop["slug"] == "my-form" and lifetime(drop) == 900 and drop["max_downloads"] == 5


def test_a_browser_form_posts_empty_options_which_mean_the_defaults(client: Any) -> None:
    # The upload page's form submitted without JavaScript sends every input, empty or not.
    response = post_parts(client, file_part(), field_part("expires", ""),
                          field_part("max_downloads", ""), field_part("slug", ""),
                          headers=JSON)
    drop = created_json(response)
    assert lifetime(drop) == 7 * DAY and drop["max_downloads"] is None


BAD_OPTIONS = [
    ("expires", "soon"), ("expires", "0"), ("expires", "-5"), ("expires", "1w"),
    ("expires", "5x"), ("expires", "31d"),
    ("max_downloads", "0"), ("max_downloads", "-1"), ("max_downloads", "two"),
    ("max_downloads", "1.5"), ("max_downloads", "9" * 30),
]


@pytest.mark.parametrize(("name", "value"), BAD_OPTIONS)
def test_a_bad_option_field_is_400_and_stores_nothing(make_app: Any, data_dir: Path,
                                                      name: str, value: str) -> None:
    app = make_app()
    response = post_file(app.test_client(), fields={name: value})
    assert name in assert_text_error(response, 400)
    assert_nothing_stored(app, data_dir)


@pytest.mark.parametrize(("name", "value"), BAD_OPTIONS)
def test_a_bad_option_in_the_query_is_400_with_a_json_reason(make_app: Any, data_dir: Path,
                                                             name: str, value: str) -> None:
    app = make_app()
    response = put_file(app.test_client(), headers=JSON, query={name: value})
    assert_json_error(response, 400, "invalid_option")
    assert_nothing_stored(app, data_dir)


def test_expires_is_held_to_the_configured_max_expires(make_app: Any) -> None:
    client = make_app(limits={"max_expires": "1h", "default_expires": "10m"}).test_client()
    assert_text_error(post_file(client, fields={"expires": "3601"}), 400)
    assert lifetime(upload(client, expires="1h")) == 3600
    assert lifetime(upload(client)) == 600


def test_an_option_given_twice_with_different_values_is_400(client: Any) -> None:
    response = post_file(client, fields={"expires": "1h"}, query={"expires": "2h"})
    assert_text_error(response, 400)


def test_an_option_given_twice_with_the_same_value_is_taken(client: Any) -> None:
    response = post_file(client, fields={"expires": "1h"}, query={"expires": "1h"},
                         headers=JSON)
    assert lifetime(created_json(response)) == 3600


# --- custom slugs ----------------------------------------------------------------------

@pytest.mark.parametrize("slug", ["abc", "My.File_2-final", "_x9", "9lives", "a" * 64,
                                  "report.pdf"])
def test_a_valid_custom_slug_is_the_link(client: Any, slug: str) -> None:
    drop = upload(client, b"mine", slug=slug)
    assert drop["slug"] == slug and drop["url"] == f"http://localhost/{slug}"
    assert client.get(f"/{slug}").data == b"mine"


@pytest.mark.parametrize("slug", ["ab", "a" * 65, ".hidden", "-dash", "has space",
                                  "sl/ash", "per%cent", "ünï", "semi;colon", "a\tb"])
def test_an_invalid_custom_slug_is_400(make_app: Any, data_dir: Path, slug: str) -> None:
    app = make_app()
    assert_json_error(post_file(app.test_client(), fields={"slug": slug}, headers=JSON),
                      400, "invalid_slug")
    assert_json_error(put_file(app.test_client(), query={"slug": slug}, headers=JSON),
                      400, "invalid_slug")
    assert_nothing_stored(app, data_dir)


@pytest.mark.parametrize("slug", ["api", "static", "healthz", "metrics", "openapi.json",
                                  "favicon.ico", "robots.txt", "API", "Healthz"])
def test_a_reserved_slug_is_400(make_app: Any, data_dir: Path, slug: str) -> None:
    app = make_app()
    assert_text_error(post_file(app.test_client(), fields={"slug": slug}), 400)
    assert_nothing_stored(app, data_dir)


@pytest.fixture
def taken(make_app: Any, data_dir: Path) -> tuple[Flask, dict[str, Any], set[Path]]:
    """An app with one drop under the custom slug ``taken``, and the files it holds."""
    app = make_app()
    drop = upload(app.test_client(), b"original bytes", "orig.txt", slug="taken")
    return app, drop, stored_paths(data_dir)


def assert_original_untouched(app: Flask, data_dir: Path, original: dict[str, Any],
                              files: set[Path]) -> None:
    assert stored_paths(data_dir) == files
    assert [d.slug for d in records(app)] == ["taken"]
    client = app.test_client()
    info = client.get("/api/drops/taken").get_json()
    assert info == {k: original[k] for k in DROP_FIELDS}
    assert client.get("/taken").data == b"original bytes"


@pytest.mark.parametrize("how", ["field after file", "field before file", "query post",
                                 "query put"])
def test_a_taken_slug_is_409_and_leaves_no_byte_behind(taken: Any, data_dir: Path,
                                                       how: str) -> None:
    app, original, files = taken
    client = app.test_client()
    data = os.urandom(300_000)
    if how == "field after file":
        response = post_file(client, data, fields={"slug": "taken"}, headers=JSON)
    elif how == "field before file":
        response = post_parts(client, field_part("slug", "taken"), file_part(data),
                              headers=JSON)
    elif how == "query post":
        response = post_file(client, data, query={"slug": "taken"}, headers=JSON)
    else:
        response = put_file(client, "/x.bin", data, query={"slug": "taken"}, headers=JSON)
    assert_json_error(response, 409, "slug_taken")
    assert_original_untouched(app, data_dir, original, files)


class RivalInsert:
    """Records a rival drop under the upload's slug just before teledrop's own insert, so
    the database's UNIQUE constraint (not the early check) is what refuses the upload."""

    teledrop_plugin_name = "rival_insert"
    app: Flask

    @hookimpl(specname="teledrop_commit_drop", wrapper=True)
    def insert_rival(self, drop: Drop) -> Any:
        rival = dataclasses.replace(drop, blob_id="0" * 32, delete_token_hash="rival")
        service_of(self.app).metadata.insert(rival)
        return (yield)


def test_a_slug_taken_at_insert_time_is_409_and_the_published_blob_is_removed(
        make_app: Any, data_dir: Path) -> None:
    rival = RivalInsert()
    app = rival.app = make_app(plugins=[rival])
    response = post_file(app.test_client(), os.urandom(10_000), fields={"slug": "raced"})
    assert_text_error(response, 409)
    assert stored_paths(data_dir) == set()
    assert [(d.slug, d.blob_id) for d in records(app)] == [("raced", "0" * 32)]


class HasherSpy:
    """Counts the hashers asked for: one per file part that reaches the staging writer."""

    teledrop_plugin_name = "hasher_spy"

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl(tryfirst=True)
    def teledrop_hasher(self) -> None:
        self.calls += 1


@pytest.mark.parametrize(("slug", "status"), [("taken", 409), ("api", 400), ("x", 400)])
def test_a_refused_slug_field_before_the_file_stops_the_upload_before_its_bytes(
        make_app: Any, data_dir: Path, slug: str, status: int) -> None:
    spy = HasherSpy()
    app = make_app(plugins=[spy])
    upload(app.test_client(), b"first", slug="taken")
    files, spy.calls = stored_paths(data_dir), 0
    response = post_parts(app.test_client(), field_part("slug", slug),
                          file_part(os.urandom(2_500_000)))
    assert_text_error(response, status)
    assert spy.calls == 0
    assert stored_paths(data_dir) == files


class FaultyPlugin:
    """Raises, from a hook or a storage write, the errors a body reader also meets
    (ValueError from the decoder, TimeoutError from the socket)."""

    teledrop_plugin_name = "faulty"

    def __init__(self, error: Exception) -> None:
        self.error = error

    @hookimpl
    def teledrop_check_slug(self) -> None:
        raise self.error


@pytest.mark.parametrize("error", [ValueError("plugin bug"), TimeoutError("plugin timeout"),
                                   ConnectionError("plugin's own peer")],
                         ids=["ValueError", "TimeoutError", "ConnectionError"])
@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_a_plugin_failing_is_a_server_error_not_the_clients(make_app: Any, data_dir: Path,
                                                            error: Exception,
                                                            method: str) -> None:
    """Only the body's own reads and framing are blamed on the client (400, 408): a plugin
    raising the same exception types is a 500, logged, and leaves nothing behind."""
    app = make_app(plugins=[FaultyPlugin(error)])
    client = app.test_client()
    if method == "POST":
        response = post_parts(client, field_part("slug", "chosen"), file_part(b"data"),
                              headers=JSON)
    else:
        response = put_file(client, "/f.bin", b"data", headers=JSON, query={"slug": "chosen"})
    assert_json_error(response, 500)
    assert_nothing_stored(app, data_dir)


def test_a_slug_field_after_the_file_is_honoured(client: Any) -> None:
    response = post_parts(client, file_part(b"late"), field_part("slug", "late-slug"),
                          headers=JSON)
    assert created_json(response)["slug"] == "late-slug"
    assert client.get("/late-slug").data == b"late"


# --- malformed bodies ------------------------------------------------------------------

@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded", "text/plain", "application/json",
    "multipart/form-data", "multipart/form-data; boundary=", "multipart/mixed; boundary=x",
])
def test_post_without_a_multipart_body_is_400(make_app: Any, data_dir: Path,
                                              content_type: str) -> None:
    app = make_app()
    response = app.test_client().post("/", data=b"file=abc", content_type=content_type)
    assert_text_error(response, 400)
    assert_nothing_stored(app, data_dir)


def malformed(*parts: Part, closed: bool = True, cut: int | None = None,
              content_type: str = MULTIPART) -> tuple[bytes, str]:
    return multipart_body(*parts, closed=closed)[:cut], content_type


MALFORMED = {
    "no closing boundary": malformed(file_part(os.urandom(5000)), closed=False),
    "cut inside the file": malformed(file_part(os.urandom(100_000)), cut=60_000),
    "cut inside the part headers": malformed(file_part(), cut=len(BOUNDARY) + 30),
    "empty body": malformed(),
    "boundary not in the body": malformed(file_part(),
                                          content_type="multipart/form-data; boundary=other"),
    "no file part": malformed(field_part("slug", "lonely"), field_part("expires", "1h")),
    "two file parts": malformed(file_part(b"one"), file_part(b"two", "two.txt")),
    "another file part after": malformed(file_part(), Part("other", b"x", "other.txt")),
    "another file part before": malformed(Part("other", b"x", "other.txt"), file_part()),
    "huge field": malformed(file_part(), field_part("comment", "x" * 200_000)),
    "huge slug field": malformed(field_part("slug", "s" * 200_000), file_part()),
    "too many parts": malformed(file_part(), *[field_part(f"f{i}", "v") for i in range(40)]),
    "part without disposition": (
        f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nabc\r\n--{BOUNDARY}--\r\n".encode(),
        MULTIPART),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_multipart_body_is_refused_and_stores_nothing(make_app: Any,
                                                                  data_dir: Path,
                                                                  case: str) -> None:
    app = make_app()
    body, content_type = MALFORMED[case]
    response = app.test_client().post("/", data=body, content_type=content_type)
    assert 400 <= response.status_code < 500
    assert_text_error(response, response.status_code)
    assert_nothing_stored(app, data_dir)


# --- hostile filenames -----------------------------------------------------------------

HOSTILE_DISPOSITIONS = {
    "traversal": b'name="file"; filename="../../etc/passwd"',
    "absolute": b'name="file"; filename="/etc/passwd"',
    "dot dot": b'name="file"; filename=".."',
    "escaped backslashes": b'name="file"; filename="..\\\\..\\\\boot.ini"',
    "encoded traversal": b"name=\"file\"; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd",
    "nul": b'name="file"; filename="a\x00b.txt"',
    "raw cr": b'name="file"; filename="a\rb.txt"',
    "raw lf": b'name="file"; filename="a\nX-Injected: 1.txt"',
    "del": b'name="file"; filename="a\x7fb"',
    "256 utf-8 bytes": b'name="file"; filename="' + "é".encode() * 128 + b'"',
}


@pytest.mark.parametrize("case", list(HOSTILE_DISPOSITIONS))
def test_a_hostile_multipart_filename_is_400_and_stores_nothing(make_app: Any,
                                                                data_dir: Path,
                                                                case: str) -> None:
    app = make_app()
    part = Part("file", b"payload", disposition=HOSTILE_DISPOSITIONS[case])
    assert_json_error(post_parts(app.test_client(), part, headers=JSON), 400)
    assert_nothing_stored(app, data_dir)


@pytest.mark.parametrize("path", [
    "/%2E%2E", "/a%00b", "/a%0D%0AX-Injected:%201", "/a%5Cb.txt", "/a%E2%80%A8b",
    "/" + "%C3%A9" * 128,
])
def test_a_hostile_put_filename_is_400_and_stores_nothing(make_app: Any, data_dir: Path,
                                                          path: str) -> None:
    app = make_app()
    assert_json_error(put_file(app.test_client(), path, b"payload", headers=JSON), 400,
                      "invalid_filename")
    assert_nothing_stored(app, data_dir)


def test_a_put_path_with_encoded_slashes_stores_nothing(make_app: Any, data_dir: Path) -> None:
    app = make_app()
    response = put_file(app.test_client(), "/..%2F..%2Fetc%2Fpasswd", b"payload")
    assert 400 <= response.status_code < 500
    assert_nothing_stored(app, data_dir)


def test_a_filename_of_exactly_255_utf8_bytes_is_taken(client: Any) -> None:
    name = "é" * 127 + "a"
    part = Part("file", b"x", disposition=f'name="file"; filename="{name}"'.encode())
    assert created_json(post_parts(client, part, headers=JSON))["filename"] == name


# --- size limit ------------------------------------------------------------------------

@pytest.fixture
def small_app(make_app: Any) -> Flask:
    return make_app(limits={"max_upload_size": 1000})


@pytest.mark.parametrize("method", ["put", "post"])
def test_an_upload_at_the_limit_is_taken(small_app: Flask, method: str) -> None:
    data = os.urandom(1000)
    client = small_app.test_client()
    response = put_file(client, "/a.bin", data) if method == "put" \
        else post_file(client, data, "a.bin")
    assert response.status_code == 201
    assert client.get(f"/{slug_of(response)}").data == data


@pytest.mark.parametrize("method", ["put", "post"])
def test_an_upload_over_the_limit_is_413_and_stores_nothing(small_app: Flask, data_dir: Path,
                                                            method: str) -> None:
    data = os.urandom(1001)
    client = small_app.test_client()
    response = put_file(client, "/a.bin", data, headers=JSON) if method == "put" \
        else post_file(client, data, "a.bin", headers=JSON)
    assert_json_error(response, 413, "too_large")
    assert_nothing_stored(small_app, data_dir)


def test_a_multipart_body_far_over_the_limit_is_413_as_text(small_app: Flask,
                                                            data_dir: Path) -> None:
    assert_text_error(post_file(small_app.test_client(), os.urandom(2_000_000)), 413)
    assert_nothing_stored(small_app, data_dir)


# --- upload tokens ---------------------------------------------------------------------

@pytest.fixture
def token_app(make_app: Any) -> Flask:
    return make_app(auth={"upload_tokens": ["s3cret", "other"]})


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Bearer ", "Basic s3cret",
                                           "s3cret", "Bearer s3cret2", "Bearer s3cre"])
@pytest.mark.parametrize("method", ["put", "post"])
def test_an_upload_without_the_right_token_is_401(token_app: Flask, data_dir: Path,
                                                  authorization: str | None,
                                                  method: str) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    client = token_app.test_client()
    response = put_file(client, headers=headers) if method == "put" \
        else post_file(client, headers=headers)
    assert_text_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_nothing_stored(token_app, data_dir)


def test_a_401_in_json_names_the_error(token_app: Flask) -> None:
    response = post_file(token_app.test_client(), headers=JSON)
    assert_json_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("token", ["s3cret", "other"])
def test_an_upload_with_a_right_token_is_201_and_downloads_need_none(token_app: Flask,
                                                                     token: str) -> None:
    client = token_app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    for response in (post_file(client, b"secret", headers=auth),
                     put_file(client, "/s.txt", b"secret", headers=auth)):
        assert response.status_code == 201
        slug = slug_of(response)
        assert client.get(f"/{slug}").data == b"secret"
        assert client.head(f"/{slug}").status_code == 200
        assert client.get(f"/api/drops/{slug}").status_code == 200


@pytest.mark.parametrize("coding", ["gzip", "gzip, chunked", "deflate"])
def test_a_compressed_transfer_coding_is_refused(app: Flask, client: Any, data_dir: Path,
                                                 coding: str) -> None:
    # Stored as it came, the file would be the compressed bytes, not the client's file.
    response = client.put("/a.txt", data=b"not really compressed",
                          headers={"Transfer-Encoding": coding, **JSON})
    assert_json_error(response, 400, "malformed_body")
    assert_nothing_stored(app, data_dir)


def test_storage_is_told_the_request_length_as_the_size_to_expect(memory_app: Flask,
                                                                  memory: Any) -> None:
    client = memory_app.test_client()
    assert put_file(client, "/a.bin", b"x" * 1000).status_code == 201
    body = multipart_body(file_part(b"y" * 1000))
    assert client.post("/", data=body, content_type=MULTIPART).status_code == 201
    chunked = client.put("/b.bin", input_stream=io.BytesIO(b"z" * 1000),
                         headers={"Transfer-Encoding": "chunked"})
    assert chunked.status_code == 201
    assert memory.storage.size_hints == [1000, len(body), None]
