"""The Lambda harnesses themselves, proven with a handler that echoes its event: the
Runtime Interface Emulator under awslambdaric (tests/services/lambda_rie.py), the HTTP
API's stand-in in front of it (tests/services/lambda_http.py) and ministack's HTTP API ->
Lambda -> S3 (tests/services/ministack.py). What these show is what
the teledrop handler's tests rely on: the event reaches the handler as sent, the answer
comes back as returned, the environment is the one given, and the limits are Lambda's."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.services.lambda_http import HttpFront
from tests.services.lambda_rie import LambdaEmulator
from tests.services.ministack import HttpApi, Ministack
from tests.services.seaweedfs import S3Endpoint

ECHO = "tests.support.lambda_echo.handler"
ECHO_SOURCE = Path(__file__).parent / "support" / "lambda_echo.py"
#: Lambda's payload limit, request and response (the emulator's own figure).
PAYLOAD_LIMIT = 6_291_556


def event(body: str, **extra: Any) -> dict[str, Any]:
    """A payload format 2.0 event, as API Gateway's documentation shows one."""
    return {"version": "2.0", "routeKey": "$default", "rawPath": "/echo",
            "rawQueryString": "", "headers": {"host": "api.example"},
            "requestContext": {"http": {"method": "POST", "path": "/echo"}},
            "body": body, "isBase64Encoded": False, **extra}


