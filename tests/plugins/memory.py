"""In-memory storage and metadata backends, offered as a plugin (the plugin interface is
the seam core is tested through). Select them with ``storage={"plugin": "memory"}`` and
``metadata={"plugin": "memory"}``."""

from __future__ import annotations

import dataclasses
import io
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any, BinaryIO

from teledrop import hookimpl
from teledrop.core.drop import Drop
from teledrop.core.errors import BlobMissing, SlugTaken, TokenExists
from teledrop.core.interfaces import UPLOAD_UPDATABLE, DropQuery, StoredItem, TokenRecord, \
    UploadState


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


class MemoryResumableWriter(MemoryBlobWriter):
    """Its staged bytes live in ``storage.resumable`` until published or discarded."""

    def __init__(self, storage: MemoryStorage, blob_id: str | None = None) -> None:
        self.storage = storage
        self.blob_id = blob_id or uuid.uuid4().hex
        self.published = self.discarded = False
        self.data = storage.resumable.setdefault(self.blob_id, bytearray())
        self.offset = len(self.data)

    def write(self, data: bytes | memoryview) -> int:
        self.data.extend(data)
        self.offset += len(data)
        return len(data)

    def sync(self, final: bool = False) -> str:
        return f"synced {self.offset}"

    def publish(self) -> None:
        if self.published:
            return
        self.storage.blobs[self.blob_id] = (bytes(self.storage.resumable.pop(self.blob_id)),
                                            time.time())
        self.published = True

    def discard(self) -> None:
        self.storage.resumable.pop(self.blob_id, None)
        self.storage.blobs.pop(self.blob_id, None)
        self.published, self.discarded = False, True

    def close(self) -> None:
        pass


class MemoryStorage:
    def __init__(self, free: int | None = None) -> None:
        self.staging: dict[str, tuple[bytearray, float]] = {}
        self.resumable: dict[str, bytearray] = {}
        self.blobs: dict[str, tuple[bytes, float]] = {}
        #: what free_space() answers: None (unknown), or bytes less what is held
        self.free = free
        #: the size hint of each stage() call, in order.
        self.size_hints: list[int | None] = []
        #: whether read_staged gives the staged bytes back (an object store's may not).
        self.staged_readable = True

    def stage(self, size_hint: int | None = None) -> MemoryBlobWriter:
        self.size_hints.append(size_hint)
        return MemoryBlobWriter(self)

    def stage_resumable(self, size_hint: int | None = None) -> MemoryResumableWriter:
        self.size_hints.append(size_hint)
        return MemoryResumableWriter(self)

    def resume(self, blob_id: str, state: str, offset: int) -> MemoryResumableWriter:
        data = self.resumable.get(blob_id)
        if data is None or len(data) < offset:
            raise BlobMissing(f"the staged bytes of {blob_id} are missing")
        del data[offset:]
        return MemoryResumableWriter(self, blob_id)

    def read_staged(self, blob_id: str, state: str, offset: int) -> BinaryIO | None:
        if not self.staged_readable:
            return None
        return io.BytesIO(bytes(self.resumable[blob_id][:offset]))

    def remove_resumable(self, blob_id: str, state: str) -> None:
        self.resumable.pop(blob_id, None)

    def list_resumable(self) -> list[StoredItem]:
        return [StoredItem(blob_id, 0.0) for blob_id in self.resumable]

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

    def free_space(self) -> int | None:
        if self.free is None:
            return None
        held = sum(len(data) for data, _ in [*self.staging.values(), *self.blobs.values()])
        return max(0, self.free - held)

    def check(self) -> None:
        pass

    def close(self) -> None:
        pass


def gone(drop: Drop, at: int) -> bool:
    """Expired or out of downloads at ``at``: what gc takes and nobody reads."""
    return drop.is_expired(at) or drop.is_exhausted()


