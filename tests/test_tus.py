"""The tus 1.0 endpoints under /api/uploads through Flask's test client: the protocol's
headers on every answer, its negative cases (412, 415, 409, 404, 413, 423, 400), creation
with and without bytes, deferred length, termination, X-HTTP-Method-Override, CORS for
browsers, and every refusal of an ordinary upload happening at creation."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from teledrop.core import resumable
from teledrop.core.drop import now
from teledrop.core.owners import create_token
from teledrop.web.app import service_of
from tests.http_helpers import blake3_hash

TUS = {"Tus-Resumable": "1.0.0"}
BYTES = {**TUS, "Content-Type": "application/offset+octet-stream"}
DATA = b"resumable bytes " * 4096


def meta(**values: str) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}"
                    for key, value in values.items())


def create(client: Any, length: int | None = len(DATA), headers: dict[str, str] | None = None,
           **metadata: str) -> TestResponse:
    sizing = {"Upload-Length": str(length)} if length is not None else \
        {"Upload-Defer-Length": "1"}
    return client.post("/api/uploads", headers={
        **TUS, **sizing, "Upload-Metadata": meta(filename="notes.txt", **metadata),
        **(headers or {})})


def location(response: TestResponse) -> str:
    assert response.status_code == 201, response.data
    return response.headers["Location"]


def patch(client: Any, url: str, offset: int, data: bytes, **headers: str) -> TestResponse:
    return client.patch(url, data=data, headers={**BYTES, "Upload-Offset": str(offset),
                                                 **headers})


def staging(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "files" / "staging").iterdir())


def test_options_says_what_the_server_speaks(client: Any) -> None:
    answer = client.options("/api/uploads")
    assert answer.status_code == 204
    assert answer.headers["Tus-Version"] == "1.0.0"
    assert answer.headers["Tus-Resumable"] == "1.0.0"
    assert set(answer.headers["Tus-Extension"].split(",")) == {
        "creation", "creation-with-upload", "creation-defer-length", "termination",
        "expiration"}
    assert answer.headers["Tus-Max-Size"] == str(10 * 1024**3)


def test_an_upload_in_two_patches_becomes_a_drop(client: Any) -> None:
    url = location(create(client, title="From tus", unknown="kept"))
    head = client.head(url, headers=TUS)
    assert head.status_code == 200 and head.headers["Upload-Offset"] == "0"
    assert head.headers["Upload-Length"] == str(len(DATA))
    assert head.headers["Cache-Control"] == "no-store"
    assert head.headers["Upload-Metadata"] == meta(filename="notes.txt", title="From tus",
                                                   unknown="kept")
    first = patch(client, url, 0, DATA[:1000])
    assert first.status_code == 204 and first.headers["Upload-Offset"] == "1000"
    assert "X-Drop-Url" not in first.headers and "Upload-Expires" in first.headers
    assert client.get(url).status_code == 409  # not complete yet
    last = patch(client, url, 1000, DATA[1000:])
    assert last.status_code == 204 and last.headers["Upload-Offset"] == str(len(DATA))
    link, token = last.headers["X-Drop-Url"], last.headers["X-Delete-Token"]
    slug = link.rsplit("/", 1)[1]
    assert client.get(f"/{slug}").data == DATA
    info = client.get(url)
    assert info.status_code == 200 and "delete_token" not in info.json
    assert (info.json["slug"], info.json["hash"], info.json["title"]) == \
        (slug, blake3_hash(DATA), "From tus")
    done = client.head(url, headers=TUS)  # a client that lost the last answer learns it
    assert done.headers["Upload-Offset"] == done.headers["Upload-Length"] == str(len(DATA))
    assert client.delete(f"/{slug}", headers={"X-Delete-Token": token}).status_code == 204
    assert client.get(url).status_code == 404


def test_every_answer_carries_tus_resumable(client: Any) -> None:
    url = location(create(client))
    for answer in (client.head(url, headers=TUS), client.get(url),
                   client.head("/api/uploads/" + "0" * 40, headers=TUS),
                   client.put(url, headers=TUS), client.post("/api/uploads")):
        assert answer.headers.get("Tus-Resumable") == "1.0.0", answer.status_code


@pytest.mark.parametrize("version", [None, "0.2.2", "2.0.0"])
def test_another_version_is_412(client: Any, version: str | None) -> None:
    url = location(create(client))
    headers = {} if version is None else {"Tus-Resumable": version}
    answers = [client.post("/api/uploads", headers={**headers, "Upload-Length": "1"}),
               client.head(url, headers=headers),
               client.patch(url, data=b"x", headers={
                   **headers, "Upload-Offset": "0",
                   "Content-Type": "application/offset+octet-stream"}),
               client.delete(url, headers=headers)]
    for answer in answers:
        assert answer.status_code == 412 and answer.headers["Tus-Version"] == "1.0.0"
    assert client.head(url, headers=TUS).headers["Upload-Offset"] == "0"


def test_a_wrong_offset_is_409_and_a_wrong_content_type_415(client: Any) -> None:
    url = location(create(client))
    assert patch(client, url, 0, DATA[:10]).status_code == 204
    assert patch(client, url, 0, b"again").status_code == 409
    assert patch(client, url, 11, b"gap").status_code == 409
    wrong = client.patch(url, data=b"x", headers={**TUS, "Upload-Offset": "10",
                                                  "Content-Type": "application/octet-stream"})
    assert wrong.status_code == 415
    assert client.head(url, headers=TUS).headers["Upload-Offset"] == "10"


@pytest.mark.parametrize("headers", [
    {},  # no Upload-Offset
    {"Upload-Offset": "-1"},
    {"Upload-Offset": "ten"},
])
def test_a_missing_or_malformed_offset_is_400(client: Any, headers: dict[str, str]) -> None:
    url = location(create(client))
    assert client.patch(url, data=b"x", headers={**BYTES, **headers}).status_code == 400


def test_unknown_and_expired_uploads_are_404(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    client = app.test_client()
    unknown = "/api/uploads/" + "ab" * 20
    assert client.head(unknown, headers=TUS).status_code == 404
    assert patch(client, unknown, 0, b"x").status_code == 404
    assert client.delete(unknown, headers=TUS).status_code == 404
    assert client.get(unknown).status_code == 404
    url = location(create(client))
    metadata = service_of(app).metadata
    state = metadata.get_upload(url.rsplit("/", 1)[1])
    metadata.delete_upload(state.id)
    metadata.insert_upload(type(state)(**{**state.__dict__, "expires_at": now()}))
    assert client.head(url, headers=TUS).status_code == 404
    assert patch(client, url, 0, b"x").status_code == 404


def test_over_the_limit_is_413_at_creation_and_past_the_length(
        make_app: Callable[..., Flask], data_dir: Path) -> None:
    client = make_app(limits={"max_upload_size": "1KiB"}).test_client()
    assert create(client, length=1025).status_code == 413
    assert staging(data_dir) == []
    url = location(create(client, length=10))
    assert patch(client, url, 0, b"x" * 11).status_code == 413
    deferred = location(create(client, length=None))
    assert patch(client, deferred, 0, b"", **{"Upload-Length": "1025"}).status_code == 413


def test_a_second_patch_while_one_runs_is_423(app: Flask) -> None:
    client = app.test_client()
    url = location(create(client))
    upload_id = url.rsplit("/", 1)[1]
    resumable.lease(service_of(app), upload_id)  # a request on another host, running
    assert patch(client, url, 0, b"x").status_code == 423
    assert patch(client, url, 5, b"x").status_code == 423  # whatever its offset
    assert client.delete(url, headers=TUS).status_code == 423


def test_creation_with_upload_can_complete_at_once(client: Any) -> None:
    answer = client.post("/api/uploads", data=DATA, headers={
        **BYTES, "Upload-Length": str(len(DATA)), "Upload-Metadata": meta(filename="a.txt")})
    assert answer.status_code == 201 and answer.headers["Upload-Offset"] == str(len(DATA))
    slug = answer.headers["X-Drop-Url"].rsplit("/", 1)[1]
    assert answer.headers["X-Delete-Token"] and client.get(f"/{slug}").data == DATA
    part = client.post("/api/uploads", data=DATA[:7], headers={
        **BYTES, "Upload-Length": str(len(DATA))})
    assert part.status_code == 201 and part.headers["Upload-Offset"] == "7"
    assert "X-Drop-Url" not in part.headers


def test_an_empty_file_is_a_drop_at_creation(client: Any) -> None:
    answer = create(client, length=0)
    assert answer.status_code == 201 and answer.headers["Upload-Offset"] == "0"
    slug = answer.headers["X-Drop-Url"].rsplit("/", 1)[1]
    assert client.get(f"/{slug}").data == b""
    assert client.get(answer.headers["Location"]).json["size"] == 0


def test_creation_with_bytes_of_another_type_is_415_and_creates_nothing(
        client: Any, data_dir: Path) -> None:
    answer = client.post("/api/uploads", data=b"x", headers={
        **TUS, "Upload-Length": "1", "Content-Type": "text/plain"})
    assert answer.status_code == 415 and staging(data_dir) == []


def test_a_deferred_length_comes_with_a_later_patch(client: Any) -> None:
    url = location(create(client, length=None))
    head = client.head(url, headers=TUS)
    assert head.headers["Upload-Defer-Length"] == "1" and "Upload-Length" not in head.headers
    assert patch(client, url, 0, DATA[:100]).status_code == 204
    done = patch(client, url, 100, DATA[100:], **{"Upload-Length": str(len(DATA))})
    assert done.status_code == 204 and "X-Drop-Url" in done.headers


@pytest.mark.parametrize("headers", [
    {},  # neither
    {"Upload-Length": "5", "Upload-Defer-Length": "1"},
    {"Upload-Defer-Length": "2"},
    {"Upload-Length": "5", "Upload-Metadata": meta(password="in the metadata")},
    {"Upload-Length": "5", "Upload-Metadata": "filename !!!"},
    {"Upload-Length": "5", "Upload-Metadata": meta(slug="not a slug")},
    {"Upload-Length": "5", "Upload-Metadata": meta(expires="999d")},
])
def test_malformed_creations_are_400_before_a_byte(client: Any, data_dir: Path,
                                                   headers: dict[str, str]) -> None:
    assert client.post("/api/uploads", headers={**TUS, **headers}).status_code == 400
    assert staging(data_dir) == []


def test_auth_and_a_taken_slug_are_refused_at_creation(make_app: Callable[..., Flask]) -> None:
    app = make_app(auth={"require_token": True})
    client = app.test_client()
    assert create(client).status_code == 401
    token = create_token(service_of(app), "alice")
    bearer = {"Authorization": f"Bearer {token}"}
    url = location(create(client, headers=bearer, slug="mine", private="true"))
    patch(client, url, 0, DATA)
    assert create(client, headers=bearer, slug="mine").status_code == 409
    drop = service_of(app).metadata.get("mine")
    assert drop is not None and drop.owner == "alice" and drop.private


def test_a_password_comes_in_its_header(client: Any) -> None:
    url = location(create(client, length=4, headers={"X-Drop-Password": "pw"}))
    slug = patch(client, url, 0, b"data").headers["X-Drop-Url"].rsplit("/", 1)[1]
    assert client.get(f"/{slug}").status_code == 401
    assert client.get(f"/{slug}", headers={"X-Drop-Password": "pw"}).data == b"data"


def test_termination_removes_everything_staged(client: Any, data_dir: Path) -> None:
    url = location(create(client))
    patch(client, url, 0, DATA[:100])
    assert client.delete(url, headers=TUS).status_code == 204
    assert staging(data_dir) == []
    assert client.head(url, headers=TUS).status_code == 404


def test_method_override_on_post(client: Any, data_dir: Path) -> None:
    url = location(create(client))
    override = client.post(url, data=DATA[:5], headers={
        **BYTES, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH"})
    assert override.status_code == 204 and override.headers["Upload-Offset"] == "5"
    head = client.post(url, headers={**TUS, "X-HTTP-Method-Override": "HEAD"})
    assert head.status_code == 200 and head.headers["Upload-Offset"] == "5"
    assert client.post(url, headers={**TUS, "X-HTTP-Method-Override": "GET"}).status_code == 405
    assert client.post(url, headers={**TUS, "X-HTTP-Method-Override": "DELETE"}).status_code \
        == 204
    assert staging(data_dir) == []


def test_browsers_get_cors_for_the_tus_headers(client: Any) -> None:
    origin = {"Origin": "https://elsewhere.example"}
    preflight = client.options("/api/uploads/" + "0" * 40, headers={
        **origin, "Access-Control-Request-Method": "PATCH"})
    assert preflight.status_code == 204
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Upload-Offset" in preflight.headers["Access-Control-Allow-Headers"]
    created = create(client, headers=origin)
    exposed = {h.strip() for h in created.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Location", "Upload-Offset", "X-Drop-Url", "X-Delete-Token", "Upload-Expires",
            "Tus-Resumable"} <= exposed
    assert created.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Origin" not in create(client).headers


def test_upload_expires_is_sent_on_post_head_and_patch(make_app: Callable[..., Flask]) -> None:
    client = make_app(limits={"resumable_expires": "2h"}).test_client()
    created = create(client)
    url = location(created)
    expires = created.headers["Upload-Expires"]
    assert expires.endswith(" GMT")
    assert client.head(url, headers=TUS).headers["Upload-Expires"] == expires
    assert patch(client, url, 0, b"x").headers["Upload-Expires"] == expires
