"""teledrop's Lambda handler under the real runtime: ``awslambdaric`` running
``teledrop.hosts.aws_lambda.handler`` inside the AWS Lambda Runtime Interface Emulator
(tests/services/lambda_rie.py), invoked with payload format 2.0 events, on a real S3
server (SeaweedFS unless TELEDROP_TEST_S3_ENDPOINT) and a real PostgreSQL. Downloads are
followed to the bucket over HTTP, so what the presigned URLs allow is the S3 server's word.
Programs of their own (``teledrop upload``) reach the function over HTTP through the HTTP
API's stand-in (tests/services/lambda_http.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.lambda_events import event, multipart
from teledrop.hosts.assets import STATIC
from tests.services.lambda_http import HttpFront
from tests.services.lambda_rie import _REPORT, LambdaEmulator
from tests.services.postgres import PostgresServer
from tests.services.seaweedfs import S3Endpoint
from tests.support.hosts import SharedBackends, shared_backends
from tests.support.lambda_function import HANDLER, function_env, result_body, result_json
from tests.support.large_upload import upload_and_download

JSON = {"Accept": "application/json"}
#: The largest file an upload through an event may carry (inclusive).
EVENT_FILE_LIMIT = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def backends(s3_server: S3Endpoint, postgres_server: PostgresServer,
             ) -> Iterator[SharedBackends]:
    """One bucket and one database for the module's function."""
    with shared_backends(s3_server, postgres_server) as shared:
        yield shared


@pytest.fixture(scope="module")
def function(lambda_rie: Path, tmp_path_factory: pytest.TempPathFactory,
             backends: SharedBackends) -> Iterator[LambdaEmulator]:
    """The handler under the emulator, configured by environment variables alone."""
    env = function_env(backends.host_sections())
    emulator = LambdaEmulator(lambda_rie, HANDLER, env, tmp_path_factory.mktemp("lambda"))
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def front(function: LambdaEmulator) -> Iterator[HttpFront]:
    """The function's HTTP address."""
    with HttpFront(function) as started:
        yield started


def payload(size: int) -> bytes:
    return os.urandom(size)


def call(function: LambdaEmulator, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    result = function.invoke(event(method, path, **kwargs))
    assert "statusCode" in result, f"{result!r:.500}\n{function.log_tail()}"
    return result


def header(result: dict[str, Any], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in result.get("headers", {}).items() if k.lower() == wanted), None)


def fetch_redirect(result: dict[str, Any]) -> requests.Response:
    """The bucket's answer to the download's ``Location`` (a presigned GET)."""
    assert result["statusCode"] == 302, result
    location = header(result, "Location")
    assert location and "X-Amz-Signature=" in location, location
    return requests.get(location, timeout=30)


def test_multipart_upload_and_download_through_the_redirect(function: LambdaEmulator) -> None:
    data = payload(300_000)
    body, content_type = multipart(data, filename="report.bin")
    created = call(function, "POST", "/", headers={"Content-Type": content_type, **JSON},
                   body=body)
    assert created["statusCode"] == 201, created
    drop = result_json(created)
    assert drop["size"] == len(data) and drop["filename"] == "report.bin"
    assert header(created, "Location") == f"/{drop['slug']}"
    assert drop["url"].endswith(f"/{drop['slug']}")

    download = call(function, "GET", f"/{drop['slug']}")
    got = fetch_redirect(download)
    assert got.status_code == 200 and got.content == data
    info = result_json(call(function, "GET", f"/api/drops/{drop['slug']}", headers=JSON))
    assert info["downloads"] == 1 and "delete_token" not in info


def test_put_upload_answers_the_link_and_head_mints_no_url(function: LambdaEmulator) -> None:
    data = payload(64 * 1024)
    created = call(function, "PUT", "/notes.bin",
                   headers={"Content-Type": "application/octet-stream"}, body=data)
    assert created["statusCode"] == 201, created
    link = result_body(created).decode()
    assert link.endswith("\n") and link.count("\n") == 1
    slug = link.strip().rsplit("/", 1)[1]
    assert header(created, "X-Delete-Token")

    head = call(function, "HEAD", f"/{slug}")
    assert head["statusCode"] == 200 and result_body(head) == b""
    assert header(head, "Content-Length") == str(len(data))
    assert header(head, "ETag") and header(head, "Accept-Ranges") == "bytes"
    assert header(head, "Location") is None
    assert result_json(call(function, "GET", f"/api/drops/{slug}"))["downloads"] == 0
    assert fetch_redirect(call(function, "GET", f"/{slug}/notes.bin")).content == data


def test_delete_needs_its_token_and_leaves_nothing(
        function: LambdaEmulator, backends: SharedBackends) -> None:
    created = call(function, "PUT", "/gone.txt", headers=JSON, body=b"short-lived")
    drop = result_json(created)
    objects = len(backends.objects())

    wrong = call(function, "DELETE", f"/{drop['slug']}",
                 headers={"X-Delete-Token": "not-the-token", **JSON})
    assert wrong["statusCode"] == 403
    assert result_json(wrong)["error"]["code"]
    deleted = call(function, "DELETE", f"/{drop['slug']}",
                   headers={"X-Delete-Token": drop["delete_token"]})
    assert deleted["statusCode"] == 204
    assert len(backends.objects()) == objects - 1
    assert drop["slug"] not in {record["slug"] for record in backends.records()}

    missing = call(function, "GET", f"/{drop['slug']}", headers=JSON)
    assert missing["statusCode"] == 404
    assert header(missing, "Content-Type").startswith("application/json")
    error = result_json(missing)["error"]
    assert set(error) == {"code", "message"} and "\n" not in error["message"]


