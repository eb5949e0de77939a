"""teledrop on the S3 storage: start-up, config, gc and the HTTP download contract, against a
real S3 server (SeaweedFS unless TELEDROP_TEST_S3_ENDPOINT)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from click.testing import CliRunner
from flask import Flask

from teledrop.cli import main
from teledrop.composition import start
from teledrop.core import gc
from teledrop.core.config import Config
from teledrop.core.effective import effective_settings, render
from teledrop.core.errors import StartupError
from teledrop.web.app import service_of
from tests.http_helpers import blake3_hash, post_file, put_file, slug_of
from tests.live_server import live_server
from tests.services.seaweedfs import S3Endpoint, SeaweedFS, free_ports

MIB = 1024**2

pytestmark = pytest.mark.entry_points("s3_storage")


@pytest.fixture
def s3_sections(s3_server: S3Endpoint, s3_bucket: str) -> Callable[..., dict[str, Any]]:
    """Config sections that select the S3 storage on this test's bucket."""

    def sections(**settings: Any) -> dict[str, Any]:
        table = s3_server.storage_settings(s3_bucket, part_size="5MiB", **settings)
        return {"storage": {"plugin": "s3_storage"}, "plugins": {"s3_storage": table}}

    return sections


@pytest.fixture
def s3_app(make_app: Callable[..., Flask], make_config: Callable[..., Config],
           s3_sections: Callable[..., dict[str, Any]]) -> Callable[..., Flask]:
    """``s3_app(**settings)``: an app on the S3 storage (and sqlite_meta), with these
    ``[plugins.s3_storage]`` settings."""

    def make(**settings: Any) -> Flask:
        return make_app(config=make_config(**s3_sections(**settings)))

    return make


def uploads_of(s3_server: S3Endpoint, bucket: str) -> list[dict[str, Any]]:
    return s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def keys_of(s3_server: S3Endpoint, bucket: str) -> set[str]:
    listing = s3_server.client().list_objects_v2(Bucket=bucket)
    return {item["Key"] for item in listing.get("Contents", [])}


def pattern(size: int) -> bytes:
    return (bytes(range(251)) * (size // 251 + 1))[:size]


# -- config and start-up -----------------------------------------------------------------

def test_every_setting_has_its_default(make_config: Callable[..., Config]) -> None:
    config = make_config()
    settings = start(config)
    try:
        s3 = settings.plugin_settings["s3_storage"]
    finally:
        settings.close()
    assert (s3.bucket, s3.endpoint_url, s3.region, s3.prefix, s3.access_key_id,
            s3.secret_access_key, s3.addressing_style, s3.part_size, s3.downloads,
            s3.presign_expires) == ("teledrop", "", "", "", "", "", "auto", 16 * MIB, "proxy", 60)


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("part_size", "4MiB", "must be between 5 MiB and 5 GiB"),
    ("part_size", "lots", "not a size"),
    ("downloads", "direct", "expected one of proxy, redirect"),
    ("addressing_style", "dns", "expected one of auto, path, virtual"),
    ("presign_expires", "8d", "must be between 1s and 7d"),
    ("endpoint_url", "127.0.0.1:8333", "must start with http:// or https://"),
    ("bucket", "", "cannot be empty"),
])
def test_a_wrong_setting_is_one_line_naming_it(make_config: Callable[..., Config], key: str,
                                               value: str, problem: str) -> None:
    config = make_config(plugins={"s3_storage": {key: value}})
    with pytest.raises(StartupError) as raised:
        start(config)
    assert f"plugins.s3_storage.{key}" in str(raised.value)
    assert problem in str(raised.value)


def test_only_one_of_the_two_keys_is_refused(make_config: Callable[..., Config]) -> None:
    with pytest.raises(StartupError, match="set both access_key_id and secret_access_key"):
        start(make_config(plugins={"s3_storage": {"access_key_id": "AKIA"}}))


