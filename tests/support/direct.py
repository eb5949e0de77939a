"""Direct uploads in tests: an app on SeaweedFS that offers them, the create and complete
requests, parts PUT to their presigned URLs, and what the bucket holds afterwards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask import Flask

from teledrop.core.config import Config
from tests.http_helpers import JSON
from tests.services.seaweedfs import S3Endpoint

MIB = 1024**2
#: The smallest part S3 takes (all but the last).
PART = 5 * MIB


def pattern(size: int, seed: int = 0) -> bytes:
    return (bytes((i * 7 + seed) % 256 for i in range(251)) * (size // 251 + 1))[:size]


@pytest.fixture
def direct_app(make_app: Callable[..., Flask], make_config: Callable[..., Config],
               s3_server: S3Endpoint, s3_bucket: str) -> Callable[..., Flask]:
    """``direct_app(plugins=[...], **sections)``: an app on the S3 storage (5 MiB parts)."""

    def make(plugins: tuple[object, ...] | list[object] = (),
             more_plugins: dict[str, Any] | None = None, **sections: Any) -> Flask:
        table = s3_server.storage_settings(s3_bucket, part_size="5MiB")
        config = make_config(storage={"plugin": "s3_storage"},
                             plugins={"s3_storage": table, **(more_plugins or {})}, **sections)
        return make_app(plugins=plugins, config=config)

    return make


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
