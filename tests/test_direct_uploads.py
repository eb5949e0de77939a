"""Direct uploads (``/api/direct-uploads``) against a real S3 server (SeaweedFS unless
TELEDROP_TEST_S3_ENDPOINT): the client PUTs each part to its presigned URL, teledrop checks
what the bucket holds and commits it. Every refusal leaves nothing in the bucket (neither
an object nor a multipart upload) and no record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask import Flask

from teledrop.core.config import Config
from teledrop.web.app import service_of
from tests.http_helpers import blake3_hash
from tests.services.seaweedfs import S3Endpoint

MIB = 1024**2
PART = 5 * MIB
JSON = {"Accept": "application/json"}

pytestmark = pytest.mark.entry_points("s3_storage")


def pattern(size: int, seed: int = 0) -> bytes:
    return (bytes((i * 7 + seed) % 256 for i in range(251)) * (size // 251 + 1))[:size]


@pytest.fixture
def direct_app(make_app: Callable[..., Flask], make_config: Callable[..., Config],
               s3_server: S3Endpoint, s3_bucket: str) -> Callable[..., Flask]:
    """``direct_app(plugins=[...], **sections)``: an app on the S3 storage (5 MiB parts)."""

    def make(plugins: tuple[object, ...] | list[object] = (), **sections: Any) -> Flask:
        table = s3_server.storage_settings(s3_bucket, part_size="5MiB")
        config = make_config(storage={"plugin": "s3_storage"},
                             plugins={"s3_storage": table}, **sections)
        return make_app(plugins=plugins, config=config)

    return make


@pytest.fixture
def app(direct_app: Callable[..., Flask]) -> Flask:
    return direct_app()


def bucket_state(s3_server: S3Endpoint, bucket: str) -> tuple[set[str], list[str]]:
    """The bucket's object keys and in-progress multipart uploads' keys."""
    client = s3_server.client()
    objects = {item["Key"] for item in
               client.list_objects_v2(Bucket=bucket).get("Contents", [])}
    uploads = [item["Key"] for item in
               client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    return objects, uploads


def create(app: Flask, size: int, headers: dict[str, str] | None = None,
           **fields: Any) -> Any:
    body = {"filename": "big.bin", "size": size, "content_type": "application/x-test",
            **fields}
    return app.test_client().post("/api/direct-uploads", json=body,
                                  headers={**JSON, **(headers or {})})


def put_parts(upload: dict[str, Any], data: bytes) -> list[dict[str, Any]]:
    """PUT each part of ``data`` to its URL, as a client does; the parts as it saw them."""
    size = upload["part_size"]
    seen = []
    for part in upload["parts"]:
        start = (part["number"] - 1) * size
        answer = requests.put(part["url"], data=data[start:start + size], timeout=30)
        assert answer.status_code == 200, answer.text
        seen.append({"number": part["number"], "etag": answer.headers["ETag"]})
    return seen


def complete(app: Flask, upload_id: str, parts: Any) -> Any:
    return app.test_client().post(f"/api/direct-uploads/{upload_id}/complete",
                                  json={"parts": parts}, headers=JSON)


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
