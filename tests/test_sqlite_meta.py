"""SqliteMetadata honours the metadata contract, and holds up as the default store: WAL,
a busy timeout, a schema version it refuses to run past, data that survives a restart,
several processes × threads writing at once, a locked database that surfaces as
MetadataUnavailable (503), never as a raw sqlite error, and a full disk (a real small tmpfs)
as MetadataFull (507), the migration's included."""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from teledrop.core.drop import now
from teledrop.core.errors import MetadataFull, MetadataUnavailable, SlugTaken
from teledrop.testing import MetadataContract, sample_drop
from teledrop.testing.metadata import sample_upload
from teledrop_sqlite_meta import SCHEMA_VERSION, SqliteMetadata
from tests.small_disk import fill, small_filesystem
from tests.test_owner_migration import build_v1

SHARED_SLUG = "shared-by-all"
PROCESSES, THREADS, INSERTS_PER_THREAD = 2, 4, 10


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "meta" / "teledrop.db"


@pytest.fixture
def metadata(db_path: Path) -> Iterator[SqliteMetadata]:
    store = SqliteMetadata(str(db_path))
    yield store
    store.close()


class TestSqliteMetadataContract(MetadataContract):
    @pytest.fixture
    def metadata(self, metadata: SqliteMetadata) -> SqliteMetadata:
        return metadata


def pragma(path: Path, name: str) -> Any:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


def set_user_version(path: Path, version: int) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"PRAGMA user_version = {version}")
        conn.commit()
    finally:
        conn.close()


# -- pragmas and schema -------------------------------------------------------------------

def test_database_is_in_wal_mode(metadata: SqliteMetadata, db_path: Path) -> None:
    assert pragma(db_path, "journal_mode") == "wal"


def test_busy_timeout_is_set_on_each_connection(db_path: Path) -> None:
    store = SqliteMetadata(str(db_path), busy_timeout=1234)
    try:
        assert store.db.execute_sql("PRAGMA busy_timeout").fetchone()[0] == 1234
        seen: list[int] = []

        def in_thread() -> None:
            seen.append(store.db.execute_sql("PRAGMA busy_timeout").fetchone()[0])
            store.close()

        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join()
        assert seen == [1234]
    finally:
        store.close()


def test_schema_version_is_recorded(metadata: SqliteMetadata, db_path: Path) -> None:
    assert pragma(db_path, "user_version") == SCHEMA_VERSION


def test_schema_2_gains_the_uploads_table_and_keeps_its_drops(
        metadata: SqliteMetadata, db_path: Path) -> None:
    drop = sample_drop()
    metadata.insert(drop)
    metadata.close()
    with contextlib.closing(sqlite3.connect(db_path)) as conn:  # as schema 2 left it
        conn.execute("DROP TABLE uploads")
        conn.execute("PRAGMA user_version = 2")
        conn.commit()
    migrated = SqliteMetadata(str(db_path))
    try:
        assert pragma(db_path, "user_version") == SCHEMA_VERSION == 4
        assert migrated.get(drop.slug) == dataclasses.replace(drop, delete_token=None)
        upload = sample_upload()
        migrated.insert_upload(upload)
        assert migrated.get_upload(upload.id) == upload
    finally:
        migrated.close()


def test_schema_3_uploads_become_tus_ones(metadata: SqliteMetadata, db_path: Path) -> None:
    upload = sample_upload()
    metadata.insert_upload(upload)
    metadata.close()
    with contextlib.closing(sqlite3.connect(db_path)) as conn:  # as schema 3 left it
        conn.execute('ALTER TABLE uploads DROP COLUMN "kind"')
        conn.execute("PRAGMA user_version = 3")
        conn.commit()
    migrated = SqliteMetadata(str(db_path))
    try:
        assert pragma(db_path, "user_version") == SCHEMA_VERSION
        assert migrated.get_upload(upload.id) == upload
        assert upload.kind == "tus"
        direct = sample_upload(kind="direct")
        migrated.insert_upload(direct)
        assert migrated.get_upload(direct.id) == direct
    finally:
        migrated.close()


