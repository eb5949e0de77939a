"""The AWS Lambda host, driven in-process with payload format 2.0 events against a real S3
server (SeaweedFS unless TELEDROP_TEST_S3_ENDPOINT) and a real PostgreSQL."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask

from teledrop import hookimpl
from teledrop.core.config import load_config
from teledrop.core.errors import StartupError
from teledrop.hosts import aws_lambda
from teledrop.hosts.aws_lambda import EVENT_FILE_LIMIT, LambdaHost
from teledrop.hosts.openapi import openapi_document
from teledrop.web import create_app
from teledrop.web.app import service_of
from tests.lambda_events import event, multipart, stored
from tests.live_server import REPO
from tests.services.seaweedfs import S3Endpoint
from tests.support.direct import put_parts
from tests.support.lambda_host import (  # noqa: F401 (lambda_env, make_host are fixtures)
    OWNER_TOKEN,
    body_of,
    follow,
    lambda_env,
    make_host,
    put,
    slug_of,
)

pytestmark = pytest.mark.entry_points("s3_storage", "postgres_meta")

Handler = Callable[[dict[str, Any]], dict[str, Any]]


def pattern(size: int) -> bytes:
    return (bytes(range(251)) * (size // 251 + 1))[:size]






@pytest.fixture
def host(make_host: Callable[..., LambdaHost]) -> LambdaHost:
    return make_host()


@pytest.fixture
def wsgi_app(lambda_env: dict[str, str], host: LambdaHost) -> Iterator[Flask]:
    """The WSGI host on the same config (and the same bucket and database)."""
    app = create_app(load_config(environ=lambda_env))
    app.testing = True
    yield app
    service_of(app).close()








def info(host: LambdaHost, slug: str) -> dict[str, Any]:
    result = host(event("GET", f"/api/drops/{slug}"))
    assert result["statusCode"] == 200, body_of(result)
    return json.loads(body_of(result))




def bucket_keys(s3_server: S3Endpoint, bucket: str) -> list[str]:
    listing = s3_server.client().list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def bucket_uploads(s3_server: S3Endpoint, bucket: str) -> list[Any]:
    return s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])


# -- uploads, downloads, deletion -----------------------------------------------------------

def test_a_binary_put_is_redirected_to_its_bytes_in_the_bucket_and_deleted(
        host: LambdaHost, s3_server: S3Endpoint, s3_bucket: str) -> None:
    data = pattern(300_000)
    created = host(event("PUT", "/report.bin", headers={"content-type": "application/zip"},
                         body=data))
    assert created["statusCode"] == 201
    assert created["isBase64Encoded"] is False
    slug = slug_of(created)
    assert body_of(created) == f"https://abcdefghij.lambda-url.eu-west-1.on.aws/{slug}\n".encode()
    token = created["headers"]["X-Delete-Token"]
    assert created["headers"]["X-Content-Type-Options"] == "nosniff"

    download = host(event("GET", f"/{slug}"))
    assert download["headers"]["Cache-Control"] == "no-store"
    fetched = follow(download)
    assert fetched.content == data
    assert fetched.headers["Content-Type"] == "application/octet-stream"  # never inline
    assert fetched.headers["Content-Disposition"] == 'attachment; filename=report.bin'
    assert info(host, slug)["downloads"] == 1

    deleted = host(event("DELETE", f"/{slug}", headers={"x-delete-token": token}))
    assert deleted["statusCode"] == 204
    assert host(event("GET", f"/{slug}"))["statusCode"] == 404
    assert bucket_keys(s3_server, s3_bucket) == []


def test_a_text_body_arrives_as_text_and_is_stored_as_sent(host: LambdaHost) -> None:
    data = "naïve café, line one\nline two\n".encode()
    sent = event("PUT", "/notes.txt", headers={"content-type": "text/plain; charset=utf-8"},
                 body=data)
    assert sent["isBase64Encoded"] is False
    slug = slug_of(put_event(host, sent))
    drop = info(host, slug)
    assert (drop["filename"], drop["size"], drop["content_type"]) == \
        ("notes.txt", len(data), "text/plain")
    assert follow(host(event("GET", f"/{slug}/notes.txt"))).content == data


def put_event(host: LambdaHost, sent: dict[str, Any]) -> dict[str, Any]:
    result = host(sent)
    assert result["statusCode"] == 201, body_of(result)
    return result


def test_a_base64_body_is_decoded_even_when_its_type_is_text(host: LambdaHost) -> None:
    data = b"plain words, sent base64 all the same\n"
    sent = event("PUT", "/a.txt", headers={"content-type": "text/plain"}, body=data,
                 base64_body=True)
    slug = slug_of(put_event(host, sent))
    assert follow(host(event("GET", f"/{slug}"))).content == data


def test_a_body_that_is_not_base64_is_a_clear_400(host: LambdaHost) -> None:
    sent = event("PUT", "/a.bin", body=b"x")
    sent["body"] = "not base64!"
    result = host(sent)
    assert result["statusCode"] == 400
    assert body_of(result) == b"the event's body is not valid base64\n"


def test_a_multipart_upload_takes_its_fields_and_answers_json(host: LambdaHost) -> None:
    data = pattern(70_000)
    body, content_type = multipart(data, "photo.png", "image/png", expires="1h",
                                   max_downloads="2", title="Holiday")
    created = put_event(host, event("POST", "/", headers={"content-type": content_type,
                                                          "accept": "application/json"},
                                    body=body))
    drop = json.loads(body_of(created))
    assert drop["delete_token"] == created["headers"]["X-Delete-Token"]
    assert created["headers"]["Content-Type"] == "application/json"
    assert (drop["filename"], drop["size"], drop["content_type"], drop["max_downloads"],
            drop["title"]) == ("photo.png", len(data), "image/png", 2, "Holiday")
    preview = follow(host(event("GET", f"/{drop['slug']}", "preview")))
    assert preview.content == data
    assert preview.headers["Content-Type"] == "image/png"
    assert preview.headers["Content-Disposition"] == "inline; filename=photo.png"
    follow(host(event("GET", f"/{drop['slug']}")))
    gone = host(event("GET", f"/{drop['slug']}"))
    assert gone["statusCode"] == 410


def test_a_unicode_filename_in_the_path_is_kept(host: LambdaHost) -> None:
    slug = slug_of(put(host, b"x", "r%C3%A9sum%C3%A9.pdf"))
    assert info(host, slug)["filename"] == "résumé.pdf"
    fetched = follow(host(event("GET", f"/{slug}")))
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9.pdf" in fetched.headers["Content-Disposition"]


def test_a_filename_whose_bytes_are_not_utf8_is_refused(host: LambdaHost) -> None:
    result = host(event("PUT", "/caf%E9.txt", body=b"x"))
    assert result["statusCode"] == 400
    assert b"not UTF-8" in body_of(result)


# -- the event's size limit --------------------------------------------------------------------

def test_a_file_of_exactly_the_event_limit_is_uploaded(host: LambdaHost) -> None:
    data = pattern(EVENT_FILE_LIMIT)
    assert info(host, slug_of(put(host, data)))["size"] == EVENT_FILE_LIMIT
    body, content_type = multipart(data)
    assert len(body) > EVENT_FILE_LIMIT  # the framing is not counted
    created = put_event(host, event("POST", "/", headers={"content-type": content_type},
                                    body=body))
    assert follow(host(event("GET", f"/{slug_of(created)}"))).content == data


@pytest.mark.parametrize("form", [False, True], ids=["put", "multipart"])
def test_a_file_past_the_event_limit_is_413_naming_direct_uploads_and_leaves_nothing(
        host: LambdaHost, s3_server: S3Endpoint, s3_bucket: str, form: bool) -> None:
    data = pattern(EVENT_FILE_LIMIT + 1)
    if form:
        body, content_type = multipart(data)
        sent = event("POST", "/", headers={"content-type": content_type,
                                           "accept": "application/json"}, body=body)
    else:
        sent = event("PUT", "/big.bin", headers={"accept": "application/json"}, body=data)
    result = host(sent)
    assert result["statusCode"] == 413
    error = json.loads(body_of(result))["error"]
    assert error["code"] == "too_large"
    assert "/api/direct-uploads" in error["message"]
    assert bucket_keys(s3_server, s3_bucket) == []
    assert bucket_uploads(s3_server, s3_bucket) == []


def test_the_configured_limit_still_applies_below_the_event_limit(
        make_host: Callable[..., LambdaHost]) -> None:
    host = make_host(TELEDROP_LIMITS__MAX_UPLOAD_SIZE="1KiB")
    result = host(event("PUT", "/a.bin", body=pattern(1025)))
    assert result["statusCode"] == 413
    assert body_of(result) == b"the upload exceeds the limit of 1 KiB\n"
    assert put(host, pattern(1024))["statusCode"] == 201


# -- HEAD, ranges, conditional requests ----------------------------------------------------

def test_head_answers_the_headers_of_the_bytes_without_a_url_and_is_not_counted(
        host: LambdaHost) -> None:
    data = pattern(5000)
    slug = slug_of(put(host, data, "page.html"))
    head = host(event("HEAD", f"/{slug}"))
    assert head["statusCode"] == 200
    assert "Location" not in head["headers"]
    assert body_of(head) == b""
    headers = head["headers"]
    assert headers["Content-Length"] == "5000"
    assert headers["Content-Type"] == "text/html"
    assert headers["Content-Disposition"] == "attachment; filename=page.html"
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"] == f'"{info(host, slug)["hash"]}"'
    assert "Last-Modified" in headers
    ranged = host(event("HEAD", f"/{slug}", headers={"range": "bytes=10-19"}))
    assert ranged["statusCode"] == 206
    assert ranged["headers"]["Content-Range"] == "bytes 10-19/5000"
    assert ranged["headers"]["Content-Length"] == "10"
    assert info(host, slug)["downloads"] == 0


def test_a_current_copy_is_304_and_a_range_past_the_end_416_neither_counted(
        host: LambdaHost) -> None:
    slug = slug_of(put(host, pattern(100), query="max_downloads=1"))
    etag = f'"{info(host, slug)["hash"]}"'
    current = host(event("GET", f"/{slug}", headers={"if-none-match": etag}))
    assert current["statusCode"] == 304
    assert "Location" not in current["headers"]
    beyond = host(event("GET", f"/{slug}", headers={"range": "bytes=500-"}))
    assert beyond["statusCode"] == 416
    assert beyond["headers"]["Content-Range"] == "bytes */100"
    assert info(host, slug)["downloads"] == 0
    ranged = host(event("GET", f"/{slug}", headers={"range": "bytes=0-9"}))
    assert requests.get(ranged["headers"]["Location"], headers={"Range": "bytes=0-9"},
                        timeout=30).content == pattern(10)


# -- the event format ---------------------------------------------------------------------

class SeenRequests:
    """Records what an upload's request looks like to a plugin."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    @hookimpl
    def teledrop_authorize_upload(self, request: Any) -> None:
        self.seen.append({"cookie": request.headers.get("Cookie"),
                          "auth": request.headers.get("Authorization"),
                          "owner": request.owner, "query": dict(request.query),
                          "remote": request.remote_addr})


