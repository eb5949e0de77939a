"""teledrop's default storage: blobs on a local filesystem.

Layout under ``root``::

    staging/<blob_id>.part      being written (the only place an upload's bytes go)
    staging/<blob_id>.upload    a resumable upload's bytes, appended to by each request
    blobs/<ab>/<blob_id>        published: fsync(file) → rename → fsync(dir)

Staging and blobs share a filesystem, so publishing is one atomic rename: a half-written
file is never visible, and no byte is copied twice. Blob ids are uuid4 hex, never derived
from user input.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from teledrop import hookimpl
from teledrop.core.errors import BlobMissing, StorageFull, StorageUnavailable
from teledrop.core.interfaces import StoredItem

log = logging.getLogger(__name__)

STAGING_SUFFIX = ".part"
RESUMABLE_SUFFIX = ".upload"
_BLOB_ID = re.compile(r"[0-9a-f]{32}")
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


@dataclass(frozen=True)
class LocalStorageSettings:
    root: str = "data/files"


@hookimpl
def teledrop_config_schema() -> dict[str, type]:
    return {"local_storage": LocalStorageSettings}


@hookimpl
def teledrop_storage_backends() -> dict[str, Any]:
    return {"local_storage": LocalStorage.from_settings}


def storage_error(exc: OSError, doing: str) -> Exception:
    if exc.errno in _FULL_ERRNOS:
        return StorageFull(f"the storage is full ({doing})")
    return StorageUnavailable(f"storage error while {doing}: {exc.strerror or exc}")


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobWriter:
    """A blob being written to ``staging/``; see :class:`teledrop.core.interfaces.BlobWriter`."""

    def __init__(self, blob_id: str, staging_path: str, final_path: str, fd: int) -> None:
        self.blob_id = blob_id
        self.staging_path = staging_path
        self.final_path = final_path
        self._fd: int | None = fd
        self.published = False
        #: bytes in the staging file (what a failed write wrote before failing included).
        self.offset = 0

    def write(self, data: bytes | memoryview) -> int:
        if self._fd is None:
            raise StorageUnavailable("write to a closed blob")
        view = memoryview(data)
        total = len(view)
        try:
            while view:
                n = os.write(self._fd, view)
                self.offset += n
                view = view[n:]
        except OSError as exc:
            raise storage_error(exc, "writing") from exc
        return total

    def publish(self) -> None:
        if self._fd is None:
            raise StorageUnavailable("publish of a closed blob")
        fd, self._fd = self._fd, None  # closed below, once, whatever happens
        try:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            directory = os.path.dirname(self.final_path)
            if not os.path.isdir(directory):
                os.makedirs(directory, exist_ok=True)
                fsync_dir(os.path.dirname(directory))
            os.rename(self.staging_path, self.final_path)
            self.published = True
            fsync_dir(directory)
        except OSError as exc:
            self.discard()  # renamed or not, a publish that raised leaves nothing behind
            raise storage_error(exc, "publishing") from exc

    def discard(self) -> None:
        """Never raises: each step is tried whatever happened to the one before."""
        steps: list[tuple[str, Callable[[], None]]] = []
        if self._fd is not None:
            fd, self._fd = self._fd, None
            steps.append(("close", lambda: os.close(fd)))
        steps.append(("remove the staging file of", lambda: _unlink(self.staging_path)))
        if self.published:
            steps.append(("remove", lambda: _unlink(self.final_path)))
            self.published = False
        for what, step in steps:
            try:
                step()
            except OSError:
                log.exception("local_storage: could not %s blob %s", what, self.blob_id)

    def close(self) -> None:
        if not self.published:
            self.discard()


class ResumableLocalWriter(LocalBlobWriter):
    """A resumable blob: its staging file outlives the writer (see
    :class:`teledrop.core.interfaces.ResumableWriter`)."""

    def __init__(self, blob_id: str, staging_path: str, final_path: str, fd: int,
                 offset: int) -> None:
        super().__init__(blob_id, staging_path, final_path, fd)
        self.offset = offset

    def sync(self, final: bool = False) -> str:
        if self._fd is None:
            raise StorageUnavailable("sync of a closed blob")
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise storage_error(exc, "syncing") from exc
        return ""  # the file's path is all a resume needs

    def publish(self) -> None:
        if not self.published:
            super().publish()

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError:
                log.exception("local_storage: could not close blob %s", self.blob_id)


class LocalStorage:
    """Blobs under one root directory."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.staging_dir = os.path.join(self.root, "staging")
        self.blobs_dir = os.path.join(self.root, "blobs")
        try:
            os.makedirs(self.staging_dir, exist_ok=True)
            os.makedirs(self.blobs_dir, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot create {self.root}: {exc.strerror}") from exc

    @classmethod
    def from_settings(cls, settings: LocalStorageSettings, config: Any) -> LocalStorage:
        return cls(settings.root)

    def _final_path(self, blob_id: str) -> str:
        if not _BLOB_ID.fullmatch(blob_id):
            raise BlobMissing(f"not a blob id: {blob_id!r}")
        return os.path.join(self.blobs_dir, blob_id[:2], blob_id)

    def stage(self, size_hint: int | None = None) -> LocalBlobWriter:
        """``size_hint`` is not needed: a file grows as it is written."""
        blob_id = uuid.uuid4().hex
        staging_path = os.path.join(self.staging_dir, blob_id + STAGING_SUFFIX)
        try:
            fd = os.open(staging_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise storage_error(exc, "staging") from exc
        return LocalBlobWriter(blob_id, staging_path, self._final_path(blob_id), fd)

    def _resumable_path(self, blob_id: str) -> str:
        if not _BLOB_ID.fullmatch(blob_id):
            raise BlobMissing(f"not a blob id: {blob_id!r}")
        return os.path.join(self.staging_dir, blob_id + RESUMABLE_SUFFIX)

    def stage_resumable(self, size_hint: int | None = None) -> ResumableLocalWriter:
        return self._open_resumable(uuid.uuid4().hex, None)

    def resume(self, blob_id: str, state: str, offset: int) -> ResumableLocalWriter:
        return self._open_resumable(blob_id, offset)

    def _open_resumable(self, blob_id: str, offset: int | None) -> ResumableLocalWriter:
        """A new staging file (``offset`` None) or the one at ``offset``, cut back to it:
        bytes past it were written by a request that failed before recording them."""
        path = self._resumable_path(blob_id)
        flags = os.O_WRONLY | os.O_CLOEXEC | (os.O_CREAT | os.O_EXCL if offset is None else 0)
        try:
            fd = os.open(path, flags, 0o640)
        except FileNotFoundError:
            raise BlobMissing(f"the staged bytes of {blob_id} are missing") from None
        except OSError as exc:
            raise storage_error(exc, "staging") from exc
        try:
            if offset is not None:
                if os.fstat(fd).st_size < offset:
                    raise BlobMissing(f"the staged bytes of {blob_id} are shorter than recorded")
                os.ftruncate(fd, offset)
                os.lseek(fd, offset, os.SEEK_SET)
        except BaseException as exc:
            os.close(fd)
            if isinstance(exc, OSError):
                raise storage_error(exc, "reopening a staged blob") from exc
            raise
        return ResumableLocalWriter(blob_id, path, self._final_path(blob_id), fd, offset or 0)

    def read_staged(self, blob_id: str, state: str, offset: int) -> BinaryIO:
        return _read(self._resumable_path(blob_id), f"the staged bytes of {blob_id}")

    def remove_resumable(self, blob_id: str, state: str) -> None:
        try:
            _unlink(self._resumable_path(blob_id))
        except OSError as exc:
            raise storage_error(exc, "removing a staged blob") from exc

    def open(self, blob_id: str) -> BinaryIO:
        return _read(self._final_path(blob_id), f"blob {blob_id}")

    def delete(self, blob_id: str) -> None:
        try:
            _unlink(self._final_path(blob_id))
        except OSError as exc:
            raise storage_error(exc, "deleting a blob") from exc

    def list_blobs(self) -> Iterator[StoredItem]:
        for fanout in _scandir(self.blobs_dir):
            if fanout.is_dir(follow_symlinks=False):
                for entry in _scandir(fanout.path):
                    if _BLOB_ID.fullmatch(entry.name):
                        yield StoredItem(entry.name, _age(entry))

    def list_resumable(self) -> Iterator[StoredItem]:
        for entry in _scandir(self.staging_dir):
            blob_id = entry.name[:-len(RESUMABLE_SUFFIX)]
            if entry.name.endswith(RESUMABLE_SUFFIX) and _BLOB_ID.fullmatch(blob_id):
                yield StoredItem(blob_id, _age(entry))

    def list_staging(self) -> Iterator[StoredItem]:
        for entry in _scandir(self.staging_dir):
            if entry.name.endswith(STAGING_SUFFIX):
                yield StoredItem(entry.name, _age(entry))

    def remove_staging(self, name: str) -> None:
        if os.path.basename(name) != name or not name.endswith(STAGING_SUFFIX):
            raise ValueError(f"not a staging name: {name!r}")
        _unlink(os.path.join(self.staging_dir, name))

    def free_space(self) -> int:
        """What an unprivileged writer may still use on the root's filesystem."""
        try:
            stat = os.statvfs(self.root)
        except OSError as exc:
            raise storage_error(exc, "reading the free space") from exc
        return stat.f_bavail * stat.f_frsize

    def check(self) -> None:
        for path in (self.staging_dir, self.blobs_dir):
            if not os.access(path, os.W_OK | os.X_OK):
                raise StorageUnavailable(f"{path} is not writable")

    def close(self) -> None:
        pass


def _read(path: str, what: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise BlobMissing(f"{what} is missing") from None
    except OSError as exc:
        raise storage_error(exc, f"opening {what}") from exc


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _scandir(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except FileNotFoundError:
        return []


def _age(entry: os.DirEntry[str]) -> float:
    try:
        return max(0.0, time.time() - entry.stat(follow_symlinks=False).st_mtime)
    except FileNotFoundError:
        return 0.0
