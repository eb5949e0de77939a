"""s3_storage in tests: a storage on a SeaweedFS bucket, one of its own per test, and what
the bucket holds (objects, multipart uploads)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from teledrop_s3_storage import S3Storage, S3StorageSettings
from teledrop_s3_storage.parts import MIB

from tests.services.seaweedfs import S3Endpoint, SeaweedFS


def make_storage(endpoint: S3Endpoint, bucket: str, **settings: Any) -> S3Storage:
    table = endpoint.storage_settings(bucket, **settings)
    return S3Storage(S3StorageSettings(**table))


def uploads_of(client: Any, bucket: str) -> list[dict[str, Any]]:
    return client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def objects_of(client: Any, bucket: str) -> list[str]:
    return [item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def pattern(size: int) -> bytes:
    """``size`` bytes where every position differs from its neighbours' (offsets show)."""
    return (bytes(range(251)) * (size // 251 + 1))[:size]


@pytest.fixture
def own_storage(seaweedfs: SeaweedFS) -> Iterator[S3Storage]:
    """A storage on the SeaweedFS this session may stop."""
    bucket = f"teledrop-test-{uuid.uuid4().hex[:16]}"
    seaweedfs.endpoint.client().create_bucket(Bucket=bucket)
    store = make_storage(seaweedfs.endpoint, bucket, part_size=5 * MIB)
    yield store
    store.close()