def echoed(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["statusCode"] == 200, answer
    return json.loads(answer["body"])


# -- the Runtime Interface Emulator -----------------------------------------------------

def test_emulator_hands_the_event_over_and_the_answer_back(
        lambda_emulator: Callable[..., LambdaEmulator], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEDROP_CONFIG", "/nonexistent/teledrop.toml")
    emulator = lambda_emulator(ECHO, {"ECHO_SETTING": "given"})
    sent = event("héllo", cookies=["a=1", "b=2"])
    first, second = echoed(emulator.invoke(sent)), echoed(emulator.invoke(sent))
    assert first["event"] == sent
    assert first["env"]["ECHO_SETTING"] == "given"
    assert first["request_id"] != second["request_id"]
    assert "TELEDROP_CONFIG" not in emulator.env  # the caller's settings stay out
    reports = emulator.reports()
    assert len(reports) == 2 and "init" in reports[0] and "init" not in reports[1]


def test_emulator_refuses_an_answer_over_lambdas_limit(
        lambda_emulator: Callable[..., LambdaEmulator]) -> None:
    emulator = lambda_emulator(ECHO)
    fits = emulator.invoke(event(json.dumps({"size": PAYLOAD_LIMIT - 1024})))
    assert len(fits["body"]) == PAYLOAD_LIMIT - 1024
    answer = emulator.invoke_raw(event(json.dumps({"size": PAYLOAD_LIMIT})))
    assert answer.status_code == 502
    assert answer.json()["errorType"] == "Function.ResponseSizeTooLarge"


def test_emulator_never_hands_over_an_event_over_lambdas_limit(
        lambda_emulator: Callable[..., LambdaEmulator]) -> None:
    """Lambda refuses such an event; the emulator cuts it at the limit, so the runtime
    cannot read it and the handler never runs."""
    emulator = lambda_emulator(ECHO)
    answer = emulator.invoke(event("y" * PAYLOAD_LIMIT))
    assert answer["errorType"] == "Runtime.UnmarshalError"


# -- the HTTP API's stand-in before the emulator ----------------------------------------

@pytest.fixture
def echo_front(lambda_emulator: Callable[..., LambdaEmulator]) -> Iterator[HttpFront]:
    with HttpFront(lambda_emulator(ECHO)) as front:
        yield front


def test_front_delivers_a_request_as_the_http_api_does(echo_front: HttpFront) -> None:
    """Cookies in a list of their own, a repeated query key kept apart in the raw query and
    joined in the parameters, names lower-cased, the client's address and how it came."""
    answer = echo_front.request("POST", "/api/drops?tag=a&tag=b&q=%2F", json={"k": "v"},
                                headers={"Cookie": "a=1; b=2", "X-Custom-Header": "kept"})
    assert answer.status_code == 200, answer.text
    sent = answer.json()["event"]
    assert sent["version"] == "2.0" and sent["rawPath"] == "/api/drops"
    assert sent["rawQueryString"] == "tag=a&tag=b&q=%2F"
    assert sent["queryStringParameters"] == {"tag": "a,b", "q": "/"}
    assert sent["cookies"] == ["a=1", "b=2"] and "cookie" not in sent["headers"]
    assert sent["headers"]["x-custom-header"] == "kept"
    assert sent["headers"]["host"] == f"127.0.0.1:{echo_front.port}"
    assert sent["headers"]["x-forwarded-proto"] == "http"
    assert sent["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert sent["headers"]["content-length"] == str(len(b'{"k": "v"}'))
    assert sent["requestContext"]["http"] == {
        **sent["requestContext"]["http"], "method": "POST", "path": "/api/drops",
        "sourceIp": "127.0.0.1"}
    assert sent["isBase64Encoded"] is False and json.loads(sent["body"]) == {"k": "v"}
    bare = echo_front.request("GET", "/").json()["event"]
    assert "body" not in bare and "cookies" not in bare
    assert "queryStringParameters" not in bare and bare["rawQueryString"] == ""


def test_front_round_trips_a_binary_body_and_sets_the_results_cookies(
        echo_front: HttpFront) -> None:
    data = bytes(range(256)) * 64
    answer = echo_front.request("POST", "/mirror", data=data,
                                headers={"Content-Type": "application/octet-stream",
                                         "Cookie": "session=abc; theme=dark"})
    assert answer.status_code == 200
    assert answer.content == data
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert answer.raw.headers.getlist("Set-Cookie") == ["session=abc", "theme=dark"]


def test_front_answers_a_failed_invocation_as_the_http_api_does(
        echo_front: HttpFront) -> None:
    """An event the runtime cannot take fails the invocation: a 500, not the error."""
    answer = echo_front.request("POST", "/echo", data=b"y" * PAYLOAD_LIMIT,
                                headers={"Content-Type": "text/plain"})
    assert answer.status_code == 500
    assert answer.json() == {"message": "Internal Server Error"}


def test_front_refuses_a_chunked_body(echo_front: HttpFront) -> None:
    answer = echo_front.request("POST", "/echo", data=iter([b"a", b"b"]))
    assert answer.status_code == 411


# -- ministack --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def echo_api(ministack: Ministack) -> Iterator[HttpApi]:
    api = ministack.http_api("lambda_echo.handler", {"ECHO_SETTING": "deployed"},
                             {"lambda_echo.py": ECHO_SOURCE.read_text()})
    yield api
    ministack.remove(api)


def test_http_api_delivers_payload_format_2(echo_api: HttpApi) -> None:
    answer = echo_api.request("POST", "/api/uploads?tag=a&tag=b", data=b"\x00\xffbin",
                              headers={"Content-Type": "application/octet-stream",
                                       "X-Custom-Header": "kept"})
    assert answer.status_code == 200, answer.text
    got = answer.json()
    sent = got["event"]
    assert sent["version"] == "2.0" and sent["rawPath"] == "/api/uploads"
    assert sent["requestContext"]["http"]["method"] == "POST"
    assert sent["rawQueryString"] == "tag=a&tag=b"
    assert sent["queryStringParameters"] == {"tag": "a,b"}
    assert sent["headers"]["x-custom-header"] == "kept"  # names lower-cased
    assert sent["headers"]["host"] == echo_api.host
    assert sent["isBase64Encoded"] is True  # a binary body
    assert base64.b64decode(sent["body"]) == b"\x00\xffbin"
    assert got["env"] == {"ECHO_SETTING": "deployed",
                          "AWS_LAMBDA_FUNCTION_NAME": echo_api.function_name}


def test_http_api_passes_a_json_body_as_text(echo_api: HttpApi) -> None:
    answer = echo_api.request("POST", "/api/direct-uploads", json={"filename": "a.txt", "size": 1})
    sent = answer.json()["event"]
    assert sent["isBase64Encoded"] is False
    assert json.loads(sent["body"]) == {"filename": "a.txt", "size": 1}


def test_ministack_s3_refuses_a_tampered_or_foreign_presigned_url(ministack: Ministack) -> None:
    """The S3 under the Lambda tests can say no: security checks against it mean something."""
    client = ministack.client("s3")
    bucket = "teledrop-harness-presign"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="k", Body=b"secret")
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"},
                                        ExpiresIn=60)
    assert requests.get(url, timeout=10).content == b"secret"
    assert requests.get(url.replace("/k?", "/other?"), timeout=10).status_code == 403
    signature = url.rsplit("X-Amz-Signature=", 1)[1]
    forged = url.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
    assert requests.get(forged, timeout=10).status_code == 403
    foreign = S3Endpoint(ministack.url, ministack.s3.access_key, "not-the-secret")
    foreign_url = foreign.client().generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=60)
    assert requests.get(foreign_url, timeout=10).status_code == 403