def test_an_upload_larger_than_an_event_names_direct_uploads(function: LambdaEmulator) -> None:
    fits = call(function, "PUT", "/limit.bin", headers=JSON, body=payload(EVENT_FILE_LIMIT))
    assert fits["statusCode"] == 201, fits
    assert result_json(fits)["size"] == EVENT_FILE_LIMIT

    over = call(function, "PUT", "/over.bin", headers=JSON, body=payload(EVENT_FILE_LIMIT + 1))
    assert over["statusCode"] == 413
    assert "/api/direct-uploads" in result_json(over)["error"]["message"]
    body, content_type = multipart(payload(EVENT_FILE_LIMIT + 1))
    over_form = call(function, "POST", "/", headers={"Content-Type": content_type}, body=body)
    assert over_form["statusCode"] == 413
    assert "/api/direct-uploads" in result_body(over_form).decode()


def test_a_presigned_download_cannot_be_bent_to_another_object(
        function: LambdaEmulator) -> None:
    """The signature covers the key: the same URL pointed at the other drop is refused by
    the S3 server, as is one whose signature was altered."""
    first, second = (result_json(call(function, "PUT", f"/{name}", headers=JSON,
                                      body=payload(1000)))
                     for name in ("a.bin", "b.bin"))
    location = header(call(function, "GET", f"/{first['slug']}"), "Location")
    other = header(call(function, "GET", f"/{second['slug']}"), "Location")
    assert location and other
    path, other_path = (url.split("?", 1)[0] for url in (location, other))
    assert requests.get(location.replace(path, other_path), timeout=30).status_code == 403
    signature = location.rsplit("X-Amz-Signature=", 1)[1][:64]
    forged = location.replace(signature, signature[::-1])
    assert requests.get(forged, timeout=30).status_code == 403


def test_a_cold_start_on_local_storage_fails_with_one_line(
        lambda_emulator: Callable[..., LambdaEmulator], tmp_path: Path,
        backends: SharedBackends) -> None:
    sections = backends.host_sections()
    sections["storage"] = {"plugin": "local_storage"}
    sections["plugins"]["local_storage"] = {"root": str(tmp_path / "files")}
    emulator = lambda_emulator(HANDLER, function_env(sections))
    answer = emulator.invoke_raw(event("GET", "/healthz"))
    assert answer.status_code == 502  # the init failed: no request reaches teledrop
    failure = answer.json()
    assert failure["errorType"] == "ConfigError"
    message = failure["errorMessage"]
    assert "\n" not in message
    assert "TELEDROP_STORAGE__PLUGIN" in message and "s3_storage" in message
    logged = [line for line in emulator.log().splitlines() if "teledrop: " in line]
    assert len(logged) == 1 and logged[0].endswith(f"teledrop: {message}"), emulator.log_tail()
    assert not (tmp_path / "files").exists()


def test_each_invocation_logs_the_access_line_with_its_request_id(
        function: LambdaEmulator) -> None:
    """The id in the line is the runtime's own: the one its REPORT line names. The runtime
    writes records in its own format (level, time, request id, message, tab-separated):
    the message is the JSON line the WSGI host writes."""
    before = len(function.reports())
    assert call(function, "GET", "/no-such-drop", headers=JSON)["statusCode"] == 404
    log = function.log()
    ids = [match.group("id") for match in _REPORT.finditer(log)]
    assert len(ids) == before + 1
    lines = [json.loads(line.rsplit("\t", 1)[1]) for line in log.splitlines()
             if line.startswith("[INFO]\t") and line.endswith("}") and '{"method":' in line]
    assert lines and lines[-1]["request_id"] == ids[-1], function.log_tail()
    assert lines[-1]["status"] == 404 and lines[-1]["error"] == "not_found"
    assert lines[-1]["path"] == "/no-such-drop"


def test_a_browser_gets_the_upload_page_and_its_script(function: LambdaEmulator) -> None:
    page = call(function, "GET", "/", headers={
        "Accept": "text/html,*/*;q=0.8", "Sec-Fetch-Mode": "navigate"})
    assert page["statusCode"] == 200 and header(page, "Content-Type") == \
        "text/html; charset=utf-8"
    assert b'data-uploads="direct"' in result_body(page)
    script = call(function, "GET", "/static/direct.js")
    assert script["statusCode"] == 200
    assert result_body(script) == (STATIC / "direct.js").read_bytes()


# -- over HTTP, through the HTTP API's stand-in -------------------------------------------

#: How long the large file's round trip may take, on a loaded 2-core machine.
LARGE_BUDGET = 60.0


def test_a_binary_put_over_http_comes_back_through_the_redirect(front: HttpFront) -> None:
    data = payload(100_000)
    answer = front.request("PUT", "/raw.bin", data=data,
                           headers={"Content-Type": "application/octet-stream", **JSON})
    assert answer.status_code == 201, answer.text[:500]
    drop = answer.json()
    assert drop["url"] == f"{front.url}{drop['slug']}"  # the address the client used
    head = front.request("HEAD", f"/{drop['slug']}")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(data))
    download = front.request("GET", f"/{drop['slug']}")
    assert download.status_code == 302
    assert requests.get(download.headers["Location"], timeout=30).content == data


def test_teledrop_upload_sends_a_large_file_to_the_function_and_back_byte_for_byte(
        front: HttpFront, backends: SharedBackends, tmp_path: Path) -> None:
    """The command as installed, pointed at the front: its requests to the API become
    events for the function under the runtime; its part PUTs, several at once, go straight
    to the bucket."""
    trip = upload_and_download(front, front.url, backends, tmp_path)
    assert trip.seconds < LARGE_BUDGET