def test_lower_cased_headers_cookies_and_the_source_ip_reach_core_and_plugins(
        make_host: Callable[..., LambdaHost]) -> None:
    seen = SeenRequests()
    host = make_host(plugins=(seen,))
    sent = event("PUT", "/a.bin", "expires=1h", {"authorization": f"Bearer {OWNER_TOKEN}"},
                 b"x", cookies=["a=1", "b=2"])
    assert all(name == name.lower() for name in sent["headers"])
    slug = slug_of(put_event(host, sent))
    assert seen.seen == [{"cookie": "a=1; b=2", "auth": f"Bearer {OWNER_TOKEN}",
                          "owner": seen.seen[0]["owner"], "query": {"expires": "1h"},
                          "remote": "203.0.113.7"}]
    assert seen.seen[0]["owner"] is not None  # the lower-cased header named the owner
    listed = host(event("GET", "/api/drops", headers={"authorization": f"Bearer {OWNER_TOKEN}"}))
    assert [d["slug"] for d in json.loads(body_of(listed))["drops"]] == [slug]


def test_a_repeated_query_key_takes_its_first_value_as_the_wsgi_host_does(
        host: LambdaHost, wsgi_app: Flask) -> None:
    sent = event("PUT", "/a.bin", "max_downloads=2&max_downloads=5", body=b"x")
    assert sent["queryStringParameters"] == {"max_downloads": "2,5"}
    assert info(host, slug_of(put_event(host, sent)))["max_downloads"] == 2
    via_wsgi = wsgi_app.test_client().put("/a.bin?max_downloads=2&max_downloads=5", data=b"x")
    assert via_wsgi.status_code == 201
    assert info(host, via_wsgi.headers["Location"].lstrip("/"))["max_downloads"] == 2


