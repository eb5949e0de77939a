"""PostgresMetadata honours the metadata contract against a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from teledrop.testing import MetadataContract
from teledrop_postgres_meta import PostgresMetadata


@pytest.fixture
def store(postgres_dsn: str) -> Iterator[PostgresMetadata]:
    metadata = PostgresMetadata(postgres_dsn)
    yield metadata
    metadata.close()


class TestPostgresMetadataContract(MetadataContract):
    @pytest.fixture
    def metadata(self, store: PostgresMetadata) -> PostgresMetadata:
        return store
