"""LocalStorage honours the storage contract, and keeps the promises only a filesystem can:
bytes are written once into staging and renamed into place (same inode, no copy), publish
is fsync(file) → rename → fsync(dir), disk errors map to StorageFull / StorageUnavailable,
and no blob id or staging name reaches outside the root."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from teledrop.core.errors import BlobMissing, StorageFull, StorageUnavailable
from teledrop.testing import ResumableStagingContract, StorageContract
from teledrop_local_storage import LocalStorage
from tests.small_disk import fill, small_filesystem
from tests.support.durability import record_publish_steps


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store" / "files"


@pytest.fixture
def storage(root: Path) -> Iterator[LocalStorage]:
    store = LocalStorage(str(root))
    yield store
    store.close()


class TestLocalStorageContract(StorageContract):
    @pytest.fixture
    def storage(self, storage: LocalStorage) -> LocalStorage:
        return storage


class TestLocalStorageResumable(ResumableStagingContract):
    @pytest.fixture
    def storage(self, storage: LocalStorage) -> LocalStorage:
        return storage


def test_a_resumable_blob_is_fsynced_before_its_offset_is_given(
        storage: LocalStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    writer = storage.stage_resumable()
    writer.write(b"durable")
    writer.sync()
    assert synced == [writer._fd]
    writer.discard()


def test_a_resumable_blob_id_never_names_a_path(storage: LocalStorage) -> None:
    with pytest.raises(BlobMissing):
        storage.resume("../../etc/passwd", "", 0)
    with pytest.raises(BlobMissing):
        storage.read_staged("../x", "", 0)


def staging_path(root: Path, blob_id: str) -> Path:
    return root / "staging" / f"{blob_id}.part"


def blob_path(root: Path, blob_id: str) -> Path:
    return root / "blobs" / blob_id[:2] / blob_id


def failing(code: int) -> Callable[..., int]:
    def fail(*args: object) -> int:
        raise OSError(code, os.strerror(code))
    return fail


# -- layout: written once, renamed into place ---------------------------------------------

def test_bytes_land_in_staging_while_writing(storage: LocalStorage, root: Path) -> None:
    writer = storage.stage()
    try:
        writer.write(b"in progress")
        assert staging_path(root, writer.blob_id).read_bytes() == b"in progress"
        assert not blob_path(root, writer.blob_id).exists()
    finally:
        writer.close()
    assert not staging_path(root, writer.blob_id).exists()


def test_publish_renames_the_staged_file_into_place(storage: LocalStorage, root: Path) -> None:
    writer = storage.stage()
    writer.write(b"written once")
    staged_inode = staging_path(root, writer.blob_id).stat().st_ino
    writer.publish()
    final = blob_path(root, writer.blob_id)
    assert final.read_bytes() == b"written once"
    # The same inode proves a rename, not a copy into the final place.
    assert final.stat().st_ino == staged_inode
    assert not staging_path(root, writer.blob_id).exists()
    with storage.open(writer.blob_id) as f:
        assert os.fstat(f.fileno()).st_ino == staged_inode


def test_discard_after_publish_removes_the_file(storage: LocalStorage, root: Path) -> None:
    writer = storage.stage()
    writer.write(b"undo me")
    writer.publish()
    writer.discard()
    assert not blob_path(root, writer.blob_id).exists()
    assert not staging_path(root, writer.blob_id).exists()


def test_list_blobs_ignores_foreign_files(storage: LocalStorage, root: Path) -> None:
    (root / "blobs" / "ab").mkdir()
    (root / "blobs" / "ab" / "not-a-blob.txt").write_text("x")
    (root / "staging" / "notes.txt").write_text("x")
    assert list(storage.list_blobs()) == []
    assert list(storage.list_staging()) == []


# -- publish order: fsync(file) → rename → fsync(dir) -------------------------------------

@pytest.fixture
def io_log(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    return record_publish_steps(monkeypatch)


@pytest.mark.parametrize("fanout_exists", [False, True])
def test_publish_fsyncs_file_then_renames_then_fsyncs_dir(
        storage: LocalStorage, root: Path, io_log: list[tuple[str, int]],
        fanout_exists: bool) -> None:
    writer = storage.stage()
    if fanout_exists:
        blob_path(root, writer.blob_id).parent.mkdir()
    writer.write(b"durable")
    file_inode = staging_path(root, writer.blob_id).stat().st_ino
    writer.publish()
    final_dir_inode = blob_path(root, writer.blob_id).parent.stat().st_ino
    kinds = [kind for kind, _ in io_log]
    assert kinds.count("rename") == 1
    renamed_at = kinds.index("rename")
    assert ("fsync file", file_inode) in io_log[:renamed_at]
    assert io_log[renamed_at] == ("rename", file_inode)
    assert ("fsync dir", final_dir_inode) in io_log[renamed_at + 1:]


def test_failed_file_fsync_leaves_nothing_behind(
        storage: LocalStorage, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = storage.stage()
    writer.write(b"never durable")
    monkeypatch.setattr(os, "fsync", failing(errno.EIO))
    with pytest.raises(StorageUnavailable):
        writer.publish()
    monkeypatch.undo()
    writer.close()
    assert not blob_path(root, writer.blob_id).exists()
    assert not staging_path(root, writer.blob_id).exists()


def test_failed_dir_fsync_after_rename_leaves_nothing_behind(
        storage: LocalStorage, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The rename already happened: a writer whose publish raised must still clean up
    # on close(), or the blob outlives the failed upload without a record.
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(fd)

    writer = storage.stage()
    blob_path(root, writer.blob_id).parent.mkdir()
    writer.write(b"renamed, not durable")
    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StorageUnavailable):
        writer.publish()
    monkeypatch.undo()
    writer.close()
    assert not blob_path(root, writer.blob_id).exists()
    assert not staging_path(root, writer.blob_id).exists()


def test_a_failing_close_in_publish_closes_once_and_leaves_nothing(
        storage: LocalStorage, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = storage.stage()
    writer.write(b"data")
    closed: list[int] = []
    real_close = os.close

    def close(fd: int) -> None:
        closed.append(fd)
        real_close(fd)
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "close", close)
    with pytest.raises(StorageUnavailable):
        writer.publish()
    writer.close()
    monkeypatch.undo()
    assert len(closed) == 1  # a second close could hit a descriptor another thread reuses
    assert not staging_path(root, writer.blob_id).exists()
    assert not blob_path(root, writer.blob_id).exists()


def test_discard_goes_on_when_one_step_fails(storage: LocalStorage, root: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    writer = storage.stage()
    writer.write(b"data")
    writer.publish()
    staging_path(root, writer.blob_id).write_bytes(b"debris")  # a stale staging name
    real_unlink = os.unlink

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        if "staging" in str(path):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    writer.discard()
    monkeypatch.undo()
    assert not blob_path(root, writer.blob_id).exists()  # removed despite the failed step


# -- disk errors ---------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "error"), [
    (errno.ENOSPC, StorageFull),
    (errno.EDQUOT, StorageFull),
    (errno.EIO, StorageUnavailable),
])
def test_write_errors_map_to_storage_errors(
        storage: LocalStorage, root: Path, monkeypatch: pytest.MonkeyPatch,
        code: int, error: type[Exception]) -> None:
    writer = storage.stage()
    monkeypatch.setattr(os, "write", failing(code))
    with pytest.raises(error) as info:
        writer.write(b"no room")
    monkeypatch.undo()
    if error is StorageUnavailable:
        assert not isinstance(info.value, StorageFull)
    writer.close()
    assert not staging_path(root, writer.blob_id).exists()


def test_publish_on_a_full_disk_raises_storage_full(
        storage: LocalStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = storage.stage()
    writer.write(b"x")
    monkeypatch.setattr(os, "fsync", failing(errno.ENOSPC))
    with pytest.raises(StorageFull):
        writer.publish()
    monkeypatch.undo()
    writer.close()


def test_short_writes_are_completed(storage: LocalStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write

    def short_write(fd: int, data: bytes | memoryview) -> int:
        return real_write(fd, bytes(data[:3]))

    writer = storage.stage()
    monkeypatch.setattr(os, "write", short_write)
    assert writer.write(b"0123456789") == 10
    monkeypatch.undo()
    writer.publish()
    with storage.open(writer.blob_id) as f:
        assert f.read() == b"0123456789"


def test_unwritable_root_fails_to_start(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageUnavailable):
        LocalStorage(str(blocker / "files"))


def test_check_fails_when_staging_is_gone(storage: LocalStorage, root: Path) -> None:
    (root / "staging").rmdir()
    with pytest.raises(StorageUnavailable):
        storage.check()


# -- nothing outside the root --------------------------------------------------------------

@pytest.fixture
def bait(tmp_path: Path, root: Path) -> list[Path]:
    """Files a naive path join of a hostile id would reach."""
    files = [tmp_path / "x", root / "x", root / "blobs" / "x", tmp_path / "secret"]
    for path in files:
        path.write_text("outside the blob store")
    return files


def hostile_ids(tmp_path: Path) -> list[str]:
    return ["../x", "../../x", "../../../x", "/etc/passwd", str(tmp_path / "secret"),
            "..", ".", "", "x/../../x", "blobs/../x"]


def test_open_refuses_hostile_blob_ids(storage: LocalStorage, tmp_path: Path,
                                       bait: list[Path]) -> None:
    for blob_id in hostile_ids(tmp_path):
        with pytest.raises(BlobMissing):
            storage.open(blob_id)


def test_delete_never_removes_outside_the_root(storage: LocalStorage, tmp_path: Path,
                                                bait: list[Path]) -> None:
    for blob_id in hostile_ids(tmp_path):
        try:
            storage.delete(blob_id)
        except BlobMissing:
            pass
    assert all(path.exists() for path in bait)


def test_remove_staging_refuses_paths(storage: LocalStorage, tmp_path: Path,
                                      bait: list[Path]) -> None:
    for name in ["../x", "../../x.part", str(tmp_path / "secret"), "../blobs/x"]:
        with pytest.raises(ValueError):
            storage.remove_staging(name)
    assert all(path.exists() for path in bait)


def test_free_space_is_what_the_filesystem_leaves_an_unprivileged_writer(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    with small_filesystem(disk, 4 * 1024 * 1024) as mounted:
        if not mounted:
            pytest.fail("mounting a tmpfs failed: the suite runs as root (make test)")
        storage = LocalStorage(str(disk / "files"))
        empty = storage.free_space()
        assert 3 * 1024 * 1024 < empty <= 4 * 1024 * 1024
        writer = storage.stage()
        writer.write(b"x" * 1024 * 1024)
        writer.publish()
        writer.close()
        assert storage.free_space() == empty - 1024 * 1024
        fill(disk)
        assert storage.free_space() == 0