def test_the_stored_function_url_event_lists_by_its_first_sort(host: LambdaHost) -> None:
    auth = f"Bearer {OWNER_TOKEN}"
    small = slug_of(put(host, b"x", "zz.bin", authorization=auth))
    large = slug_of(put(host, b"x" * 100, "aa.bin", authorization=auth))
    result = host(stored("function_url_owner_list.json"))
    assert result["statusCode"] == 200, body_of(result)
    # sort=size (the first of sort=size&sort=filename), ascending: not "size,filename"
    assert [d["slug"] for d in json.loads(body_of(result))["drops"]] == [small, large]


def test_an_event_without_a_query_or_a_body_is_served(host: LambdaHost) -> None:
    sent = event("GET", "/healthz")
    assert "queryStringParameters" not in sent and sent["rawQueryString"] == ""
    del sent["rawQueryString"]
    result = host(sent)
    assert result["statusCode"] == 200
    assert json.loads(body_of(result)) == {"status": "ok"}


def test_a_stage_prefix_is_the_root_of_links_and_locations(host: LambdaHost) -> None:
    created = put_event(host, event("PUT", "/a.bin", body=b"x", stage="prod"))
    slug = slug_of(created)
    assert created["headers"]["Location"] == f"/prod/{slug}"
    assert body_of(created).decode().strip().endswith(f".on.aws/prod/{slug}")
    assert host(event("GET", f"/{slug}", stage="prod"))["statusCode"] == 302


