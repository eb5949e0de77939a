"""The in-memory fakes core is tested through honour the same contracts as real backends:
a test that passes on them proves something about teledrop, not about a lenient fake."""

from __future__ import annotations

import pytest

from teledrop.testing import MetadataContract, ResumableStagingContract, StorageContract
from tests.plugins.memory import MemoryMetadata, MemoryStorage


class TestMemoryStorage(StorageContract):
    @pytest.fixture
    def storage(self) -> MemoryStorage:
        return MemoryStorage()


class TestMemoryMetadata(MetadataContract):
    @pytest.fixture
    def metadata(self) -> MemoryMetadata:
        return MemoryMetadata()


class TestMemoryStorageResumable(ResumableStagingContract):
    @pytest.fixture
    def storage(self) -> MemoryStorage:
        return MemoryStorage()