def test_newer_schema_refuses_to_start(metadata: SqliteMetadata, db_path: Path) -> None:
    metadata.close()
    set_user_version(db_path, SCHEMA_VERSION + 1)
    with pytest.raises(MetadataUnavailable, match="schema version"):
        SqliteMetadata(str(db_path))
    assert pragma(db_path, "user_version") == SCHEMA_VERSION + 1


def test_a_file_that_is_not_a_database_refuses_to_start(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not an sqlite database, just bytes" * 100)
    with pytest.raises(MetadataUnavailable):
        SqliteMetadata(str(db_path))


def test_an_sqlite_without_returning_is_refused_at_start(db_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.34.1")
    with pytest.raises(MetadataUnavailable, match="3.34.1 is too old"):
        SqliteMetadata(str(db_path))


def test_a_record_the_table_refuses_is_not_a_taken_slug(metadata: SqliteMetadata) -> None:
    broken = dataclasses.replace(sample_drop(), filename=None)  # NOT NULL
    with pytest.raises(MetadataUnavailable, match="NOT NULL"):
        metadata.insert(broken)
    assert metadata.get(broken.slug) is None


def traced_claim(store: SqliteMetadata, slug: str, at: int) -> tuple[Any, list[str]]:
    """``claim_download``'s result and the statements it ran on this thread's connection."""
    statements: list[str] = []
    connection = store.db.connection()
    connection.set_trace_callback(statements.append)
    try:
        return store.claim_download(slug, at), statements
    finally:
        connection.set_trace_callback(None)


def kinds(statements: list[str]) -> list[str]:
    return [" ".join(s.split()[:4]) if s.startswith("PRAGMA") else s.split()[0]
            for s in statements]


def test_an_unlimited_drops_count_is_committed_without_fsync(metadata: SqliteMetadata) -> None:
    drop = sample_drop(max_downloads=None)
    metadata.insert(drop)
    claimed, statements = traced_claim(metadata, drop.slug, drop.created_at)
    assert claimed is not None and claimed.downloads == 1
    assert kinds(statements) == ["PRAGMA synchronous = normal", "UPDATE",
                                 "PRAGMA synchronous = full"]
    assert metadata.db.execute_sql("PRAGMA synchronous").fetchone()[0] == 2  # full again
    assert metadata.get(drop.slug).downloads == 1


def test_a_limited_drops_count_keeps_the_configured_synchronous(
        metadata: SqliteMetadata) -> None:
    drop = sample_drop(max_downloads=1)
    metadata.insert(drop)
    claimed, statements = traced_claim(metadata, drop.slug, drop.created_at)
    assert claimed is not None and claimed.downloads == 1
    # the relaxed statement matches nothing; the count itself runs under synchronous = full
    assert kinds(statements) == ["PRAGMA synchronous = normal", "UPDATE",
                                 "PRAGMA synchronous = full", "UPDATE"]
    assert traced_claim(metadata, drop.slug, drop.created_at)[0] is None  # its one download
    assert metadata.get(drop.slug).downloads == 1


def test_a_store_already_at_normal_counts_in_one_statement(db_path: Path) -> None:
    store = SqliteMetadata(str(db_path), synchronous="normal")
    try:
        drop = sample_drop(max_downloads=None)
        store.insert(drop)
        claimed, statements = traced_claim(store, drop.slug, drop.created_at)
        assert claimed is not None and kinds(statements) == ["UPDATE"]
    finally:
        store.close()


def test_a_failed_count_restores_the_configured_synchronous(metadata: SqliteMetadata,
                                                            db_path: Path) -> None:
    drop = sample_drop(max_downloads=None)
    metadata.insert(drop)
    metadata.db.execute_sql("PRAGMA busy_timeout = 50")
    locker = sqlite3.connect(db_path, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(MetadataUnavailable):
            metadata.claim_download(drop.slug, drop.created_at)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert metadata.db.execute_sql("PRAGMA synchronous").fetchone()[0] == 2
    assert metadata.get(drop.slug).downloads == 0


def test_reopening_keeps_the_data(metadata: SqliteMetadata, db_path: Path) -> None:
    drop = sample_drop()
    metadata.insert(drop)
    metadata.claim_download(drop.slug, drop.created_at)
    metadata.close()
    reopened = SqliteMetadata(str(db_path))
    try:
        got = reopened.get(drop.slug)
        assert got is not None and got.blob_id == drop.blob_id and got.downloads == 1
        with pytest.raises(SlugTaken):
            reopened.insert(sample_drop(slug=drop.slug))
    finally:
        reopened.close()


def test_check_fails_when_the_table_is_gone(metadata: SqliteMetadata, db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("DROP TABLE drops")
    with pytest.raises(MetadataUnavailable):
        metadata.check()


# -- several processes × threads ----------------------------------------------------------

def _process_worker(path: str, process: int, results: Any) -> None:
    """One gunicorn-like worker: opens its own store after fork, runs threads that insert
    distinct slugs and race for the shared one."""
    store = SqliteMetadata(path)
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def note(outcome: str) -> None:
        with lock:
            outcomes.append(outcome)

    def thread_main(thread: int) -> None:
        try:
            barrier.wait()
            for n in range(INSERTS_PER_THREAD):
                store.insert(sample_drop(slug=f"p{process}-t{thread}-{n}"))
                if n == INSERTS_PER_THREAD // 2:
                    try:
                        store.insert(sample_drop(slug=SHARED_SLUG))
                        note("won")
                    except SlugTaken:
                        note("lost")
        except BaseException as exc:  # noqa: BLE001 - sent to the parent
            note(f"error: {type(exc).__name__}: {exc}")
        finally:
            store.close()

    threads = [threading.Thread(target=thread_main, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(outcomes)


def test_processes_and_threads_insert_without_locking_errors(
        metadata: SqliteMetadata, db_path: Path) -> None:
    metadata.close()  # nothing open in the parent across fork
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    workers = [ctx.Process(target=_process_worker, args=(str(db_path), p, results))
               for p in range(PROCESSES)]
    for worker in workers:
        worker.start()
    outcomes = [item for _ in workers for item in results.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert [o for o in outcomes if o.startswith("error")] == []
    assert sorted(outcomes) == ["lost"] * (PROCESSES * THREADS - 1) + ["won"]
    slugs = {drop.slug for drop in metadata.iter_drops()}
    assert len(slugs) == PROCESSES * THREADS * INSERTS_PER_THREAD + 1
    assert SHARED_SLUG in slugs


# -- a locked database --------------------------------------------------------------------

@pytest.fixture
def locked(db_path: Path, metadata: SqliteMetadata) -> Iterator[SqliteMetadata]:
    """A store with a short busy timeout while another connection holds the write lock."""
    store = SqliteMetadata(str(db_path), busy_timeout=50)
    drop = sample_drop(slug="locked-drop", max_downloads=None)
    store.insert(drop)
    holder = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield store
    finally:
        holder.rollback()
        holder.close()
        store.close()


@pytest.mark.parametrize("write", [
    lambda store: store.insert(sample_drop()),
    lambda store: store.claim_download("locked-drop", now()),
    lambda store: store.delete("locked-drop"),
    lambda store: store.delete_if_gone("locked-drop", now() + 10**9),
], ids=["insert", "claim_download", "delete", "delete_if_gone"])
def test_locked_database_raises_metadata_unavailable(locked: SqliteMetadata, write: Any) -> None:
    with pytest.raises(MetadataUnavailable) as info:
        write(locked)
    assert "locked" in str(info.value)


def test_store_recovers_once_the_lock_is_released(db_path: Path, metadata: SqliteMetadata) -> None:
    store = SqliteMetadata(str(db_path), busy_timeout=50)
    holder = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(MetadataUnavailable):
            store.insert(sample_drop(slug="after-lock"))
        holder.rollback()
        store.insert(sample_drop(slug="after-lock"))
        assert store.get("after-lock") is not None
    finally:
        holder.close()
        store.close()


# --- a full disk ------------------------------------------------------------------------------

@pytest.fixture
def full_store(tmp_path: Path) -> Iterator[tuple[SqliteMetadata, list[Any], Path]]:
    """A store with 20 drops on a 2 MiB tmpfs that is then filled to the last byte."""
    disk = tmp_path / "disk"
    with small_filesystem(disk, 2 * 1024 * 1024) as mounted:
        if not mounted:
            pytest.fail("mounting a tmpfs failed: the suite runs as root (make test)")
        store = SqliteMetadata(str(disk / "teledrop.db"))
        drops = [sample_drop() for _ in range(20)]
        for drop in drops:
            store.insert(drop)
        filler = fill(disk)
        try:
            yield store, drops, filler
        finally:
            store.close()
            filler.unlink(missing_ok=True)


def test_a_full_disk_reads_and_raises_metadata_full_for_writes(
        full_store: tuple[SqliteMetadata, list[Any], Path]) -> None:
    store, drops, filler = full_store
    assert store.get(drops[0].slug) is not None
    assert store.total_size() == sum(d.size for d in drops)
    # A statement with RETURNING commits when its cursor is read: sqlite3 raises its own
    # error from fetchone(), which peewee does not wrap.
    returning = [lambda: store.claim_download(drops[0].slug, now()),
                 lambda: store.update(drops[0].slug, {"title": "t" * 200}, drops[0].blob_id),
                 lambda: store.delete(drops[1].slug, drops[1].blob_id),
                 lambda: store.delete_if_gone(drops[1].slug, now() + 10**9)]
    for write in [lambda: store.insert(sample_drop()), *returning]:
        with pytest.raises(MetadataFull) as caught:
            write()
        assert (caught.value.status, caught.value.code) == (507, "metadata_full")
        assert "database or disk is full" in str(caught.value)
        assert "no transaction" not in str(caught.value)
        if write in returning:
            assert type(caught.value.__cause__) is sqlite3.OperationalError
    filler.unlink()
    assert store.delete(drops[1].slug) is not None
    assert store.claim_download(drops[0].slug, now()) is not None
    store.insert(sample_drop(slug="after-the-disk-had-room"))
    assert store.get("after-the-disk-had-room") is not None


def test_a_migration_failing_on_a_full_disk_says_so_and_keeps_schema_1(
        tmp_path: Path) -> None:
    """SQLite rolls a transaction back by itself when the disk is full: the error seen must
    be that, not a rollback's "no transaction is active"."""
    disk = tmp_path / "disk"
    data = disk / "data"
    failures: list[MetadataUnavailable | MetadataFull] = []
    with small_filesystem(disk, 2 * 1024 * 1024) as mounted:
        if not mounted:
            pytest.fail("mounting a tmpfs failed: the suite runs as root (make test)")
        # from room for the WAL's index (8 pages; with less, opening is a disk I/O error)
        # to enough for the migration
        for leave_pages in range(8, 40):
            shutil.rmtree(data, ignore_errors=True)
            (disk / "filler").unlink(missing_ok=True)
            build_v1(data)
            filler = fill(disk)
            os.truncate(filler, filler.stat().st_size - leave_pages * 4096)
            try:
                SqliteMetadata(str(data / "teledrop.db")).close()
                break
            except (MetadataUnavailable, MetadataFull) as exc:
                failures.append(exc)
                assert pragma(data / "teledrop.db", "user_version") == 1
        else:
            pytest.fail("the migration never found room")
        assert pragma(data / "teledrop.db", "user_version") == SCHEMA_VERSION
    assert failures, "the disk was never too full to migrate"
    assert all(isinstance(exc, MetadataFull) and "database or disk is full" in str(exc)
               for exc in failures), [str(exc) for exc in failures]