# -- the other routes -----------------------------------------------------------------------

def test_root_is_usage_text_naming_the_event_limit_and_direct_uploads(host: LambdaHost) -> None:
    result = host(event("GET", "/"))
    text = body_of(result).decode()
    assert result["headers"]["Content-Type"] == "text/plain; charset=utf-8"
    assert "curl -F file=@report.pdf https://abcdefghij.lambda-url.eu-west-1.on.aws/" in text
    assert "at most 4 MiB per request" in text and "POST /api/direct-uploads" in text


def test_openapi_is_the_document_the_wsgi_host_serves(host: LambdaHost) -> None:
    assert json.loads(body_of(host(event("GET", "/openapi.json")))) == openapi_document()


def test_a_password_drop_takes_the_header_basic_or_the_form(host: LambdaHost) -> None:
    slug = slug_of(put(host, b"secret bytes", **{"x-drop-password": "hunter2"}))
    refused = host(event("GET", f"/{slug}"))
    assert refused["statusCode"] == 401
    assert refused["headers"]["WWW-Authenticate"].startswith("Basic")
    assert "Location" not in refused["headers"]
    wrong = host(event("GET", f"/{slug}", headers={"x-drop-password": "nope"}))
    assert body_of(wrong) == b"wrong password\n"
    assert follow(host(event("GET", f"/{slug}", headers={"x-drop-password": "hunter2"}))
                  ).content == b"secret bytes"
    basic = base64.b64encode(b":hunter2").decode()
    assert host(event("GET", f"/{slug}", headers={"authorization": f"Basic {basic}"})
                )["statusCode"] == 302
    form = host(event("POST", f"/{slug}",
                      headers={"content-type": "application/x-www-form-urlencoded"},
                      body=b"password=hunter2"))
    assert form["statusCode"] == 302
    in_query = host(event("GET", f"/{slug}", "password=hunter2"))
    assert in_query["statusCode"] == 400
    assert info_with(host, slug, "hunter2")["downloads"] == 3


