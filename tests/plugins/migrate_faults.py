"""Backends that fail on the Nth file or record, for the migration's fault tests: a
target that breaks part-way through a copy. Loaded as an installed distribution (an
entry point, as a third-party backend is), and chosen in the target's config::

    [storage]
    plugin = "nth_failing_storage"

    [plugins.nth_failing_storage]
    root = "data/files"   # local_storage's layout under it
    fail_at = 2           # the Nth blob staged by this process fails; 0 = none
    fault = "EIO"         # "EIO": the write fails as a broken disk's does;
                          # "interrupt": Ctrl-C arrives mid-write; "kill": SIGKILL does

    [metadata]
    plugin = "nth_failing_sqlite"

    [plugins.nth_failing_sqlite]
    path = "data/teledrop.db"
    fail_at = 2           # the Nth insert fails; 0 = none
    fault = "refuse"      # "refuse": nothing inserted; "lost": inserted, but the answer
                          # is an error; "unknown": the same, and reading it back fails too;
                          # "kill": SIGKILL before the insert (its file is published)

A storage fault happens once some of the file has reached its staging file, so that
there is something to clean up.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Any, ClassVar

from teledrop import hookimpl
from teledrop.core.drop import Drop
from teledrop.core.errors import MetadataUnavailable
from teledrop_local_storage import LocalStorage
from teledrop_sqlite_meta import SqliteMetadata
from tests.plugins.failing_storage import FailingBlobWriter, FailingStorage, Fault

#: Bytes of the failing file that are written before its fault.
WRITTEN_BEFORE_FAULT = 1000


@dataclass(frozen=True)
class NthFault:
    fail_at: int = 0
    fault: str = ""
    FAULTS: ClassVar[tuple[str, ...]] = ()

    def check(self) -> dict[str, str]:
        return {} if self.fault in self.FAULTS else {"fault": f"one of {self.FAULTS}"}


@dataclass(frozen=True)
class NthFailingStorageSettings(NthFault):
    root: str = "data/files"
    fault: str = "EIO"
    FAULTS = ("EIO", "interrupt", "kill")


@dataclass(frozen=True)
class NthFailingSqliteSettings(NthFault):
    path: str = "data/teledrop.db"
    fault: str = "refuse"
    FAULTS = ("refuse", "lost", "unknown", "kill")


class InterruptedWriter(FailingBlobWriter):
    """Where its fault would be an I/O error, Ctrl-C arrives instead."""

    def _report(self, name: str) -> None:
        super()._report(name)
        raise KeyboardInterrupt


class KilledWriter(FailingBlobWriter):
    """Where its fault would be an I/O error, the process is killed instead."""

    def _report(self, name: str) -> None:
        super()._report(name)
        os.kill(os.getpid(), signal.SIGKILL)


WRITERS = {"EIO": FailingBlobWriter, "interrupt": InterruptedWriter, "kill": KilledWriter}


@dataclass
class NthFailingStorage(FailingStorage):
    fail_at: int = 0
    fault: str = "EIO"
    staged: int = 0

    def stage(self, size_hint: int | None = None) -> FailingBlobWriter:
        self.staged += 1
        fault = Fault("EIO", WRITTEN_BEFORE_FAULT) if self.staged == self.fail_at else None
        return WRITERS[self.fault](self.local.stage(), self, fault)


class NthFailingSqlite(SqliteMetadata):
    def __init__(self, path: str, fail_at: int, fault: str) -> None:
        super().__init__(path)
        self.fail_at, self.fault = fail_at, fault
        self.inserts = 0
        self.blind = False

    def insert(self, drop: Drop) -> None:
        self.inserts += 1
        if self.inserts != self.fail_at:
            return super().insert(drop)
        if self.fault == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.fault != "refuse":
            super().insert(drop)
        self.blind = self.fault == "unknown"
        raise MetadataUnavailable("metadata store error: connection lost")

    def get(self, slug: str) -> Drop | None:
        if self.blind:
            self.blind = False
            raise MetadataUnavailable("metadata store error: connection lost")
        return super().get(slug)


@hookimpl
def teledrop_config_schema() -> dict[str, type]:
    return {"nth_failing_storage": NthFailingStorageSettings,
            "nth_failing_sqlite": NthFailingSqliteSettings}


@hookimpl
def teledrop_storage_backends() -> dict[str, Any]:
    return {"nth_failing_storage": lambda settings, config: NthFailingStorage(
        LocalStorage(settings.root), fail_at=settings.fail_at, fault=settings.fault)}


@hookimpl
def teledrop_metadata_backends() -> dict[str, Any]:
    return {"nth_failing_sqlite": lambda settings, config: NthFailingSqlite(
        settings.path, settings.fail_at, settings.fault)}
