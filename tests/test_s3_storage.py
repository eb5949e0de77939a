"""The S3 storage against a real S3 server (SeaweedFS unless TELEDROP_TEST_S3_ENDPOINT)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from teledrop.testing import StorageContract
from teledrop_s3_storage import S3Storage, S3StorageSettings
from teledrop_s3_storage.parts import MIB
from tests.services.seaweedfs import S3Endpoint, s3_bucket, s3_server, seaweedfs  # noqa: F401


def make_storage(endpoint: S3Endpoint, bucket: str, **settings: Any) -> S3Storage:
    table = endpoint.storage_settings(bucket, **settings)
    return S3Storage(S3StorageSettings(**table))


@pytest.fixture
def storage(s3_server: S3Endpoint, s3_bucket: str) -> Iterator[S3Storage]:
    store = make_storage(s3_server, s3_bucket, part_size=5 * MIB)
    yield store
    store.close()


class TestS3Storage(StorageContract):
    @pytest.fixture
    def storage(self, storage: S3Storage) -> S3Storage:
        return storage
