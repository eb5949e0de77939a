"""Fault injection as plugins: each class is an ordinary teledrop plugin that breaks one
step of the compensation chain (docs/plugins.md) or records what the chain did, so tests can
prove the undo on the real default plugins."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable, Generator
from typing import Any

from teledrop import hookimpl
from teledrop.core.drop import Drop
from teledrop.core.errors import MetadataUnavailable
from teledrop.core.interfaces import BlobWriter, Metadata
from teledrop_sqlite_meta import SqliteMetadata

#: ``(action, plugin name, whether the published blob was there at that moment)``
LogEntry = tuple[str, str, bool]


def blob_is_published(blob: BlobWriter) -> bool:
    """Whether a blob writer's published file exists (local_storage and memory writers)."""
    final_path = getattr(blob, "final_path", None)
    if final_path is not None:
        return os.path.exists(final_path)
    return bool(getattr(blob, "published", False))


class Named:
    """Gives each instance its own plugin name, so several can be registered at once."""

    prefix = "fault"

    def __init__(self, name: str | None = None) -> None:
        self.teledrop_plugin_name = name or f"{self.prefix}-{uuid.uuid4().hex[:8]}"


class RaiseInCommit(Named):
    """A commit wrapper that raises ``error`` before the inner chain runs, or after it
    returned (the record already inserted), while ``armed``."""

    prefix = "raise-in-commit"

    def __init__(self, error: BaseException, when: str = "before",
                 name: str | None = None) -> None:
        super().__init__(name)
        assert when in ("before", "after")
        self.error, self.when = error, when
        #: set to False to let commits through
        self.armed = True

    @hookimpl(specname="teledrop_commit_drop", wrapper=True)
    def commit(self) -> Generator[None, Any, Any]:
        if not self.armed:
            return (yield)
        if self.when == "before":
            raise self.error
        yield
        raise self.error


class SideEffect(Named):
    """A plugin with a side effect (a mirror, a scanner): does its work before the inner
    chain and undoes it in ``except BaseException`` when that fails. Every step goes to
    the shared ``log`` with whether the published blob existed at that moment."""

    prefix = "side-effect"

    def __init__(self, log: list[LogEntry], name: str | None = None) -> None:
        super().__init__(name)
        self.log = log

    def _around(self, blob: BlobWriter) -> Generator[None, Any, Any]:
        self.log.append(("do", self.teledrop_plugin_name, blob_is_published(blob)))
        try:
            return (yield)
        except BaseException:
            self.log.append(("undo", self.teledrop_plugin_name, blob_is_published(blob)))
            raise

    @hookimpl(specname="teledrop_commit_drop", wrapper=True)
    def commit(self, blob: BlobWriter) -> Generator[None, Any, Any]:
        return (yield from self._around(blob))


class TryfirstSideEffect(SideEffect):
    """The same, asking to be the outermost wrapper (teledrop's publish must stay outside)."""

    @hookimpl(specname="teledrop_commit_drop", wrapper=True, tryfirst=True)
    def commit(self, blob: BlobWriter) -> Generator[None, Any, Any]:
        return (yield from self._around(blob))


class UndoRaises(SideEffect):
    """A side effect whose undo fails: it logs the undo, then raises ``RuntimeError``."""

    prefix = "undo-raises"

    @hookimpl(specname="teledrop_commit_drop", wrapper=True)
    def commit(self, blob: BlobWriter) -> Generator[None, Any, Any]:
        try:
            return (yield from self._around(blob))
        except BaseException:
            raise RuntimeError(f"{self.teledrop_plugin_name}: undo failed") from None


class BrokenDiscard(Named):
    """Makes the blob's discard fail once, after it has done its work, so teledrop's undo
    helper meets an error while undoing (later calls, such as the final close, behave)."""

    prefix = "broken-discard"

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        self.discards = 0

    @hookimpl(specname="teledrop_commit_drop", wrapper=True)
    def commit(self, blob: BlobWriter) -> Generator[None, Any, Any]:
        real_discard = blob.discard

        def discard() -> None:
            self.discards += 1
            real_discard()
            if self.discards == 1:
                raise OSError("discard failed")

        blob.discard = discard  # type: ignore[method-assign]
        return (yield)


class SlugThief(Named):
    """Takes the drop's slug in the metadata store just before the record is inserted, as
    a concurrent upload would between the slug check and the insert. Set ``metadata``
    once the app is built; steals ``times`` times."""

    prefix = "slug-thief"

    def __init__(self, times: int = 1, name: str | None = None) -> None:
        super().__init__(name)
        self.times = times
        self.metadata: Metadata | None = None
        self.stolen: list[str] = []

    @hookimpl(specname="teledrop_commit_drop", wrapper=True, trylast=True)
    def commit(self, drop: Drop) -> Generator[None, Any, Any]:
        if self.times and self.metadata is not None:
            self.times -= 1
            self.metadata.insert(dataclasses.replace(drop, blob_id=uuid.uuid4().hex,
                                                     delete_token=None))
            self.stolen.append(drop.slug)
        return (yield)


class SlugSequence(Named):
    """``teledrop_generate_slug`` answering with ``slugs`` first (then the default's)."""

    prefix = "slug-sequence"

    def __init__(self, slugs: list[str], forever: bool = False, name: str | None = None) -> None:
        super().__init__(name)
        self.slugs, self.forever = list(slugs), forever
        self.calls = 0

    @hookimpl
    def teledrop_generate_slug(self) -> str | None:
        self.calls += 1
        if self.forever:
            return self.slugs[0]
        return self.slugs.pop(0) if self.slugs else None


class FailingInsertMetadata(SqliteMetadata):
    """sqlite_meta whose inserts fail as a full or broken database would."""

    def insert(self, drop: Drop) -> None:
        raise MetadataUnavailable("metadata store error: disk I/O error")


class FailingInsert(Named):
    """Offers the metadata backend ``failing_sqlite`` (a real SQLite file at ``path``)."""

    prefix = "failing-insert"

    def __init__(self, path: str, name: str | None = None) -> None:
        super().__init__(name)
        self.path = path

    @hookimpl
    def teledrop_metadata_backends(self) -> dict[str, Callable[..., Metadata]]:
        return {"failing_sqlite": lambda settings, config: FailingInsertMetadata(self.path)}


class CreatedLog(Named):
    """Records each ``teledrop_drop_created`` event with ``probe(drop)``."""

    prefix = "created-log"

    def __init__(self, probe: Callable[[Drop], Any] = lambda drop: drop.slug,
                 name: str | None = None) -> None:
        super().__init__(name)
        self.probe = probe
        self.seen: list[Any] = []

    @hookimpl
    def teledrop_drop_created(self, drop: Drop) -> None:
        self.seen.append(self.probe(drop))


class RaisingEvents(Named):
    """Fails in every event hook."""

    prefix = "raising-events"

    @hookimpl
    def teledrop_drop_created(self, drop: Drop) -> None:
        raise RuntimeError(f"{self.teledrop_plugin_name}: event failed for {drop.slug}")

    @hookimpl
    def teledrop_drop_deleted(self, drop: Drop) -> None:
        raise RuntimeError(f"{self.teledrop_plugin_name}: event failed for {drop.slug}")