def test_the_secret_key_is_masked_by_teledrop_config(
        s3_app: Callable[..., Flask], s3_server: S3Endpoint) -> None:
    service = service_of(s3_app())
    text = render(effective_settings(service.config, service.plugin_settings))
    assert s3_server.secret_key not in text
    assert 'secret_access_key = "****"' in text
    assert f'access_key_id = "{s3_server.access_key}"' in text


def test_teledrop_config_masks_the_secret_key_from_a_file_or_the_environment(
        tmp_path: Path) -> None:
    path = tmp_path / "teledrop.toml"
    path.write_text('[plugins.s3_storage]\naccess_key_id = "AKIDEXAMPLE"\n'
                    'secret_access_key = "file-secret"\n')
    from_file = CliRunner().invoke(main, ["config", "--config", str(path)])
    assert from_file.exit_code == 0, from_file.output
    assert "file-secret" not in from_file.output
    assert f'secret_access_key = "****"  # {path}' in from_file.output
    assert 'access_key_id = "AKIDEXAMPLE"' in from_file.output
    env = {"TELEDROP_PLUGINS__S3_STORAGE__SECRET_ACCESS_KEY": "env-secret"}
    from_env = CliRunner().invoke(main, ["config", "--config", str(path)], env=env)
    assert "env-secret" not in from_env.output
    assert 'secret_access_key = "****"  # env TELEDROP_PLUGINS__S3_STORAGE__SECRET_ACCESS_KEY' \
        in from_env.output


def startup_error(make_config: Callable[..., Config], **table: Any) -> str:
    config = make_config(storage={"plugin": "s3_storage"}, plugins={"s3_storage": table})
    with pytest.raises(StartupError) as raised:
        start(config)
    message = str(raised.value)
    assert "\n" not in message
    assert "storage plugin 's3_storage' failed to start" in message
    return message


def test_a_missing_bucket_stops_start_up_with_one_line(
        make_config: Callable[..., Config], s3_server: S3Endpoint) -> None:
    table = s3_server.storage_settings("teledrop-no-such-bucket")
    message = startup_error(make_config, **table)
    assert "'teledrop-no-such-bucket' does not exist" in message
    assert s3_server.url in message


def test_wrong_credentials_stop_start_up_with_one_line(
        make_config: Callable[..., Config], s3_server: S3Endpoint, s3_bucket: str) -> None:
    table = {**s3_server.storage_settings(s3_bucket), "secret_access_key": "wrong"}
    message = startup_error(make_config, **table)
    assert f"'{s3_bucket}'" in message and s3_server.url in message
    assert "refused these credentials" in message
    assert "wrong" not in message


def test_an_unreachable_server_starts_and_answers_503(s3_app: Callable[..., Flask]) -> None:
    (port,) = free_ports(1)
    app = s3_app(endpoint_url=f"http://127.0.0.1:{port}")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["error"]["code"] == "storage_unavailable"
    assert f"127.0.0.1:{port}" in response.json["error"]["message"]
    upload = post_file(app.test_client(), b"nowhere to go")
    assert upload.status_code == 503


class _ServerError(BaseHTTPRequestHandler):
    """An object store that is up but failing: every request is a 500."""

    def _fail(self) -> None:
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET = do_PUT = do_POST = _fail

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_server_answering_5xx_at_start_up_starts_and_answers_503(
        s3_app: Callable[..., Flask]) -> None:
    failing = ThreadingHTTPServer(("127.0.0.1", 0), _ServerError)
    thread = threading.Thread(target=failing.serve_forever, daemon=True)
    thread.start()
    try:
        app = s3_app(endpoint_url=f"http://127.0.0.1:{failing.server_port}")
        response = app.test_client().get("/healthz")
        assert response.status_code == 503
        assert response.json["error"]["code"] == "storage_unavailable"
    finally:
        failing.shutdown()


# -- gc ------------------------------------------------------------------------------------