class MemoryMetadata:
    def __init__(self) -> None:
        self.drops: dict[str, Drop] = {}
        self.failures: dict[str, tuple[int, int]] = {}
        self.tokens: dict[str, TokenRecord] = {}
        self.uploads: dict[str, UploadState] = {}
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
            if drop is None or gone(drop, at):
                return None
            drop.downloads += 1
            return dataclasses.replace(drop)

    def delete(self, slug: str, blob_id: str | None = None) -> Drop | None:
        with self.lock:
            if not self._same(slug, blob_id):
                return None
            return self.drops.pop(slug)

    def _same(self, slug: str, blob_id: str | None) -> bool:
        """Whether ``slug`` names a drop, and (given ``blob_id``) that blob's."""
        drop = self.drops.get(slug)
        return drop is not None and blob_id in (None, drop.blob_id)

    def delete_if_gone(self, slug: str, at: int) -> Drop | None:
        with self.lock:
            drop = self.drops.get(slug)
            if drop is None or not gone(drop, at):
                return None
            return self.drops.pop(slug)

    def list_gone(self, at: int) -> list[Drop]:
        return [dataclasses.replace(d) for d in self.drops.values() if gone(d, at)]

    def iter_drops(self) -> list[Drop]:
        return [dataclasses.replace(d) for d in self.drops.values()]

    def blob_ids(self) -> set[str]:
        return {d.blob_id for d in self.drops.values()} | {u.blob_id for u in self.uploads.values()}

    def count(self) -> int:
        return len(self.drops)

    def total_size(self) -> int:
        return sum(d.size for d in self.drops.values())

    def update(self, slug: str, changes: Mapping[str, Any],
               blob_id: str | None = None) -> Drop | None:
        with self.lock:
            if not self._same(slug, blob_id):
                return None
            drop = self.drops[slug]
            for name, value in changes.items():
                setattr(drop, name, value)
            return dataclasses.replace(drop)

    def list_owned(self, query: DropQuery) -> tuple[int, list[Drop]]:
        def keep(d: Drop) -> bool:
            needle = (query.search or "").casefold()
            return (d.owner == query.owner
                    and query.private in (None, d.private)
                    and query.has_password in (None, d.password_hash is not None)
                    and query.expired in (None, d.is_expired(query.at))
                    and (not needle or needle in d.filename.casefold()
                         or needle in d.title.casefold()))

        order = list(self.drops.values())  # insertion order breaks ties
        if query.order == "desc":
            order.reverse()
        matching = sorted((d for d in order if keep(d)), key=lambda d: getattr(d, query.sort),
                          reverse=query.order == "desc")
        start = (query.page - 1) * query.page_size
        page = matching[start:start + query.page_size]
        return len(matching), [dataclasses.replace(d) for d in page]

    def note_password_failure(self, slug: str, at: int, window: int) -> int:
        with self.lock:
            if slug not in self.drops:
                return 0
            count, since = self.failures.get(slug, (0, 0))
            count, since = (1, at) if since <= at - window else (count + 1, since)
            self.failures[slug] = (count, since)
            return count

    def forgive_password_failure(self, slug: str) -> None:
        with self.lock:
            count, since = self.failures.get(slug, (0, 0))
            if count:
                self.failures[slug] = (count - 1, since)

    def password_failures(self, slug: str, at: int, window: int) -> int:
        count, since = self.failures.get(slug, (0, 0))
        return 0 if since <= at - window else count

    def add_token(self, token: TokenRecord) -> None:
        with self.lock:
            if token.name in self.tokens:
                raise TokenExists()
            self.tokens[token.name] = token

    def list_tokens(self) -> list[TokenRecord]:
        return list(self.tokens.values())

    def revoke_token(self, name: str) -> bool:
        return self.tokens.pop(name, None) is not None

    def token_owner(self, token_hash: str) -> str | None:
        return next((t.name for t in self.tokens.values() if t.token_hash == token_hash), None)

    def insert_upload(self, upload: UploadState) -> None:
        with self.lock:
            self.uploads[upload.id] = dataclasses.replace(upload)

    def get_upload(self, upload_id: str) -> UploadState | None:
        upload = self.uploads.get(upload_id)
        return None if upload is None else dataclasses.replace(upload)

    def lease_upload(self, upload_id: str, holder: str, at: int,
                     until: int) -> UploadState | None:
        with self.lock:
            upload = self.uploads.get(upload_id)
            if upload is None or upload.expires_at <= at or upload.slug is not None \
                    or (upload.lease_holder is not None and upload.lease_until > at):
                return None
            upload.lease_holder, upload.lease_until = holder, until
            return dataclasses.replace(upload)

    def update_upload(self, upload_id: str, holder: str,
                      changes: Mapping[str, Any]) -> UploadState | None:
        if set(changes) - UPLOAD_UPDATABLE or not changes:
            raise ValueError(f"cannot update {sorted(changes)}")
        with self.lock:
            upload = self.uploads.get(upload_id)
            if upload is None or upload.lease_holder != holder:
                return None
            for name, value in changes.items():
                setattr(upload, name, value)
            return dataclasses.replace(upload)

    def delete_upload(self, upload_id: str) -> UploadState | None:
        with self.lock:
            return self.uploads.pop(upload_id, None)

    def list_expired_uploads(self, at: int) -> list[UploadState]:
        return [dataclasses.replace(u) for u in self.uploads.values() if u.expires_at <= at]

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
