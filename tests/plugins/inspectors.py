"""Inspectors as plugins (``teledrop_inspect_upload``): one that records every call it
gets and refuses a pattern wherever it falls, chunk edges included; and a commit wrapper
that reads the published file through its ``content`` argument."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from teledrop import hookimpl
from teledrop.core.content import BlobContent
from teledrop.core.drop import Drop
from teledrop.core.errors import ContentRefused, TeledropError
from teledrop.core.service import Teledrop
from teledrop.core.upload import UploadRequest


@dataclass
class Seen:
    """One inspector's life: what it was opened for, every chunk, and how it ended."""

    filename: str
    content_type: str
    owner: str | None
    chunks: list[bytes] = field(default_factory=list)
    views: bool = True
    finished: int = 0
    closed: int = 0
    #: whether a record existed (the commit had begun) when ``finish()`` ran
    committed_at_finish: bool | None = None

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


class RecordingInspector:
    def __init__(self, plugin: Inspect, seen: Seen) -> None:
        self.plugin, self.seen = plugin, seen
        self.resumable = plugin.resumable
        self._tail = b""

    def update(self, chunk: memoryview) -> None:
        self.seen.views = self.seen.views and isinstance(chunk, memoryview)
        data = bytes(chunk)
        self.seen.chunks.append(data)
        pattern = self.plugin.refuse_pattern
        if pattern and pattern in self._tail + data:
            raise ContentRefused(f"found {pattern.decode()}")
        if pattern:
            self._tail = (self._tail + data)[-(len(pattern) - 1):] if len(pattern) > 1 else b""
        if self.plugin.fail_update is not None:
            raise self.plugin.fail_update

    def finish(self) -> None:
        self.seen.finished += 1
        self.seen.committed_at_finish = self.plugin.service is not None \
            and self.plugin.service.metadata.count() > 0
        if self.plugin.fail_finish is not None:
            raise self.plugin.fail_finish

    def close(self) -> None:
        self.seen.closed += 1


class Inspect:
    """Returns a :class:`RecordingInspector` for every upload, recorded in ``opened``."""

    teledrop_plugin_name = "inspect"

    def __init__(self, refuse_pattern: bytes = b"", resumable: bool = False,
                 fail_update: TeledropError | None = None,
                 fail_finish: TeledropError | None = None,
                 fail_open: TeledropError | None = None) -> None:
        self.refuse_pattern = refuse_pattern
        self.resumable = resumable
        self.fail_update, self.fail_finish, self.fail_open = fail_update, fail_finish, fail_open
        self.opened: list[Seen] = []
        #: set by the test to see whether a record exists at ``finish()``
        self.service: Teledrop | None = None

    @hookimpl(specname="teledrop_inspect_upload")
    def inspect(self, request: UploadRequest, filename: str,
                content_type: str) -> RecordingInspector:
        if self.fail_open is not None:
            raise self.fail_open
        seen = Seen(filename, content_type, request.owner)
        self.opened.append(seen)
        return RecordingInspector(self, seen)


class ReadInChain:
    """A commit wrapper that reads the published file before the insert, as a scanner
    or a mirror would: ``read`` holds what it read for each drop."""

    teledrop_plugin_name = "read-in-chain"

    def __init__(self) -> None:
        self.read: dict[str, bytes] = {}

    @hookimpl(specname="teledrop_commit_drop", wrapper=True)
    def commit(self, drop: Drop, content: BlobContent) -> Generator[None, Any, Any]:
        with content.open() as f:
            whole = f.read()
        assert b"".join(content.chunks(size=1000)) == whole
        self.read[drop.blob_id] = whole
        return (yield)
