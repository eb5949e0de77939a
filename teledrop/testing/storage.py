"""The storage contract suite: see :mod:`teledrop.testing` for how a backend runs it."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import pytest

from teledrop.core.errors import BlobMissing
from teledrop.core.interfaces import BlobWriter, ResumableStaging, ResumableWriter, Storage, \
    StoredItem

#: Generous bound for "just made": ages are in seconds and backends may round.
FRESH_AGE = 60.0
MIB = 1024 * 1024
#: Where the resumable contract cuts a blob's requests: at, just before and just after
#: multiples of 5 MiB (an object store's smallest part), and inside one.
CUTS = (1, 5 * MIB - 1, 5 * MIB, 5 * MIB + 1, 7 * MIB + 12345, 10 * MIB, 10 * MIB + 2)
SPAN = 12 * MIB + 777


def pattern(size: int) -> bytes:
    """``size`` bytes where every position differs from its neighbours' (offsets show)."""
    return (bytes(range(251)) * (size // 251 + 1))[:size]


def published(storage: Storage, *chunks: bytes | memoryview) -> BlobWriter:
    """A blob written from ``chunks`` and published."""
    writer = storage.stage()
    for chunk in chunks:
        writer.write(chunk)
    writer.publish()
    return writer


def read_blob(storage: Storage, blob_id: str) -> bytes:
    with storage.open(blob_id) as f:
        return f.read()


def names(items: Iterable[StoredItem]) -> set[str]:
    return {item.name for item in items}


def unknown_blob_id(storage: Storage) -> str:
    """A well-formed id (the backend's own format) that names no blob."""
    writer = storage.stage()
    writer.discard()
    return writer.blob_id


def assert_missing(storage: Storage, blob_id: str) -> None:
    with pytest.raises(BlobMissing):
        storage.open(blob_id)
    assert blob_id not in names(storage.list_blobs())


class StorageContract:
    """Subclass as ``Test<YourStorage>`` and provide a ``storage`` fixture."""

    @pytest.fixture
    def storage(self) -> Storage:
        raise NotImplementedError("a StorageContract subclass must provide a `storage` fixture")

    # -- the happy path ------------------------------------------------------------------

    def test_satisfies_the_protocol(self, storage: Storage) -> None:
        assert isinstance(storage, Storage)
        writer = storage.stage()
        try:
            assert isinstance(writer, BlobWriter)
        finally:
            writer.close()

    def test_published_blob_reads_back_what_was_written(self, storage: Storage) -> None:
        writer = published(storage, b"hello, ", memoryview(b"xxworld!xx")[2:8], b"\x00\xff")
        assert read_blob(storage, writer.blob_id) == b"hello, world!\x00\xff"

    def test_write_returns_the_number_of_bytes(self, storage: Storage) -> None:
        writer = storage.stage()
        try:
            assert writer.write(b"abc") == 3
            assert writer.write(memoryview(bytearray(b"defgh"))) == 5
            assert writer.write(b"") == 0
        finally:
            writer.close()

    def test_empty_blob_round_trips(self, storage: Storage) -> None:
        writer = published(storage)
        assert read_blob(storage, writer.blob_id) == b""

    def test_many_chunks_round_trip(self, storage: Storage) -> None:
        data = bytes(range(256)) * (8 * 1024 + 3)  # a little over 2 MiB
        view = memoryview(data)
        chunks = [view[i:i + 256 * 1024] for i in range(0, len(data), 256 * 1024)]
        writer = published(storage, *chunks)
        assert read_blob(storage, writer.blob_id) == data

    def test_close_after_publish_keeps_the_blob(self, storage: Storage) -> None:
        writer = published(storage, b"kept")
        writer.close()
        assert read_blob(storage, writer.blob_id) == b"kept"

    def test_blob_can_be_read_more_than_once(self, storage: Storage) -> None:
        writer = published(storage, b"again")
        assert read_blob(storage, writer.blob_id) == b"again"
        assert read_blob(storage, writer.blob_id) == b"again"

    # -- invisibility of unpublished blobs ----------------------------------------------

    def test_unpublished_blob_is_invisible_and_listed_as_staging(self, storage: Storage) -> None:
        before = names(storage.list_staging())
        writer = storage.stage()
        try:
            writer.write(b"half-written")
            assert_missing(storage, writer.blob_id)
            new = [item for item in storage.list_staging() if item.name not in before]
            assert len(new) == 1
            assert 0 <= new[0].age < FRESH_AGE
        finally:
            writer.close()

    def test_publish_leaves_staging(self, storage: Storage) -> None:
        before = names(storage.list_staging())
        writer = published(storage, b"data")
        assert names(storage.list_staging()) == before
        assert writer.blob_id in names(storage.list_blobs())

    def test_close_without_publish_discards(self, storage: Storage) -> None:
        before = names(storage.list_staging())
        writer = storage.stage()
        writer.write(b"abandoned")
        writer.close()
        assert names(storage.list_staging()) == before
        assert_missing(storage, writer.blob_id)

    def test_discard_before_publish_removes_the_staged_blob(self, storage: Storage) -> None:
        before = names(storage.list_staging())
        writer = storage.stage()
        writer.write(b"abandoned")
        writer.discard()
        assert names(storage.list_staging()) == before
        assert_missing(storage, writer.blob_id)

    # -- removal ------------------------------------------------------------------------

    def test_discard_after_publish_removes_the_blob(self, storage: Storage) -> None:
        writer = published(storage, b"undone")
        writer.discard()
        assert_missing(storage, writer.blob_id)

    def test_discard_is_idempotent(self, storage: Storage) -> None:
        writer = published(storage, b"twice")
        writer.discard()
        writer.discard()
        writer.close()
        assert_missing(storage, writer.blob_id)

    def test_discard_of_an_unwritten_writer_is_harmless(self, storage: Storage) -> None:
        before = names(storage.list_staging())
        writer = storage.stage()
        writer.discard()
        writer.close()
        assert names(storage.list_staging()) == before

    def test_delete_removes_a_published_blob(self, storage: Storage) -> None:
        keep = published(storage, b"keep")
        gone = published(storage, b"gone")
        storage.delete(gone.blob_id)
        assert_missing(storage, gone.blob_id)
        assert read_blob(storage, keep.blob_id) == b"keep"

    def test_delete_is_idempotent(self, storage: Storage) -> None:
        writer = published(storage, b"x")
        storage.delete(writer.blob_id)
        storage.delete(writer.blob_id)
        storage.delete(unknown_blob_id(storage))
        assert_missing(storage, writer.blob_id)

    def test_open_of_an_unknown_blob_raises_blob_missing(self, storage: Storage) -> None:
        assert_missing(storage, unknown_blob_id(storage))

    def test_remove_staging_removes_debris_idempotently(self, storage: Storage) -> None:
        before = names(storage.list_staging())
        writer = storage.stage()
        writer.write(b"debris")
        (name,) = names(storage.list_staging()) - before
        storage.remove_staging(name)
        assert names(storage.list_staging()) == before
        storage.remove_staging(name)
        # The writer's owner may still close it after gc swept its file.
        writer.close()
        assert_missing(storage, writer.blob_id)

    # -- listing ------------------------------------------------------------------------

    def test_list_blobs_lists_published_blobs_with_ages(self, storage: Storage) -> None:
        ids = {published(storage, bytes([n]) * n).blob_id for n in range(3)}
        listed = {item.name: item for item in storage.list_blobs()}
        assert ids <= set(listed)
        for blob_id in ids:
            assert isinstance(listed[blob_id].age, float | int)
            assert 0 <= listed[blob_id].age < FRESH_AGE

    def test_list_blobs_leaves_out_staged_blobs(self, storage: Storage) -> None:
        writer = storage.stage()
        try:
            writer.write(b"staged")
            assert writer.blob_id not in names(storage.list_blobs())
        finally:
            writer.close()

    # -- blob ids -----------------------------------------------------------------------

    def test_blob_ids_are_distinct_and_independent_of_content(self, storage: Storage) -> None:
        writers = [storage.stage() for _ in range(20)]
        try:
            for writer in writers:
                writer.write(b"same content")
            ids = [writer.blob_id for writer in writers]
        finally:
            for writer in writers:
                writer.close()
        assert len(set(ids)) == len(ids)
        for blob_id in ids:
            assert isinstance(blob_id, str) and blob_id
            assert "/" not in blob_id and "\\" not in blob_id and ".." not in blob_id

    def test_same_content_published_twice_makes_two_blobs(self, storage: Storage) -> None:
        first = published(storage, b"twin")
        second = published(storage, b"twin")
        assert first.blob_id != second.blob_id
        storage.delete(first.blob_id)
        assert read_blob(storage, second.blob_id) == b"twin"

    # -- concurrency and health ---------------------------------------------------------

    def test_concurrent_writers_do_not_mix(self, storage: Storage) -> None:
        count = 8
        barrier = threading.Barrier(count)
        results: dict[int, str] = {}
        errors: list[BaseException] = []

        def upload(n: int) -> None:
            try:
                writer = storage.stage()
                barrier.wait()
                for _ in range(16):
                    writer.write(bytes([n]) * 4096)
                writer.publish()
                results[n] = writer.blob_id
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=upload, args=(n,)) for n in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(set(results.values())) == count
        for n, blob_id in results.items():
            assert read_blob(storage, blob_id) == bytes([n]) * 4096 * 16

    def test_free_space_is_a_byte_count_or_unknown(self, storage: Storage) -> None:
        free = storage.free_space()
        assert free is None or (type(free) is int and free >= 0)

    def test_check_passes_on_a_healthy_store(self, storage: Storage) -> None:
        assert storage.check() is None


class ResumableStagingContract:
    """For a storage that also offers :class:`~teledrop.core.interfaces.ResumableStaging`:
    subclass as ``Test<YourStorage>Resumable`` and provide the same ``storage`` fixture."""

    @pytest.fixture
    def storage(self) -> Storage:
        raise NotImplementedError("a ResumableStagingContract subclass must provide `storage`")

    def staged(self, storage: Any, *chunks: bytes) -> tuple[str, str, int]:
        """A resumable blob written from ``chunks``, synced and released."""
        writer = storage.stage_resumable()
        for chunk in chunks:
            writer.write(chunk)
        state = writer.sync()
        writer.close()
        return writer.blob_id, state, writer.offset

    def test_satisfies_the_protocol(self, storage: Any) -> None:
        assert isinstance(storage, ResumableStaging)
        writer = storage.stage_resumable()
        try:
            assert isinstance(writer, ResumableWriter) and writer.offset == 0
        finally:
            writer.discard()

    def test_staged_blobs_are_listed_by_blob_id_until_removed(self, storage: Any) -> None:
        blob_id, state, _ = self.staged(storage, b"staged")
        listed = {item.name: item for item in storage.list_resumable()}
        assert blob_id in listed and 0 <= listed[blob_id].age < FRESH_AGE
        storage.remove_resumable(blob_id, state)
        assert blob_id not in {item.name for item in storage.list_resumable()}

    def test_staged_bytes_outlive_the_writer_and_are_appended_to(self, storage: Any) -> None:
        blob_id, state, offset = self.staged(storage, b"first ", memoryview(b"part, "))
        assert offset == len(b"first part, ")
        writer = storage.resume(blob_id, state, offset)
        assert writer.offset == offset
        writer.write(b"then the rest")
        writer.sync()
        writer.publish()
        writer.close()
        assert read_blob(storage, blob_id) == b"first part, then the rest"

    def test_a_resume_drops_bytes_past_the_recorded_offset(self, storage: Any) -> None:
        blob_id, state, _ = self.staged(storage, b"kept", b"never recorded")
        writer = storage.resume(blob_id, state, 4)
        writer.write(b"+new")
        writer.publish()
        assert read_blob(storage, blob_id) == b"kept+new"

    def test_read_staged_gives_the_recorded_prefix(self, storage: Any) -> None:
        blob_id, state, offset = self.staged(storage, b"0123456789" * 1000)
        with storage.read_staged(blob_id, state, offset) as f:
            assert f.read(offset) == b"0123456789" * 1000
        storage.remove_resumable(blob_id, state)

    def test_a_blob_staged_over_requests_cut_anywhere_round_trips(self, storage: Any) -> None:
        data = pattern(SPAN)
        writer = storage.stage_resumable(size_hint=SPAN)
        for cut in CUTS:
            assert writer.offset < cut
            writer.write(memoryview(data)[writer.offset:cut])
            state = writer.sync()
            writer.close()
            assert writer.offset == cut
            staged = storage.read_staged(writer.blob_id, state, cut)
            if staged is not None:  # a storage may be unable to read back what it staged
                with staged as f:
                    assert f.read() == data[:cut]
            writer = storage.resume(writer.blob_id, state, cut)
            assert writer.offset == cut
        writer.write(data[writer.offset:])
        writer.sync(final=True)
        writer.publish()
        writer.publish()  # again: nothing changes
        writer.close()
        assert read_blob(storage, writer.blob_id) == data
        writer.discard()
        assert_missing(storage, writer.blob_id)

    def test_a_resume_from_the_last_recorded_state_ignores_what_followed(
            self, storage: Any) -> None:
        """A request that died before recording its progress (its host killed) leaves
        bytes past the recorded state: the next request continues from the record."""
        data = pattern(SPAN)
        writer = storage.stage_resumable(size_hint=SPAN)
        writer.write(data[:3 * MIB])
        recorded = writer.sync()
        writer.close()
        doomed = storage.resume(writer.blob_id, recorded, 3 * MIB)
        doomed.write(pattern(8 * MIB))  # other bytes, never recorded
        doomed.close()
        writer = storage.resume(writer.blob_id, recorded, 3 * MIB)
        writer.write(data[3 * MIB:])
        writer.publish()
        assert read_blob(storage, writer.blob_id) == data
        writer.discard()

    def test_a_final_sync_is_resumed_and_published(self, storage: Any) -> None:
        """A process that dies between syncing the last byte and publishing leaves an
        upload the next request publishes from its record."""
        data = pattern(6 * MIB + 5)
        writer = storage.stage_resumable(size_hint=len(data))
        writer.write(data)
        state = writer.sync(final=True)
        writer.close()
        writer = storage.resume(writer.blob_id, state, len(data))
        writer.publish()
        assert read_blob(storage, writer.blob_id) == data
        writer.discard()

    def test_an_empty_blob_is_published(self, storage: Any) -> None:
        writer = storage.stage_resumable(size_hint=0)
        writer.sync(final=True)
        writer.publish()
        assert read_blob(storage, writer.blob_id) == b""
        writer.discard()

    def test_staged_blobs_are_invisible_and_not_staging_debris(self, storage: Any) -> None:
        blob_id, state, _ = self.staged(storage, b"in progress")
        assert_missing(storage, blob_id)
        assert not any(blob_id in item.name for item in storage.list_staging())
        storage.remove_resumable(blob_id, state)

    def test_remove_resumable_removes_everything_idempotently(self, storage: Any) -> None:
        blob_id, state, offset = self.staged(storage, b"to be removed")
        storage.remove_resumable(blob_id, state)
        storage.remove_resumable(blob_id, state)
        with pytest.raises(BlobMissing):
            storage.resume(blob_id, state, offset)

    def test_a_resume_past_what_is_staged_is_blob_missing(self, storage: Any) -> None:
        blob_id, state, offset = self.staged(storage, b"short")
        with pytest.raises(BlobMissing):
            storage.resume(blob_id, state, offset + 1)
        storage.remove_resumable(blob_id, state)

    def test_discard_removes_the_staged_bytes(self, storage: Any) -> None:
        writer = storage.stage_resumable()
        writer.write(b"gone")
        state = writer.sync()
        writer.discard()
        writer.discard()
        with pytest.raises(BlobMissing):
            storage.resume(writer.blob_id, state, 0)
