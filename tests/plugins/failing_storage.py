"""A storage plugin that fails the way a disk does: local_storage underneath, with
``ENOSPC`` or ``EIO`` injected after a number of bytes, or a hard cap on the bytes its
root may hold (a size-capped disk, where a real small filesystem cannot be mounted).

Offers the storage backend ``failing_storage``::

    [storage]
    plugin = "failing_storage"

    [plugins.failing_storage]
    root = "data/files"           # local_storage's layout under it
    control = "/tmp/fault.json"   # read at each stage(): {"error": "ENOSPC", "after": 1048576}
    capacity = -1                 # bytes the root may hold; -1 = no cap

The control file is read when each upload is staged, so one running server can be
switched between faults (and back to none: a missing or empty file) by the test that
drives it. The bytes before the fault really reach the staging file, as they would on a
filling disk; the error is mapped by local_storage's own ``storage_error``, exactly as
a failed ``os.write`` would be. Each fault is reported on stderr as one line::

    failing_storage: ENOSPC after 1048576 bytes in <staging file name>

Load it in-process with ``make_app(plugins=[failing_storage])`` or, for a real gunicorn,
as an installed distribution (``tests.live_server.install_plugins``).
"""

from __future__ import annotations

import errno
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from teledrop import hookimpl
from teledrop.core.interfaces import StoredItem
from teledrop_local_storage import LocalBlobWriter, LocalStorage, storage_error

ERRORS = {"ENOSPC": errno.ENOSPC, "EIO": errno.EIO, "EDQUOT": errno.EDQUOT}
FAULT_LINE = "failing_storage: {error} after {written} bytes in {name}"


@dataclass(frozen=True)
class FailingStorageSettings:
    root: str = "data/files"
    control: str = ""
    capacity: int = -1

    def check(self) -> dict[str, str]:
        if self.capacity < -1:
            return {"capacity": "-1 (no cap) or a number of bytes"}
        return {}


@dataclass(frozen=True)
class Fault:
    """What the next staged upload suffers: ``error`` after ``after`` bytes."""

    error: str
    after: int

    @classmethod
    def read(cls, control: str) -> Fault | None:
        if not control:
            return None
        try:
            text = Path(control).read_text()
        except FileNotFoundError:
            return None
        if not text.strip():
            return None
        spec = json.loads(text)
        if spec["error"] not in ERRORS:
            raise ValueError(f"unknown error {spec['error']!r}")
        return cls(spec["error"], int(spec["after"]))

    def write(self, control: str | Path) -> None:
        Path(control).write_text(json.dumps({"error": self.error, "after": self.after}))


@dataclass
class FaultRecord:
    """A fault as it happened (kept in-process for test-client tests)."""

    error: str
    written: int
    staging_path: str
    #: the staging file's size on disk when the fault was raised
    size_on_disk: int


#: Every fault raised in this process, oldest first.
FAULTS: list[FaultRecord] = []


def used_bytes(root: str) -> int:
    total = 0
    for directory, _, names in os.walk(root):
        for name in names:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except FileNotFoundError:  # removed while walking: another upload's clean-up
                continue
    return total


class FailingBlobWriter:
    """A local_storage writer whose writes stop with ``OSError`` at the fault."""

    def __init__(self, inner: LocalBlobWriter, storage: FailingStorage,
                 fault: Fault | None) -> None:
        self.inner = inner
        self.storage = storage
        self.fault = fault
        self.written = 0

    @property
    def blob_id(self) -> str:
        return self.inner.blob_id

    @property
    def final_path(self) -> str:
        return self.inner.final_path

    @property
    def published(self) -> bool:
        return self.inner.published

    def _room(self) -> tuple[int, str] | None:
        """Bytes that may still be written before an error, and that error's name."""
        limits = []
        if self.fault is not None:
            limits.append((max(0, self.fault.after - self.written), self.fault.error))
        if self.storage.capacity >= 0:
            free = self.storage.capacity - used_bytes(self.storage.local.root)
            limits.append((max(0, free), "ENOSPC"))
        return min(limits) if limits else None

    def write(self, data: bytes | memoryview) -> int:
        room = self._room()
        if room is None or len(data) <= room[0]:
            n = self.inner.write(data)
            self.written += n
            return n
        allowed, name = room
        if allowed:
            self.written += self.inner.write(memoryview(data)[:allowed])
        self._report(name)
        code = ERRORS[name]
        raise storage_error(OSError(code, os.strerror(code)), "writing")

    def _report(self, name: str) -> None:
        path = self.inner.staging_path
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            size = -1
        FAULTS.append(FaultRecord(name, self.written, path, size))
        print(FAULT_LINE.format(error=name, written=self.written, name=os.path.basename(path)),
              file=sys.stderr, flush=True)

    def publish(self) -> None:
        self.inner.publish()

    def discard(self) -> None:
        self.inner.discard()

    def close(self) -> None:
        self.inner.close()


@dataclass
class FailingStorage:
    local: LocalStorage
    control: str = ""
    capacity: int = -1

    @classmethod
    def from_settings(cls, settings: FailingStorageSettings, config: Any) -> FailingStorage:
        return cls(LocalStorage(settings.root), settings.control, settings.capacity)

    def stage(self, size_hint: int | None = None) -> FailingBlobWriter:
        return FailingBlobWriter(self.local.stage(size_hint), self, Fault.read(self.control))

    def open(self, blob_id: str) -> BinaryIO:
        return self.local.open(blob_id)

    def delete(self, blob_id: str) -> None:
        self.local.delete(blob_id)

    def list_blobs(self) -> list[StoredItem]:
        return list(self.local.list_blobs())

    def list_staging(self) -> list[StoredItem]:
        return list(self.local.list_staging())

    def remove_staging(self, name: str) -> None:
        self.local.remove_staging(name)

    def free_space(self) -> int | None:
        return None  # the faults decide when it is full

    def check(self) -> None:
        self.local.check()

    def close(self) -> None:
        self.local.close()


@hookimpl
def teledrop_config_schema() -> dict[str, type]:
    return {"failing_storage": FailingStorageSettings}


@hookimpl
def teledrop_storage_backends() -> dict[str, Any]:
    return {"failing_storage": FailingStorage.from_settings}