def info_with(host: LambdaHost, slug: str, password: str) -> dict[str, Any]:
    result = host(event("GET", f"/api/drops/{slug}", headers={"x-drop-password": password}))
    return json.loads(body_of(result))


def test_an_owner_lists_and_edits_their_drops(host: LambdaHost) -> None:
    auth = {"authorization": f"Bearer {OWNER_TOKEN}"}
    slug = slug_of(put_event(host, event("PUT", "/a.bin", headers=auth, body=b"x")))
    edited = host(event("PATCH", f"/api/drops/{slug}", headers=auth,
                        body=b'{"title": "Q3", "max_downloads": 5}'))
    assert edited["statusCode"] == 200, body_of(edited)
    assert (json.loads(body_of(edited))["title"], info(host, slug)["max_downloads"]) == ("Q3", 5)
    listed = json.loads(body_of(host(event("GET", "/api/drops", "q=Q3", auth))))
    assert (listed["total"], listed["drops"][0]["slug"]) == (1, slug)
    # the owner deletes without the delete token
    assert host(event("DELETE", f"/{slug}", headers=auth))["statusCode"] == 204


def test_tus_is_refused_naming_direct_uploads(host: LambdaHost) -> None:
    for method, path in (("POST", "/api/uploads"), ("OPTIONS", "/api/uploads"),
                         ("PATCH", "/api/uploads/abc")):
        result = host(event(method, path, headers={"accept": "application/json",
                                                   "tus-resumable": "1.0.0"}))
        assert result["statusCode"] == 501
        error = json.loads(body_of(result))["error"]
        assert error["code"] == "not_implemented"
        assert "/api/direct-uploads" in error["message"]


# -- direct uploads ---------------------------------------------------------------------------