def test_gc_aborts_stale_uploads_and_deletes_record_less_objects(
        s3_app: Callable[..., Flask], s3_server: S3Endpoint, s3_bucket: str) -> None:
    app = s3_app()
    service = service_of(app)
    client = s3_server.client()
    kept = slug_of(put_file(app.test_client(), data=b"has a record"))
    orphan = f"blobs/{uuid.uuid4().hex}"
    client.put_object(Bucket=s3_bucket, Key=orphan, Body=b"no record")
    stale = client.create_multipart_upload(Bucket=s3_bucket, Key=f"blobs/{uuid.uuid4().hex}")
    time.sleep(3)
    young = client.create_multipart_upload(Bucket=s3_bucket, Key=f"blobs/{uuid.uuid4().hex}")
    removed = list(gc.collect(service, older_than=2))
    assert {(r.kind, r.name.split(".")[0]) for r in removed} == {
        ("staging", stale["Key"].split("/")[1]), ("orphan", orphan.split("/")[1])}
    assert [u["UploadId"] for u in uploads_of(s3_server, s3_bucket)] == [young["UploadId"]]
    assert orphan not in keys_of(s3_server, s3_bucket)
    assert app.test_client().get(f"/{kept}").data == b"has a record"


def test_gc_judges_an_upload_in_progress_by_its_last_part(
        s3_app: Callable[..., Flask], s3_server: S3Endpoint, s3_bucket: str) -> None:
    """An upload that began long ago but is still sending is not debris."""
    service = service_of(s3_app())
    client = s3_server.client()
    key = f"blobs/{uuid.uuid4().hex}"
    sending = client.create_multipart_upload(Bucket=s3_bucket, Key=key)
    time.sleep(3)
    client.upload_part(Bucket=s3_bucket, Key=key, UploadId=sending["UploadId"], PartNumber=1,
                       Body=b"x" * 5 * MIB)
    assert list(gc.collect(service, older_than=2)) == []
    assert [u["UploadId"] for u in uploads_of(s3_server, s3_bucket)] == [sending["UploadId"]]
    time.sleep(3)
    removed = list(gc.collect(service, older_than=2))
    assert [(r.kind, r.name) for r in removed] == [
        ("staging", f"{key.split('/')[1]}.{sending['UploadId']}")]
    assert uploads_of(s3_server, s3_bucket) == []


def test_gc_dry_run_removes_nothing(s3_app: Callable[..., Flask], s3_server: S3Endpoint,
                                    s3_bucket: str) -> None:
    service = service_of(s3_app())
    client = s3_server.client()
    client.create_multipart_upload(Bucket=s3_bucket, Key=f"blobs/{uuid.uuid4().hex}")
    client.put_object(Bucket=s3_bucket, Key=f"blobs/{uuid.uuid4().hex}", Body=b"orphan")
    assert len(list(gc.collect(service, older_than=0, dry_run=True))) == 2
    assert len(uploads_of(s3_server, s3_bucket)) == 1
    assert len(keys_of(s3_server, s3_bucket)) == 1


# -- uploads -------------------------------------------------------------------------------

def test_a_form_upload_of_several_parts_is_stored_once(
        s3_app: Callable[..., Flask], s3_server: S3Endpoint, s3_bucket: str) -> None:
    app = s3_app()
    data = pattern(12 * MIB)
    response = post_file(app.test_client(), data, "big.bin")
    assert response.status_code == 201
    assert uploads_of(s3_server, s3_bucket) == []
    (key,) = keys_of(s3_server, s3_bucket)
    head = s3_server.client().head_object(Bucket=s3_bucket, Key=key)
    assert head["ContentLength"] == len(data) and head["ETag"].endswith('-3"')
    assert app.test_client().get(f"/{slug_of(response)}").data == data


