"""``limits.min_free_space`` and ``limits.max_total_size`` in core (teledrop/core/space.py,
driven through the upload pipeline on the in-memory backends), ``/healthz`` on a full
store, and the removal order that lets a delete and gc free space on a full disk."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from teledrop.core import drops
from teledrop.core.drop import Drop
from teledrop.core.errors import MetadataFull, StorageFull
from teledrop.core.gc import collect
from teledrop.core.service import Teledrop
from teledrop.core.space import FREE_SPACE_CHECK_INTERVAL
from teledrop.core.upload import Upload, UploadRequest, create_drop
from teledrop.web.app import service_of
from tests.plugins.memory import MemoryMetadata, MemoryPlugin, MemoryStorage

MiB = 1024 * 1024


class Sender:
    """A receive function that streams ``total`` bytes in ``piece``-sized writes and
    remembers how far it got."""

    def __init__(self, total: int, piece: int = 256 * 1024) -> None:
        self.total, self.piece = total, piece
        self.called = False
        self.sent = 0

    def __call__(self, upload: Upload) -> None:
        self.called = True
        writer = upload.open_file("f.bin", None)
        while self.sent < self.total:
            n = min(self.piece, self.total - self.sent)
            self.sent += n
            writer.write(b"x" * n)


MakeService = Callable[..., tuple[Teledrop, MemoryPlugin]]


@pytest.fixture
def make_app_on(make_app: Callable[..., Flask]) -> Callable[..., Flask]:
    """An app on the in-memory backends of ``memory``, whose storage says it has ``free``
    bytes (less what it holds), with ``limits`` changed."""

    def make(memory: MemoryPlugin, free: int | None, **limits: Any) -> Flask:
        memory.storage.free = free
        return make_app(plugins=[memory], storage={"plugin": "memory"},
                        metadata={"plugin": "memory"}, limits=limits)

    return make


@pytest.fixture
def make_service(make_app_on: Callable[..., Flask]) -> MakeService:
    def make(free: int | None, **limits: Any) -> tuple[Teledrop, MemoryPlugin]:
        memory = MemoryPlugin()
        return service_of(make_app_on(memory, free, **limits)), memory

    return make


def upload(service: Teledrop, sender: Sender, declared: bool = False,
           bounded: bool = False, query: dict[str, str] | None = None) -> Drop:
    request = UploadRequest(method="PUT", headers={}, query=query or {},
                            declared_size=sender.total if declared else None,
                            max_size=sender.total + 200 if bounded else None)
    return create_drop(service, request, sender)


# --- min_free_space -------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["declared", "bounded"])
def test_a_known_size_below_min_free_space_is_refused_before_the_body(
        make_service: MakeService, how: str) -> None:
    service, memory = make_service(10 * MiB, min_free_space="4MiB")
    # A multipart body's Content-Length bounds the file from above: the framing counts.
    fits = 6 * MiB - (200 if how == "bounded" else 0)
    sender = Sender(fits + 1)
    with pytest.raises(StorageFull, match="min_free_space"):
        upload(service, sender, **{how: True})
    assert not sender.called and not memory.storage.staging
    drop = upload(service, Sender(fits), **{how: True})
    assert drop.size == fits


def test_an_upload_of_unknown_size_is_stopped_once_it_crosses_min_free_space(
        make_service: MakeService) -> None:
    service, memory = make_service(10 * MiB, min_free_space="4MiB")
    sender = Sender(10 * MiB)
    with pytest.raises(StorageFull, match="stopped.*min_free_space"):
        upload(service, sender)
    # Crossed at 6 MiB; seen at the next check at the latest.
    assert 6 * MiB < sender.sent <= 6 * MiB + FREE_SPACE_CHECK_INTERVAL + sender.piece
    assert not memory.storage.staging and not memory.storage.blobs
    assert not memory.metadata.drops


def test_free_space_is_read_once_per_interval_not_per_write(
        make_service: MakeService,
        monkeypatch: pytest.MonkeyPatch) -> None:
    service, memory = make_service(1024 * MiB, min_free_space="1MiB")
    calls = []
    real = memory.storage.free_space
    monkeypatch.setattr(memory.storage, "free_space", lambda: calls.append(1) or real())
    upload(service, Sender(8 * MiB, piece=1024))
    assert len(calls) == 8 * MiB // FREE_SPACE_CHECK_INTERVAL


def test_a_storage_that_cannot_tell_its_free_space_is_never_full(
        make_service: MakeService) -> None:
    service, _ = make_service(None, min_free_space="1TiB")
    assert upload(service, Sender(2 * MiB), declared=True).size == 2 * MiB
    drops.health(service)


def test_min_free_space_zero_turns_the_check_off(
        make_service: MakeService) -> None:
    service, memory = make_service(MiB, min_free_space="0")
    assert upload(service, Sender(2 * MiB), declared=True).size == 2 * MiB
    assert memory.storage.free_space() == 0
    drops.health(service)


def test_healthz_says_full_below_min_free_space(make_app_on: Callable[..., Flask]) -> None:
    memory = MemoryPlugin()
    app = make_app_on(memory, 5 * MiB, min_free_space="4MiB")
    client = app.test_client()
    assert client.get("/healthz").json == {"status": "ok"}
    upload(service_of(app), Sender(MiB + 1))  # leaves just under 4 MiB
    response = client.get("/healthz")
    assert response.status_code == 507
    assert response.json["status"] == "full"
    assert response.json["error"]["code"] == "storage_full"
    assert "limits.min_free_space" in response.json["error"]["message"]


# --- max_total_size -------------------------------------------------------------------------

def test_max_total_size_counts_every_record_and_refuses_before_and_while_streaming(
        make_service: MakeService) -> None:
    service, memory = make_service(None, max_total_size="3MiB")
    upload(service, Sender(MiB), query={"expires": "1s"})  # gone soon, still counted
    upload(service, Sender(MiB))
    sender = Sender(MiB + 1)
    with pytest.raises(StorageFull, match="max_total_size"):
        upload(service, sender, declared=True)
    assert not sender.called
    sender = Sender(2 * MiB, piece=1)
    with pytest.raises(StorageFull, match="max_total_size"):
        upload(service, sender)
    assert sender.sent == MiB + 1  # refused at the very byte that crossed
    assert not memory.storage.staging
    assert upload(service, Sender(MiB), declared=True).size == MiB
    assert memory.metadata.total_size() == 3 * MiB


# --- removing on a full disk ------------------------------------------------------------------

class FullDatabase(MemoryMetadata):
    """A metadata store on the same full disk as ``storage``: removing a record needs
    ``room`` free bytes there, else it fails as SQLite does (MetadataFull)."""

    def __init__(self, storage: MemoryStorage, room: int) -> None:
        super().__init__()
        self.storage, self.room = storage, room
        self.attempts = 0

    def _make_room(self) -> None:
        self.attempts += 1
        if (self.storage.free_space() or 0) < self.room:
            raise MetadataFull("database or disk is full")

    def delete(self, slug: str, blob_id: str | None = None) -> Drop | None:
        self._make_room()
        return super().delete(slug, blob_id)

    def delete_if_gone(self, slug: str, at: int) -> Drop | None:
        self._make_room()
        return super().delete_if_gone(slug, at)


@dataclass
class FullDisk:
    service: Teledrop
    memory: MemoryPlugin
    database: FullDatabase
    kept: Drop
    exhausted: Drop


@pytest.fixture
def full_disk(make_app_on: Callable[..., Flask]) -> FullDisk:
    """Two 1 MiB drops (one out of downloads) on a disk that is then full, whose database
    needs 4 KiB free to remove a record."""
    memory = MemoryPlugin()
    memory.metadata = database = FullDatabase(memory.storage, room=4096)
    service = service_of(make_app_on(memory, None, min_free_space="0"))
    kept = upload(service, Sender(MiB))
    exhausted = upload(service, Sender(MiB), query={"max_downloads": "1"})
    drops.claim_download(service, exhausted)
    memory.storage.free = 2 * MiB  # exactly what the two hold
    return FullDisk(service, memory, database, kept, exhausted)


def test_a_delete_on_a_full_disk_removes_the_file_first_then_the_record(
        full_disk: FullDisk) -> None:
    drop = full_disk.kept
    removed = drops.delete_drop(full_disk.service, drop.slug, drop.delete_token)
    assert removed.slug == drop.slug
    assert full_disk.database.attempts == 2
    assert drop.slug not in full_disk.database.drops
    assert drop.blob_id not in full_disk.memory.storage.blobs


def test_gc_on_a_full_disk_frees_the_space_of_gone_drops(full_disk: FullDisk) -> None:
    gone = full_disk.exhausted
    assert [(r.kind, r.name) for r in collect(full_disk.service)] == [("drop", gone.slug)]
    assert gone.slug not in full_disk.database.drops
    assert gone.blob_id not in full_disk.memory.storage.blobs
    assert full_disk.memory.storage.free_space() == MiB


def test_a_record_that_cannot_be_removed_even_then_keeps_the_error(
        full_disk: FullDisk) -> None:
    service, memory, database = full_disk.service, full_disk.memory, full_disk.database
    database.room = 4 * MiB  # more than any file gives back
    drop = full_disk.kept
    with pytest.raises(MetadataFull):
        drops.delete_drop(service, drop.slug, drop.delete_token)
    # What remains: the record without its file, until a later delete or gc.
    assert drop.slug in database.drops and drop.blob_id not in memory.storage.blobs
    database.room = 0
    assert drops.delete_drop(service, drop.slug, drop.delete_token).slug == drop.slug


def test_records_go_first_when_there_is_room(
        make_service: MakeService) -> None:
    service, memory = make_service(None)
    drop = upload(service, Sender(10))
    order: list[str] = []
    real_delete = memory.storage.delete
    memory.storage.delete = lambda blob_id: (order.append("file"), real_delete(blob_id))[1]
    drops.remove(service, drop, lambda: (order.append("record"),
                                         memory.metadata.delete(drop.slug))[1])
    assert order == ["record", "file"]