def direct_create(host: LambdaHost, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    return host(event("POST", "/api/direct-uploads",
                      headers={"content-type": "application/json", **headers},
                      body=json.dumps(body).encode()))


def test_a_file_past_the_event_limit_goes_up_directly_and_downloads(
        host: LambdaHost, s3_server: S3Endpoint, s3_bucket: str) -> None:
    data = pattern(EVENT_FILE_LIMIT * 2 + 12345)  # two parts, of 5 MiB each
    created = direct_create(host, {"filename": "big.iso", "size": len(data),
                                   "max_downloads": 3})
    assert created["statusCode"] == 201, body_of(created)
    assert created["headers"]["Cache-Control"] == "no-store"
    upload = json.loads(body_of(created))
    assert created["headers"]["Location"] == f"/api/direct-uploads/{upload['id']}"
    parts = put_parts(upload, data)
    assert len(parts) == 2
    done = host(event("POST", f"/api/direct-uploads/{upload['id']}/complete",
                      headers={"content-type": "application/json"},
                      body=json.dumps({"parts": parts}).encode()))
    assert done["statusCode"] == 201, body_of(done)
    drop = json.loads(body_of(done))
    assert drop["delete_token"] == done["headers"]["X-Delete-Token"]
    assert (drop["size"], drop["filename"], drop["max_downloads"]) == (len(data), "big.iso", 3)
    assert follow(host(event("GET", f"/{drop['slug']}"))).content == data
    assert bucket_uploads(s3_server, s3_bucket) == []


def test_an_aborted_direct_upload_leaves_nothing(
        host: LambdaHost, s3_server: S3Endpoint, s3_bucket: str) -> None:
    created = direct_create(host, {"filename": "x.bin", "size": 10})
    upload_id = json.loads(body_of(created))["id"]
    assert len(bucket_uploads(s3_server, s3_bucket)) == 1
    assert host(event("DELETE", f"/api/direct-uploads/{upload_id}"))["statusCode"] == 204
    assert bucket_uploads(s3_server, s3_bucket) == []
    assert bucket_keys(s3_server, s3_bucket) == []
    again = host(event("POST", f"/api/direct-uploads/{upload_id}/complete",
                       body=b'{"parts": []}'))
    assert again["statusCode"] == 404


def test_a_direct_upload_is_refused_as_any_upload_before_anything_is_signed(
        make_host: Callable[..., LambdaHost], s3_server: S3Endpoint, s3_bucket: str) -> None:
    host = make_host(TELEDROP_LIMITS__MAX_UPLOAD_SIZE="1MiB")
    too_large = direct_create(host, {"filename": "x.bin", "size": 2 * 1024 * 1024},
                              accept="application/json")
    assert too_large["statusCode"] == 413
    assert json.loads(body_of(too_large))["error"]["code"] == "too_large"
    not_json = host(event("POST", "/api/direct-uploads", body=b"{size"))
    assert (not_json["statusCode"], body_of(not_json)) == \
        (400, b"send a JSON body (Content-Type: application/json)\n")
    assert bucket_uploads(s3_server, s3_bucket) == []


# -- the same errors as the WSGI host ------------------------------------------------------

ERROR_REQUESTS = [
    ("GET", "/nosuchdrop", "", {}, None),
    ("GET", "/nosuchdrop", "", {"accept": "application/json"}, None),
    ("GET", "/api/drops/no", "", {"accept": "application/json"}, None),
    ("GET", "/.hidden", "", {}, None),
    ("POST", "/healthz", "", {"accept": "application/json"}, None),
    ("DELETE", "/api", "", {}, None),
    ("PATCH", "/", "", {}, None),
    ("PUT", "/a.bin", "slug=ab", {}, b"x"),
    ("PUT", "/a.bin", "expires=forever", {"accept": "application/json"}, b"x"),
    ("PUT", "/a.bin", "password=x", {}, b"x"),
    ("PUT", "/a.bin", "", {"authorization": "Bearer wrong"}, b"x"),
    ("POST", "/", "", {"content-type": "text/plain"}, b"x"),
    ("POST", "/", "", {"content-type": "multipart/form-data; boundary=zz"}, b"--zz\r\n"),
    ("GET", "/api/drops", "", {"accept": "application/json"}, None),
    ("PATCH", "/api/drops/abc", "", {"authorization": f"Bearer {OWNER_TOKEN}"}, b"[1]"),
    ("GET", "/api/drops", "sort=colour", {"authorization": f"Bearer {OWNER_TOKEN}"}, None),
    ("PATCH", "/api/drops/abc", "", {"authorization": f"Bearer {OWNER_TOKEN}"}, b"x" * 70_000),
    ("POST", "/api/direct-uploads", "", {"accept": "application/json"}, b'{"size": -1}'),
    ("POST", "/api/direct-uploads", "", {}, b'{"size": 1, "colour": "red"}'),
    ("POST", "/api/direct-uploads", "slug=api", {}, b'{"size": 1}'),
    ("POST", "/api/direct-uploads/nosuch/complete", "", {}, b'{"parts": []}'),
    ("DELETE", "/api/direct-uploads/nosuch", "", {"accept": "application/json"}, None),
]


#: What an error carries besides its status, type and body. ``Allow`` is compared as a set:
#: werkzeug lists a 405's methods in a set's order.
ERROR_HEADERS = ("WWW-Authenticate", "Retry-After", "Content-Range")
Answer = tuple[int, str, bytes, dict[str, str], set[str]]


def answer(status: int, headers: Any, body: bytes) -> Answer:
    allow = {m.strip() for m in headers["Allow"].split(",")} if "Allow" in headers else set()
    return (status, headers["Content-Type"], body,
            {name: headers[name] for name in ERROR_HEADERS if name in headers}, allow)


def wsgi_answer(app: Flask, method: str, path: str, query: str, headers: dict[str, str],
                body: bytes | None) -> Answer:
    response = app.test_client().open(path, method=method, query_string=query,
                                      headers=headers, data=body)
    return answer(response.status_code, response.headers, response.data)


def lambda_answer(host: LambdaHost, method: str, path: str, query: str,
                  headers: dict[str, str], body: bytes | None) -> Answer:
    result = host(event(method, path, query, headers, body))
    return answer(result["statusCode"], result["headers"], body_of(result))


def test_an_error_reads_as_the_wsgi_host_writes_it(host: LambdaHost, wsgi_app: Flask) -> None:
    for case in ERROR_REQUESTS:  # one host and app for all: each cold start takes seconds
        expected = wsgi_answer(wsgi_app, *case)
        assert expected[0] >= 400, case
        assert lambda_answer(host, *case) == expected, case


def test_drop_errors_read_as_the_wsgi_host_writes_them(host: LambdaHost, wsgi_app: Flask) -> None:
    created = put(host, b"x", query="slug=taken-one&max_downloads=1")
    token = created["headers"]["X-Delete-Token"]
    protected = slug_of(put(host, b"x", **{"x-drop-password": "pw"}))
    cases = [
        ("PUT", "/b.bin", "slug=taken-one", {}, b"y"),
        ("DELETE", "/taken-one", "", {"x-delete-token": "wrong"}, None),
        ("GET", "/taken-one", "", {"range": "bytes=9-"}, None),
        ("GET", f"/{protected}", "", {"accept": "application/json"}, None),
        ("GET", f"/api/drops/{protected}", "", {"x-drop-password": "no"}, None),
    ]
    for case in cases:
        assert lambda_answer(host, *case) == wsgi_answer(wsgi_app, *case), case
    follow(host(event("GET", "/taken-one")))
    gone = ("GET", "/taken-one", "", {"accept": "application/json"}, None)
    assert lambda_answer(host, *gone) == wsgi_answer(wsgi_app, *gone)
    assert lambda_answer(host, *gone)[0] == 410
    assert host(event("DELETE", "/taken-one", headers={"x-delete-token": token})
                )["statusCode"] == 204


class Broken:
    @hookimpl
    def teledrop_authorize_upload(self, request: Any) -> None:
        raise RuntimeError("a plugin's bug, with a secret path /srv/keys")


def test_a_server_error_is_one_line_without_a_traceback_and_logged(
        make_host: Callable[..., LambdaHost], caplog: pytest.LogCaptureFixture) -> None:
    host = make_host(plugins=(Broken(),))
    with caplog.at_level(logging.ERROR, "teledrop"):
        result = host(event("PUT", "/a.bin", headers={"accept": "application/json"},
                            body=b"x"))
    assert result["statusCode"] == 500
    assert json.loads(body_of(result)) == {"error": {"code": "error",
                                                     "message": "internal server error"}}
    assert any(r.exc_info and "secret path" in str(r.exc_info[1]) for r in caplog.records)


# -- the cold start ---------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "key", "named"), [
    ({}, "storage.plugin", "'local_storage'"),
    ({"TELEDROP_STORAGE__PLUGIN": "s3_storage"}, "metadata.plugin", "'sqlite_meta'"),
])
def test_a_cold_start_on_local_backends_stops_with_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        env: dict[str, str], key: str, named: str) -> None:
    monkeypatch.chdir(tmp_path)  # no conf/teledrop.toml here
    with caplog.at_level(logging.ERROR, "teledrop"), pytest.raises(StartupError) as raised:
        aws_lambda.start(env)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"defaults: {key}: the AWS Lambda host needs ")
    assert named in message
    assert [r.getMessage() for r in caplog.records] == [f"teledrop: {message}"]
    assert list(tmp_path.iterdir()) == []  # no database or file root was made


def test_the_module_refuses_a_local_cold_start_inside_lambda_at_import(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import teledrop.hosts.aws_lambda"], capture_output=True,
        text=True, timeout=60, cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9"})
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if "teledrop: " in line]
    assert lines and lines[0].endswith(
        "teledrop: defaults: storage.plugin: the AWS Lambda host needs s3_storage, not "
        "'local_storage': a function keeps nothing on its own disk")


def test_the_handler_starts_once_from_the_environment(
        lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in lambda_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(aws_lambda, "_host", None)
    first = aws_lambda.handler(event("GET", "/healthz"), None)
    started = aws_lambda._host
    try:
        assert first["statusCode"] == 200
        created = aws_lambda.handler(event("PUT", "/a.bin", body=b"x"), None)
        assert created["statusCode"] == 201
        assert aws_lambda._host is started
        location = urlsplit(aws_lambda.handler(
            event("GET", f"/{slug_of(created)}"), None)["headers"]["Location"])
        # downloads = "proxy" (the default) does not matter: a function always redirects
        assert "X-Amz-Signature" in parse_qs(location.query)
    finally:
        assert started is not None
        started.service.close()