def test_a_raw_put_is_stored_and_a_refused_one_leaves_nothing(
        s3_app: Callable[..., Flask], s3_server: S3Endpoint, s3_bucket: str) -> None:
    app = s3_app()
    client = app.test_client()
    data = pattern(6 * MIB)
    first = put_file(client, "/raw.bin", data, query={"slug": "taken-slug"})
    assert first.status_code == 201
    again = put_file(client, "/raw.bin", data, query={"slug": "taken-slug"})
    assert again.status_code == 409
    assert uploads_of(s3_server, s3_bucket) == []
    assert len(keys_of(s3_server, s3_bucket)) == 1
    assert client.get("/taken-slug").data == data


# -- downloads: proxy ------------------------------------------------------------------------

@pytest.fixture
def big_drop(s3_app: Callable[..., Flask]) -> tuple[Flask, str, bytes]:
    app = s3_app()
    data = pattern(11 * MIB + 7)
    response = put_file(app.test_client(), "/report%20%C3%A9t%C3%A9.pdf", data,
                        headers={"Content-Type": "application/pdf"})
    assert response.status_code == 201
    return app, slug_of(response), data


def test_a_proxied_download_carries_every_header(big_drop: tuple[Flask, str, bytes]) -> None:
    app, slug, data = big_drop
    response = app.test_client().get(f"/{slug}")
    assert response.status_code == 200
    assert response.data == data
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["ETag"] == f'"{blake3_hash(data)}"'
    assert response.headers["Last-Modified"]
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Disposition"] == \
        "attachment; filename=\"report _t_.pdf\"; filename*=UTF-8''report%20%C3%A9t%C3%A9.pdf"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Location" not in response.headers


def test_a_proxied_range_asks_s3_for_it(big_drop: tuple[Flask, str, bytes]) -> None:
    app, slug, data = big_drop
    storage = service_of(app).storage
    sent: list[str] = []
    storage.client.meta.events.register(  # type: ignore[attr-defined]
        "before-send.s3.GetObject",
        lambda request, **_: sent.append(request.headers["Range"].decode()))
    start = 5 * MIB - 100
    response = app.test_client().get(f"/{slug}", headers={"Range": f"bytes={start}-{start + 199}"})
    assert response.status_code == 206
    assert response.data == data[start:start + 200]
    assert response.headers["Content-Range"] == f"bytes {start}-{start + 199}/{len(data)}"
    assert response.headers["Content-Length"] == "200"
    assert sent == [f"bytes={start}-{start + 199}"]
    suffix = app.test_client().get(f"/{slug}", headers={"Range": "bytes=-10"})
    assert suffix.status_code == 206 and suffix.data == data[-10:]


def test_a_proxied_download_answers_416_and_304_without_reading(
        big_drop: tuple[Flask, str, bytes]) -> None:
    app, slug, data = big_drop
    storage = service_of(app).storage
    sent: list[object] = []
    storage.client.meta.events.register(  # type: ignore[attr-defined]
        "before-send.s3.GetObject", lambda request, **_: sent.append(request))
    past = app.test_client().get(f"/{slug}", headers={"Range": f"bytes={len(data)}-"})
    assert past.status_code == 416
    assert past.headers["Content-Range"] == f"bytes */{len(data)}"
    etag = f'"{blake3_hash(data)}"'
    same = app.test_client().get(f"/{slug}", headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.data == b""
    head = app.test_client().head(f"/{slug}")
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(data))
    assert sent == []


