"""Direct uploads (``/api/direct-uploads``) against a real S3 server (SeaweedFS unless
TELEDROP_TEST_S3_ENDPOINT): the client PUTs each part to its presigned URL, teledrop checks
what the bucket holds and commits it. Every refusal leaves nothing in the bucket (neither
an object nor a multipart upload) and no record."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask import Flask
from teledrop_s3_storage import S3Storage

from teledrop.core import gc
from teledrop.core.drop import now
from teledrop.web.app import service_of
from tests.http_helpers import blake3_hash
from tests.plugins.faults import RaiseInCommit
from tests.services.seaweedfs import S3Endpoint
from tests.support.direct import (  # noqa: F401 (direct_app is a fixture)
    PART,
    bucket_state,
    complete,
    create,
    direct_app,
    pattern,
    put_parts,
)

MIB = 1024**2
JSON = {"Accept": "application/json"}

pytestmark = pytest.mark.entry_points("s3_storage", "postgres_meta")






@pytest.fixture
def app(direct_app: Callable[..., Flask]) -> Flask:
    return direct_app()










def test_a_file_in_three_parts_becomes_a_drop(app: Flask, s3_server: S3Endpoint,
                                              s3_bucket: str) -> None:
    data = pattern(2 * PART + 12345)
    created = create(app, len(data), expires="1h", title="big one")
    assert created.status_code == 201, created.data
    upload = created.json
    assert upload["part_size"] == PART
    assert [part["number"] for part in upload["parts"]] == [1, 2, 3]
    assert created.headers["Cache-Control"] == "no-store"
    parts = put_parts(upload, data)
    done = complete(app, upload["id"], parts)
    assert done.status_code == 201, done.data
    drop = done.json
    assert drop["size"] == len(data)
    assert drop["hash"] == blake3_hash(data)
    assert drop["filename"] == "big.bin" and drop["content_type"] == "application/x-test"
    assert drop["title"] == "big one"
    assert done.headers["X-Delete-Token"] == drop["delete_token"]
    assert done.headers["Location"] == f"/{drop['slug']}"
    got = app.test_client().get(f"/{drop['slug']}")
    assert got.status_code == 200
    assert got.get_data() == data
    objects, uploads = bucket_state(s3_server, s3_bucket)
    assert len(objects) == 1 and uploads == []


# -- hostile completions: each leaves nothing behind ---------------------------------------

def assert_nothing_left(app: Flask, s3_server: S3Endpoint, bucket: str, upload_id: str,
                        objects: frozenset[str] = frozenset()) -> None:
    """No object but ``objects``, no multipart upload, and no record of the upload."""
    assert bucket_state(s3_server, bucket) == (set(objects), [])
    assert service_of(app).metadata.get_upload(upload_id) is None


def started(app: Flask, size: int, **fields: Any) -> dict[str, Any]:
    created = create(app, size, **fields)
    assert created.status_code == 201, created.data
    return created.json


TWO_PARTS = PART + 1000


def lie_wrong_etag(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [parts[0], {**parts[1], "etag": '"0123456789abcdef0123456789abcdef"'}]


def lie_missing_part(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return parts[:1]


def lie_extra_part(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [*parts, {"number": 3, "etag": parts[1]["etag"]}]


def lie_swapped(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [parts[1], parts[0]]


@pytest.mark.parametrize("lie", [lie_wrong_etag, lie_missing_part, lie_extra_part, lie_swapped])
def test_a_part_list_that_lies_is_refused_and_aborts(
        app: Flask, s3_server: S3Endpoint, s3_bucket: str,
        lie: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    upload = started(app, TWO_PARTS)
    parts = put_parts(upload, pattern(TWO_PARTS))
    refused = complete(app, upload["id"], lie(parts))
    assert refused.status_code == 400, refused.data
    assert refused.json["error"]["code"] == "direct_upload_invalid"
    assert_nothing_left(app, s3_server, s3_bucket, upload["id"])
    again = complete(app, upload["id"], parts)  # the truth comes too late
    assert again.status_code == 404


def test_a_part_sent_again_replaces_the_first(app: Flask) -> None:
    upload = started(app, TWO_PARTS)
    put_parts(upload, pattern(TWO_PARTS, seed=1))
    data = pattern(TWO_PARTS, seed=2)
    done = complete(app, upload["id"], put_parts(upload, data))  # a client's retries
    assert done.status_code == 201, done.data
    assert done.json["hash"] == blake3_hash(data)
    assert app.test_client().get(f"/{done.json['slug']}").get_data() == data


def test_a_part_missing_from_the_bucket_is_refused(app: Flask, s3_server: S3Endpoint,
                                                   s3_bucket: str) -> None:
    upload = started(app, TWO_PARTS)
    first = requests.put(upload["parts"][0]["url"], data=pattern(PART), timeout=30)
    refused = complete(app, upload["id"], [{"number": 1, "etag": first.headers["ETag"]}])
    assert refused.status_code == 400
    assert "parts 1 to 2" in refused.json["error"]["message"]
    assert_nothing_left(app, s3_server, s3_bucket, upload["id"])


def test_parts_past_the_upload_limit_are_413(direct_app: Callable[..., Flask],
                                            s3_server: S3Endpoint, s3_bucket: str) -> None:
    app = direct_app(limits={"max_upload_size": "6MiB"})
    upload = started(app, TWO_PARTS)
    # the client declared 5 MiB and a bit, and sends 7 MiB
    parts = put_parts(upload, pattern(PART + 2 * MIB))
    refused = complete(app, upload["id"], parts)
    assert refused.status_code == 413, refused.data
    assert refused.json["error"]["code"] == "too_large"
    assert_nothing_left(app, s3_server, s3_bucket, upload["id"])


def test_parts_bigger_than_declared_are_refused(app: Flask, s3_server: S3Endpoint,
                                                s3_bucket: str) -> None:
    upload = started(app, TWO_PARTS)
    parts = put_parts(upload, pattern(TWO_PARTS + 1))
    refused = complete(app, upload["id"], parts)
    assert refused.status_code == 400
    assert "part 2 has 1001 bytes, not 1000" in refused.json["error"]["message"]
    assert_nothing_left(app, s3_server, s3_bucket, upload["id"])


def test_parts_of_the_wrong_size_are_refused_even_when_the_total_is_right(
        app: Flask, s3_server: S3Endpoint, s3_bucket: str) -> None:
    upload = started(app, TWO_PARTS)
    data = pattern(TWO_PARTS)
    parts = []
    for part, chunk in zip(upload["parts"], (data[:4 * MIB], data[4 * MIB:]), strict=True):
        answer = requests.put(part["url"], data=chunk, timeout=30)
        assert answer.status_code == 200
        parts.append({"number": part["number"], "etag": answer.headers["ETag"]})
    refused = complete(app, upload["id"], parts)
    assert refused.status_code == 400
    assert f"part 1 has {4 * MIB} bytes, not {PART}" in refused.json["error"]["message"]
    assert_nothing_left(app, s3_server, s3_bucket, upload["id"])


def expire(app: Flask, upload_id: str) -> None:
    metadata = service_of(app).metadata
    state = metadata.delete_upload(upload_id)
    assert state is not None
    metadata.insert_upload(dataclasses.replace(state, expires_at=now() - 1))


def test_a_completion_after_expiry_is_refused(app: Flask, s3_server: S3Endpoint,
                                              s3_bucket: str) -> None:
    upload = started(app, TWO_PARTS)
    parts = put_parts(upload, pattern(TWO_PARTS))
    expire(app, upload["id"])
    refused = complete(app, upload["id"], parts)
    assert refused.status_code == 400
    assert "expired" in refused.json["error"]["message"]
    assert_nothing_left(app, s3_server, s3_bucket, upload["id"])


def test_an_unknown_id_is_404_and_touches_nothing(app: Flask, s3_server: S3Endpoint,
                                                  s3_bucket: str) -> None:
    upload = started(app, 10)
    for path in ("/api/direct-uploads/0123456789abcdef/complete",
                 f"/api/direct-uploads/{upload['id']}x/complete"):
        answer = app.test_client().post(path, json={"parts": []}, headers=JSON)
        assert answer.status_code == 404
        assert answer.json["error"]["code"] == "not_found"
    assert len(bucket_state(s3_server, s3_bucket)[1]) == 1
    assert service_of(app).metadata.get_upload(upload["id"]) is not None


@pytest.mark.parametrize("body", [{}, {"parts": "1"}, {"parts": [{"number": "1", "etag": "x"}]},
                                  {"parts": [{"number": True, "etag": "x"}]}, [1]])
def test_a_malformed_part_list_is_refused_and_aborts(app: Flask, s3_server: S3Endpoint,
                                                     s3_bucket: str, body: Any) -> None:
    upload = started(app, 10)
    answer = app.test_client().post(f"/api/direct-uploads/{upload['id']}/complete",
                                    json=body, headers=JSON)
    assert answer.status_code == 400
    assert answer.json["error"]["code"] == "direct_upload_invalid"
    assert_nothing_left(app, s3_server, s3_bucket, upload["id"])


def test_two_hosts_completing_at_once_make_one_drop(
        direct_app: Callable[..., Flask], postgres_dsn: str, s3_server: S3Endpoint,
        s3_bucket: str) -> None:
    sections = {"metadata": {"plugin": "postgres_meta"},
                "more_plugins": {"postgres_meta": {"dsn": postgres_dsn}}}
    hosts = [direct_app(**sections), direct_app(**sections)]
    upload = started(hosts[0], TWO_PARTS)
    parts = put_parts(upload, pattern(TWO_PARTS))
    barrier = threading.Barrier(2)
    answers: list[Any] = [None, None]

    def finish(index: int) -> None:
        barrier.wait()
        answers[index] = complete(hosts[index], upload["id"], parts)

    threads = [threading.Thread(target=finish, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201, 409], [answer.json for answer in answers]
    loser = next(answer for answer in answers if answer.status_code == 409)
    assert loser.json["error"]["code"] in ("direct_upload_busy", "direct_upload_completed")
    drops = list(service_of(hosts[1]).metadata.iter_drops())
    assert len(drops) == 1
    objects, uploads = bucket_state(s3_server, s3_bucket)
    assert objects == {f"blobs/{drops[0].blob_id}"} and uploads == []
    again = complete(hosts[1], upload["id"], parts)
    assert again.status_code == 409
    assert again.json["error"]["code"] == "direct_upload_completed"
    assert drops[0].slug in again.json["error"]["message"]


def test_a_slug_taken_before_completion_is_refused_and_the_object_deleted(
        app: Flask, s3_server: S3Endpoint, s3_bucket: str) -> None:
    upload = started(app, TWO_PARTS, slug="taken-later")
    parts = put_parts(upload, pattern(TWO_PARTS))
    other = app.test_client().put("/other.txt?slug=taken-later", data=b"first", headers=JSON)
    assert other.status_code == 201
    blob_id = service_of(app).metadata.get("taken-later").blob_id
    refused = complete(app, upload["id"], parts)
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "slug_taken"
    assert_nothing_left(app, s3_server, s3_bucket, upload["id"],
                        objects=frozenset({f"blobs/{blob_id}"}))
    assert app.test_client().get("/taken-later").get_data() == b"first"


def test_a_failing_commit_chain_deletes_the_object(direct_app: Callable[..., Flask],
                                                   s3_server: S3Endpoint,
                                                   s3_bucket: str) -> None:
    failing = RaiseInCommit(RuntimeError("a plugin broke"), when="after")
    app = direct_app(plugins=[failing])
    upload = started(app, TWO_PARTS, slug="never-made")
    parts = put_parts(upload, pattern(TWO_PARTS))
    refused = complete(app, upload["id"], parts)
    assert refused.status_code == 500
    assert_nothing_left(app, s3_server, s3_bucket, upload["id"])
    assert service_of(app).metadata.get("never-made") is None


# -- refused before anything is signed -------------------------------------------------------

@pytest.mark.parametrize(("sections", "fields", "headers", "status", "code"), [
    ({"auth": {"upload_tokens": ["s3cret"]}}, {}, {}, 401, "unauthorized"),
    ({"auth": {"upload_tokens": ["s3cret"]}}, {}, {"Authorization": "Bearer wrong"}, 401,
     "unauthorized"),
    ({}, {"slug": "a/b"}, {}, 400, "invalid_slug"),
    ({}, {"slug": "api"}, {}, 400, "invalid_slug"),
    ({}, {"expires": "forever"}, {}, 400, "invalid_option"),
    ({}, {"max_downloads": 0}, {}, 400, "invalid_option"),
    ({}, {"private": True}, {}, 400, "invalid_option"),
    ({}, {"colour": "red"}, {}, 400, "invalid_option"),
    ({}, {"filename": "../etc/passwd"}, {}, 400, "invalid_filename"),
    ({}, {"password": "x" * 1025}, {}, 400, "invalid_option"),
    ({}, {"size": -1}, {}, 400, "bad_request"),
    ({}, {"size": "10"}, {}, 400, "bad_request"),
    ({"limits": {"max_upload_size": "1MiB"}}, {"size": MIB + 1}, {}, 413, "too_large"),
    ({"limits": {"max_total_size": "1MiB"}}, {"size": MIB + 1}, {}, 507, "storage_full"),
])
def test_a_refused_upload_signs_nothing(
        direct_app: Callable[..., Flask], s3_server: S3Endpoint, s3_bucket: str,
        sections: dict[str, Any], fields: dict[str, Any], headers: dict[str, str],
        status: int, code: str) -> None:
    app = direct_app(**sections)
    answer = create(app, fields.pop("size", 100), headers, **fields)
    assert answer.status_code == status, answer.data
    assert answer.json["error"]["code"] == code
    if status == 401:
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert bucket_state(s3_server, s3_bucket) == (set(), [])


def test_a_password_in_the_query_string_signs_nothing(app: Flask, s3_server: S3Endpoint,
                                                      s3_bucket: str) -> None:
    answer = app.test_client().post("/api/direct-uploads?password=pw",
                                    json={"size": 10}, headers=JSON)
    assert answer.status_code == 400
    assert "query string" in answer.json["error"]["message"]
    assert bucket_state(s3_server, s3_bucket) == (set(), [])


def test_a_taken_slug_signs_nothing(app: Flask, s3_server: S3Endpoint, s3_bucket: str) -> None:
    assert app.test_client().put("/a.txt?slug=mine", data=b"a").status_code == 201
    objects = bucket_state(s3_server, s3_bucket)[0]
    answer = create(app, 100, slug="mine")
    assert answer.status_code == 409
    assert answer.json["error"]["code"] == "slug_taken"
    assert bucket_state(s3_server, s3_bucket) == (objects, [])


def test_a_token_and_a_password_make_an_owned_protected_drop(
        direct_app: Callable[..., Flask]) -> None:
    app = direct_app(auth={"upload_tokens": ["s3cret"]})
    created = create(app, 5, {"Authorization": "Bearer s3cret", "X-Drop-Password": "pw"},
                     max_downloads=2)
    assert created.status_code == 201, created.data
    parts = put_parts(created.json, b"hello")
    done = complete(app, created.json["id"], parts)
    assert done.status_code == 201, done.data
    assert done.json["has_password"] is True and done.json["max_downloads"] == 2
    slug = done.json["slug"]
    assert app.test_client().get(f"/{slug}").status_code == 401
    got = app.test_client().get(f"/{slug}", headers={"X-Drop-Password": "pw"})
    assert got.get_data() == b"hello"


# -- abort, gc, expiry, other storages -------------------------------------------------------

def test_abort_removes_every_part(app: Flask, s3_server: S3Endpoint, s3_bucket: str) -> None:
    upload = started(app, TWO_PARTS)
    put_parts(upload, pattern(TWO_PARTS))
    aborted = app.test_client().delete(f"/api/direct-uploads/{upload['id']}")
    assert aborted.status_code == 204
    assert_nothing_left(app, s3_server, s3_bucket, upload["id"])
    assert app.test_client().delete(f"/api/direct-uploads/{upload['id']}").status_code == 404
    assert complete(app, upload["id"], []).status_code == 404


def test_gc_aborts_expired_uploads_and_leaves_live_ones(app: Flask, s3_server: S3Endpoint,
                                                        s3_bucket: str) -> None:
    live, stale = started(app, TWO_PARTS), started(app, TWO_PARTS)
    live_parts = put_parts(live, pattern(TWO_PARTS))
    put_parts(stale, pattern(TWO_PARTS))
    expire(app, stale["id"])
    service = service_of(app)
    removed = list(gc.collect(service, older_than=0))
    assert [(r.kind, r.name) for r in removed] == [("upload", stale["id"])]
    assert len(bucket_state(s3_server, s3_bucket)[1]) == 1  # the live one, however old
    assert service.metadata.get_upload(stale["id"]) is None
    done = complete(app, live["id"], live_parts)
    assert done.status_code == 201, done.data
    assert list(gc.collect(service, older_than=0)) == []


def test_an_empty_file_is_one_empty_part(app: Flask) -> None:
    upload = started(app, 0)
    assert len(upload["parts"]) == 1
    done = complete(app, upload["id"], put_parts(upload, b""))
    assert done.status_code == 201, done.data
    assert done.json["size"] == 0 and done.json["hash"] == blake3_hash(b"")
    assert app.test_client().get(f"/{done.json['slug']}").get_data() == b""


def test_tus_does_not_see_direct_uploads(app: Flask) -> None:
    upload = started(app, 10)
    tus = {"Tus-Resumable": "1.0.0"}
    assert app.test_client().head(f"/api/uploads/{upload['id']}", headers=tus).status_code == 404
    patched = app.test_client().patch(
        f"/api/uploads/{upload['id']}", data=b"0123456789",
        headers={**tus, "Upload-Offset": "0",
                 "Content-Type": "application/offset+octet-stream"})
    assert patched.status_code == 404
    assert service_of(app).metadata.get_upload(upload["id"]).kind == "direct"


def test_expiry_and_part_urls(app: Flask) -> None:
    upload = started(app, 10)
    assert len(upload["id"]) >= 32  # 128 random bits at least
    state = service_of(app).metadata.get_upload(upload["id"])
    assert state.expires_at - state.created_at == service_of(app).config.limits.resumable_expires
    url = upload["parts"][0]["url"]
    expires_in = int(requests.utils.urlparse(url).query.split("X-Amz-Expires=")[1].split("&")[0])
    assert expires_in <= state.expires_at - state.created_at


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/direct-uploads"), ("POST", "/api/direct-uploads/abc/complete"),
    ("DELETE", "/api/direct-uploads/abc")])
def test_local_storage_answers_501(make_app: Callable[..., Flask], method: str,
                                   path: str) -> None:
    answer = make_app().test_client().open(path, method=method, json={"size": 1}, headers=JSON)
    assert answer.status_code == 501
    assert answer.json["error"]["code"] == "direct_uploads_unavailable"


def test_abort_while_a_completion_runs_is_409_and_keeps_the_upload(
        app: Flask, s3_server: S3Endpoint, s3_bucket: str) -> None:
    upload = started(app, 10)
    metadata = service_of(app).metadata
    at = now()
    assert metadata.lease_upload(upload["id"], "another-host", at, at + 60) is not None
    for answer in (app.test_client().delete(f"/api/direct-uploads/{upload['id']}",
                                            headers=JSON),
                   complete(app, upload["id"], [])):
        assert answer.status_code == 409
        assert answer.json["error"]["code"] == "direct_upload_busy"
    assert metadata.get_upload(upload["id"]) is not None
    assert len(bucket_state(s3_server, s3_bucket)[1]) == 1


def test_the_part_size_grows_so_the_file_fits_the_part_limit(
        app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(S3Storage, "max_parts", 2)
    upload = started(app, 3 * PART)
    assert upload["part_size"] == 8 * MIB  # 7.5 MiB, in whole MiB
    assert [part["number"] for part in upload["parts"]] == [1, 2]
    app.test_client().delete(f"/api/direct-uploads/{upload['id']}")
