"""teledrop as deployed on AWS, end to end over HTTP on loopback: ministack's API Gateway
HTTP API (``$default`` route, payload format 2.0) in front of teledrop's handler as a
Lambda function, ministack's S3 as its bucket, and a real PostgreSQL
(tests/services/ministack.py). A client sees only the invoke URL and the bucket's
presigned URLs; ministack's S3 checks their signatures, so what they refuse is refused."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from blake3 import blake3

from tests.lambda_events import multipart
from tests.services.ministack import ApiProxy, HttpApi
from tests.support.hosts import SharedBackends
from tests.support.lambda_function import api, backends  # noqa: F401 (fixtures)
from tests.support.large_upload import MiB, upload_and_download

JSON = {"Accept": "application/json"}


def created(answer: requests.Response) -> dict[str, Any]:
    assert answer.status_code == 201, f"{answer.status_code} {answer.text[:500]}"
    return answer.json()


def downloaded(api: HttpApi, slug: str) -> bytes:
    """The bytes of ``GET /{slug}``: teledrop's redirect, followed to the bucket."""
    answer = api.request("GET", f"/{slug}")
    assert answer.status_code == 302, f"{answer.status_code} {answer.text[:500]}"
    location = answer.headers["Location"]
    assert location.startswith(api_bucket_url(api)), location
    got = requests.get(location, timeout=60)
    assert got.status_code == 200, got.text[:500]
    return got.content


def api_bucket_url(api: HttpApi) -> str:
    """Where presigned URLs point: ministack's own address (path-style S3)."""
    return f"http://{api.address}/"


def test_put_upload_and_download_over_http(api: HttpApi) -> None:
    data = os.urandom(1024 * 1024 + 17)
    drop = created(api.request("PUT", "/photo.raw", data=data,
                               headers={"Content-Type": "application/octet-stream", **JSON}))
    assert drop["size"] == len(data)
    assert drop["url"].split("://", 1)[1] == f"{api.host}/{drop['slug']}"
    assert downloaded(api, drop["slug"]) == data

    head = api.request("HEAD", f"/{drop['slug']}")
    assert head.status_code == 200 and "Location" not in head.headers
    assert head.headers["Content-Length"] == str(len(data))
    info = api.request("GET", f"/api/drops/{drop['slug']}", headers=JSON).json()
    assert info["downloads"] == 1


def test_multipart_upload_answers_curl_with_the_link(api: HttpApi) -> None:
    data = os.urandom(200_000)
    body, content_type = multipart(data, filename="notes.bin")
    answer = api.request("POST", "/", data=body, headers={"Content-Type": content_type})
    assert answer.status_code == 201, answer.text
    link = answer.text.strip()
    assert link.split("://", 1)[1].startswith(f"{api.host}/")
    assert downloaded(api, link.rsplit("/", 1)[1]) == data


def test_an_unknown_drop_is_a_json_404_through_the_api(api: HttpApi) -> None:
    answer = api.request("GET", "/no-such-drop", headers=JSON)
    assert answer.status_code == 404
    assert set(answer.json()["error"]) == {"code", "message"}


# -- direct uploads: the bytes go past Lambda, straight to the bucket ---------------------

def start_direct(api: HttpApi, size: int, filename: str = "big.bin") -> dict[str, Any]:
    answer = api.request("POST", "/api/direct-uploads", headers=JSON,
                         json={"filename": filename, "size": size,
                               "content_type": "application/octet-stream"})
    return created(answer)


def put_part(url: str, data: bytes) -> requests.Response:
    return requests.put(url, data=data, timeout=120)


def send_parts(upload: dict[str, Any], data: bytes) -> list[dict[str, Any]]:
    """Every part PUT straight to its presigned URL (three at a time); the parts as the
    completion lists them."""
    size = upload["part_size"]

    def send(part: dict[str, Any]) -> dict[str, Any]:
        start = (part["number"] - 1) * size
        answer = put_part(part["url"], data[start:start + size])
        assert answer.status_code == 200, answer.text[:500]
        return {"number": part["number"], "etag": answer.headers["ETag"]}

    with ThreadPoolExecutor(3) as pool:
        return list(pool.map(send, upload["parts"]))