def test_a_drop_whose_object_is_gone_is_503_blob_missing(
        s3_app: Callable[..., Flask], s3_server: S3Endpoint, s3_bucket: str) -> None:
    app = s3_app()
    slug = slug_of(put_file(app.test_client(), data=b"soon gone"))
    (key,) = keys_of(s3_server, s3_bucket)
    s3_server.client().delete_object(Bucket=s3_bucket, Key=key)
    response = app.test_client().get(f"/{slug}", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert response.json["error"]["code"] == "blob_missing"


def test_an_object_gone_between_its_head_and_its_get_is_503_and_not_counted(
        s3_app: Callable[..., Flask], s3_server: S3Endpoint, s3_bucket: str) -> None:
    app = s3_app()
    data = pattern(3 * MIB)
    slug = slug_of(put_file(app.test_client(), data=data, query={"max_downloads": "1"}))
    (key,) = keys_of(s3_server, s3_bucket)
    storage = service_of(app).storage
    # The object goes after teledrop has found it (HeadObject) and before its bytes are
    # asked for: another host's delete, or a bucket emptied by hand.

    def delete_first(**_: Any) -> None:  # returning a value would stand in for S3's answer
        s3_server.client().delete_object(Bucket=s3_bucket, Key=key)

    storage.client.meta.events.register(  # type: ignore[attr-defined]
        "before-call.s3.GetObject", delete_first)
    for headers in ({}, {"Range": "bytes=100-199"}):
        response = app.test_client().get(f"/{slug}",
                                         headers={"Accept": "application/json", **headers})
        assert response.status_code == 503, response.data[:200]
        assert response.json["error"]["code"] == "blob_missing"
    info = app.test_client().get(f"/api/drops/{slug}").json
    assert info["downloads"] == 0


# -- downloads: redirect ---------------------------------------------------------------------

def redirected(app: Flask, path: str, **kwargs: Any) -> Any:
    response = app.test_client().get(path, **kwargs)
    assert response.status_code == 302, response.data
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    return response


def test_redirect_mode_sends_a_presigned_url_that_serves_the_bytes_as_an_attachment(
        s3_app: Callable[..., Flask], s3_server: S3Endpoint) -> None:
    app = s3_app(downloads="redirect")
    data = b"<script>alert(1)</script>"
    slug = slug_of(put_file(app.test_client(), "/page%20%C3%A9.html", data,
                            headers={"Content-Type": "text/html"}))
    location = redirected(app, f"/{slug}").headers["Location"]
    assert location.startswith(s3_server.url + "/")
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=60" in location
    fetched = requests.get(location, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == data
    assert fetched.headers["Content-Type"] == "application/octet-stream"
    assert fetched.headers["Content-Disposition"] == \
        "attachment; filename=\"page _.html\"; filename*=UTF-8''page%20%C3%A9.html"
    ranged = requests.get(location, headers={"Range": "bytes=8-12"}, timeout=10)
    assert ranged.status_code == 206 and ranged.content == data[8:13]


def test_redirect_mode_keeps_a_previewable_type_and_previews_inline(
        s3_app: Callable[..., Flask]) -> None:
    app = s3_app(downloads="redirect")
    slug = slug_of(put_file(app.test_client(), "/photo.png", b"\x89PNG not really",
                            headers={"Content-Type": "image/png"}))
    plain = requests.get(redirected(app, f"/{slug}").headers["Location"], timeout=10)
    assert plain.headers["Content-Type"] == "image/png"
    assert plain.headers["Content-Disposition"] == "attachment; filename=photo.png"
    preview = requests.get(redirected(app, f"/{slug}?preview").headers["Location"], timeout=10)
    assert preview.headers["Content-Disposition"] == "inline; filename=photo.png"


def test_a_tampered_or_expired_presigned_url_is_refused(s3_app: Callable[..., Flask]) -> None:
    app = s3_app(downloads="redirect", presign_expires="1s")
    slug = slug_of(put_file(app.test_client(), "/a.txt", b"secret bytes"))
    location = redirected(app, f"/{slug}").headers["Location"]
    parts = urlsplit(location)
    other = "1" if parts.path.endswith("0") else "0"  # another blob id, same signature
    other_key = location.replace(parts.path, parts.path[:-1] + other)
    assert requests.get(other_key, timeout=10).status_code == 403
    time.sleep(2.5)
    assert requests.get(location, timeout=10).status_code == 403


def test_redirect_mode_counts_each_redirect_as_a_download(s3_app: Callable[..., Flask]) -> None:
    app = s3_app(downloads="redirect")
    slug = slug_of(put_file(app.test_client(), "/a.txt", b"twice", query={"max_downloads": "2"}))
    head = app.test_client().head(f"/{slug}")  # never counted, never a URL
    assert head.status_code == 200 and "Location" not in head.headers
    assert head.headers["Content-Length"] == "5"
    redirected(app, f"/{slug}")
    redirected(app, f"/{slug}", headers={"Range": "bytes=0-1"})
    assert app.test_client().get(f"/{slug}").status_code == 410
    assert app.test_client().head(f"/{slug}").status_code == 410


def test_redirect_mode_answers_304_and_416_itself_without_counting(
        s3_app: Callable[..., Flask]) -> None:
    app = s3_app(downloads="redirect")
    data = b"conditional"
    slug = slug_of(put_file(app.test_client(), "/a.txt", data, query={"max_downloads": "1"}))
    same = app.test_client().get(f"/{slug}", headers={"If-None-Match": f'"{blake3_hash(data)}"'})
    assert same.status_code == 304 and "Location" not in same.headers
    past = app.test_client().get(f"/{slug}", headers={"Range": "bytes=100-"})
    assert past.status_code == 416 and "Location" not in past.headers
    redirected(app, f"/{slug}")  # the one download is still there
    assert app.test_client().get(f"/{slug}").status_code == 410


# -- under gunicorn ------------------------------------------------------------------------------

@pytest.mark.gunicorn
def test_gunicorn_streams_a_proxied_download_without_a_file_descriptor(
        tmp_path: Path, s3_sections: Callable[..., dict[str, Any]]) -> None:
    data = pattern(9 * MIB + 3)
    with live_server(tmp_path, server={"workers": 1}, **s3_sections()) as server:
        created = requests.put(server.url("/data.bin"), data=data, timeout=30)
        assert created.status_code == 201, created.text
        url = created.text.strip()
        full = requests.get(url, timeout=30)
        assert full.status_code == 200 and full.content == data
        assert full.headers["Content-Length"] == str(len(data))
        start = 5 * MIB - 3
        ranged = requests.get(url, headers={"Range": f"bytes={start}-{start + MIB}"}, timeout=30)
        assert ranged.status_code == 206
        assert ranged.content == data[start:start + MIB + 1]
        assert "Traceback" not in server.log()


def test_healthz_is_503_while_the_server_is_down_and_recovers_by_itself(
        make_app: Callable[..., Flask], make_config: Callable[..., Config],
        seaweedfs: SeaweedFS) -> None:
    client = seaweedfs.endpoint.client()
    bucket = f"teledrop-test-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    config = make_config(storage={"plugin": "s3_storage"},
                         plugins={"s3_storage": seaweedfs.endpoint.storage_settings(bucket)})
    http = make_app(config=config).test_client()
    assert http.get("/healthz").status_code == 200
    slug = slug_of(put_file(http, data=b"before"))
    with seaweedfs.stopped():
        down = http.get("/healthz")
        assert down.status_code == 503
        assert down.json["error"]["code"] == "storage_unavailable"
        assert bucket in down.json["error"]["message"]
        refused = put_file(http, data=b"during", headers={"Accept": "application/json"})
        assert refused.status_code == 503
        assert refused.json["error"]["code"] == "storage_unavailable"
    assert http.get("/healthz").status_code == 200
    assert http.get(f"/{slug}").data == b"before"
    assert len(client.list_objects_v2(Bucket=bucket)["Contents"]) == 1


def test_healthz_names_a_bucket_removed_while_running(
        s3_app: Callable[..., Flask], s3_server: S3Endpoint, s3_bucket: str) -> None:
    http = s3_app().test_client()
    s3_server.client().delete_bucket(Bucket=s3_bucket)
    response = http.get("/healthz")
    assert response.status_code == 503
    assert response.json["error"]["code"] == "storage_unavailable"
    assert response.json["error"]["message"] == \
        f"bucket '{s3_bucket}' does not exist at {s3_server.url}"
    s3_server.client().create_bucket(Bucket=s3_bucket)
    assert http.get("/healthz").status_code == 200
