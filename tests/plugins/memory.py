"""In-memory storage and metadata backends, offered as a plugin (the plugin interface is
the seam core is tested through). Select them with ``storage={"plugin": "memory"}`` and
``metadata={"plugin": "memory"}``."""

from __future__ import annotations

import dataclasses
import io
import threading
import time
import uuid
from typing import Any, BinaryIO

from teledrop import hookimpl
from teledrop.core.drop import Drop
from teledrop.core.errors import BlobMissing, SlugTaken
from teledrop.core.interfaces import StoredItem


class MemoryBlobWriter:
    def __init__(self, storage: MemoryStorage) -> None:
        self.storage = storage
        self.blob_id = uuid.uuid4().hex
        self.published = False
        self.discarded = False
        storage.staging[self.blob_id] = (bytearray(), time.time())

    def write(self, data: bytes | memoryview) -> int:
        self.storage.staging[self.blob_id][0].extend(data)
        return len(data)

    def publish(self) -> None:
        data, _ = self.storage.staging.pop(self.blob_id)
        self.storage.blobs[self.blob_id] = (bytes(data), time.time())
        self.published = True

    def discard(self) -> None:
        self.storage.staging.pop(self.blob_id, None)
        self.storage.blobs.pop(self.blob_id, None)
        self.published = False
        self.discarded = True

    def close(self) -> None:
        if not self.published:
            self.discard()


class MemoryStorage:
    def __init__(self) -> None:
        self.staging: dict[str, tuple[bytearray, float]] = {}
        self.blobs: dict[str, tuple[bytes, float]] = {}

    def stage(self) -> MemoryBlobWriter:
        return MemoryBlobWriter(self)

    def open(self, blob_id: str) -> BinaryIO:
        if blob_id not in self.blobs:
            raise BlobMissing(f"blob {blob_id} is missing")
        return io.BytesIO(self.blobs[blob_id][0])

    def delete(self, blob_id: str) -> None:
        self.blobs.pop(blob_id, None)

    def list_blobs(self) -> list[StoredItem]:
        return [StoredItem(k, time.time() - t) for k, (_, t) in self.blobs.items()]

    def list_staging(self) -> list[StoredItem]:
        return [StoredItem(k, time.time() - t) for k, (_, t) in self.staging.items()]

    def remove_staging(self, name: str) -> None:
        self.staging.pop(name, None)

    def check(self) -> None:
        pass

    def close(self) -> None:
        pass


class MemoryMetadata:
    def __init__(self) -> None:
        self.drops: dict[str, Drop] = {}
        self.lock = threading.Lock()

    def insert(self, drop: Drop) -> None:
        with self.lock:
            if drop.slug in self.drops:
                raise SlugTaken()
            self.drops[drop.slug] = dataclasses.replace(drop, delete_token=None)

    def get(self, slug: str) -> Drop | None:
        drop = self.drops.get(slug)
        return None if drop is None else dataclasses.replace(drop)

    def claim_download(self, slug: str, at: int) -> Drop | None:
        with self.lock:
            drop = self.drops.get(slug)
            if drop is None or drop.is_gone(at):
                return None
            drop.downloads += 1
            return dataclasses.replace(drop)

    def delete(self, slug: str) -> Drop | None:
        with self.lock:
            return self.drops.pop(slug, None)

    def delete_if_gone(self, slug: str, at: int) -> Drop | None:
        with self.lock:
            drop = self.drops.get(slug)
            if drop is None or not drop.is_gone(at):
                return None
            return self.drops.pop(slug)

    def list_gone(self, at: int) -> list[Drop]:
        return [dataclasses.replace(d) for d in self.drops.values() if d.is_gone(at)]

    def iter_drops(self) -> list[Drop]:
        return [dataclasses.replace(d) for d in self.drops.values()]

    def blob_ids(self) -> set[str]:
        return {d.blob_id for d in self.drops.values()}

    def count(self) -> int:
        return len(self.drops)

    def check(self) -> None:
        pass

    def close(self) -> None:
        pass


class MemoryPlugin:
    """One instance per app; keeps the backends it built so tests can inspect them."""

    teledrop_plugin_name = "memory"

    def __init__(self) -> None:
        self.storage = MemoryStorage()
        self.metadata = MemoryMetadata()

    @hookimpl
    def teledrop_storage_backends(self) -> dict[str, Any]:
        return {"memory": lambda settings, config: self.storage}

    @hookimpl
    def teledrop_metadata_backends(self) -> dict[str, Any]:
        return {"memory": lambda settings, config: self.metadata}