def test_a_direct_upload_larger_than_lambdas_payload_comes_back_byte_for_byte(
        api: HttpApi, backends: SharedBackends) -> None:
    data = os.urandom(24 * MiB + 4097)
    upload = start_direct(api, len(data))
    assert upload["part_size"] == 5 * MiB and len(upload["parts"]) == 5
    assert all(part["url"].startswith(api_bucket_url(api)) for part in upload["parts"])
    parts = send_parts(upload, data)
    drop = created(api.request("POST", f"/api/direct-uploads/{upload['id']}/complete",
                               headers=JSON, json={"parts": parts}))
    assert drop["size"] == len(data) and drop["delete_token"]
    assert drop["hash"] == f"blake3:{blake3(data).hexdigest()}"
    assert downloaded(api, drop["slug"]) == data
    assert backends.multipart_uploads() == []


def test_direct_part_urls_sign_their_part_and_their_upload(api: HttpApi) -> None:
    """ministack's S3 checks each presigned part URL: another part number, another
    upload id or an altered signature is refused, and nothing reaches the upload."""
    upload = start_direct(api, 6 * MiB)
    first, second = (part["url"] for part in upload["parts"])
    assert put_part(first.replace("partNumber=1", "partNumber=2"), b"x").status_code == 403
    assert put_part(first.replace("uploadId=", "uploadId=0"), b"x").status_code == 403
    signature = first.rsplit("X-Amz-Signature=", 1)[1][:64]
    assert put_part(first.replace(signature, signature[::-1]), b"x").status_code == 403
    answer = api.request("DELETE", f"/api/direct-uploads/{upload['id']}")
    assert answer.status_code == 204
    assert put_part(second, b"x" * 1024).status_code in (403, 404)  # the upload is gone


def test_a_direct_upload_that_lies_is_refused_and_leaves_nothing(
        api: HttpApi, backends: SharedBackends) -> None:
    """The parts listed by the bucket decide, not the client's list: a completion over a
    missing part, or naming an ETag the bucket does not hold, is a 400 and aborts."""
    objects = backends.objects()
    data = os.urandom(11 * MiB)
    upload = start_direct(api, len(data))
    parts = send_parts(upload, data)
    lie = [{"number": part["number"], "etag": '"' + "0" * 32 + '"'} for part in parts]
    refused = api.request("POST", f"/api/direct-uploads/{upload['id']}/complete",
                          headers=JSON, json={"parts": lie})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "direct_upload_invalid"

    short = start_direct(api, len(data), filename="short.bin")
    sent = send_parts({**short, "parts": short["parts"][:-1]}, data)
    refused = api.request("POST", f"/api/direct-uploads/{short['id']}/complete",
                          headers=JSON, json={"parts": sent})
    assert refused.status_code == 400, refused.text
    assert backends.objects() == objects and backends.multipart_uploads() == []


# -- a large file, end to end: teledrop upload -> HTTP API -> Lambda -> bucket -> back ------

#: How long the whole round trip may take, on a loaded 2-core machine.
LARGE_BUDGET = 150.0


def test_teledrop_upload_sends_a_large_file_past_lambdas_payload_and_back_byte_for_byte(
        api: HttpApi, backends: SharedBackends, tmp_path: Path) -> None:
    """The command as installed, pointed at the invoke URL: its requests to the API go
    through ministack's HTTP API to the function; its part PUTs, several at once, go
    straight to the bucket, as they would on AWS."""
    bucket = urlsplit(api_bucket_url(api)).hostname or ""
    with ApiProxy(api) as proxy:
        trip = upload_and_download(api, api.url, backends, tmp_path, env={
            "HTTP_PROXY": proxy.url, "http_proxy": proxy.url,
            "NO_PROXY": bucket, "no_proxy": bucket})
    assert trip.seconds < LARGE_BUDGET
