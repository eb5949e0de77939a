"""What an upload's bytes pass through on their way to storage: its hasher, and the
inspectors plugins return from ``teledrop_inspect_upload`` (a virus scanner, a type
sniffer, a quota counter).

Every host feeds a file through a :class:`Digest`: the streamed uploads through
:class:`~.upload.IngestWriter`, resumable ones across their requests, and any host that
hashes bytes it did not stream itself (a completed direct upload, read once from the
storage) through :func:`new_digest` and :func:`feed_file`. When no plugin inspects, a
digest's ``update`` *is* the hasher's: a chunk costs no call more than hashing it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from .errors import BlobMissing
from .service import Teledrop

if TYPE_CHECKING:
    from .upload import UploadRequest

log = logging.getLogger(__name__)

#: Bytes per read when a digest is fed from a stored file.
FEED_READ = 256 * 1024


class Inspector(Protocol):
    """What ``teledrop_inspect_upload`` returns. Only ``update`` and ``finish`` are
    required; ``resumable`` and ``close`` are optional."""

    def update(self, chunk: memoryview) -> None:
        """The next bytes of the file, never none, valid only during the call (copy what
        you keep). Raise a teledrop error to refuse the upload."""

    def finish(self) -> None:
        """Every byte has been seen; the commit comes next. Raise to refuse."""


class Inspection:
    """The inspectors of one upload, fed the same bytes in the same order."""

    def __init__(self, inspectors: list[Any]) -> None:
        self.inspectors = inspectors
        #: bytes every inspector has seen, from the file's first.
        self.size = 0
        #: what an inspector raised, refusing the upload.
        self.refusal: Exception | None = None
        self._closed = False

    @property
    def resumable(self) -> bool:
        """Whether every inspector can go on with a later request of the same upload in
        this process (it declares ``resumable = True``)."""
        return all(getattr(inspector, "resumable", False) for inspector in self.inspectors)

    def update(self, data: bytes | memoryview) -> None:
        view = data if isinstance(data, memoryview) else memoryview(data)
        if not view.nbytes:
            return  # an inspector never gets an empty chunk (teledrop_inspect_upload)
        try:
            for inspector in self.inspectors:
                inspector.update(view)
        except Exception as exc:  # a shutdown (SystemExit) is no verdict on the file
            self.refusal = exc
            raise
        self.size += view.nbytes

    def finish(self) -> None:
        try:
            for inspector in self.inspectors:
                inspector.finish()
        except Exception as exc:
            self.refusal = exc
            raise

    def close(self) -> None:
        """The inspection is over, finished or not: each inspector's ``close()``, where it
        has one, releases what it holds (a connection). Never raises; runs once."""
        if self._closed:
            return
        self._closed = True
        for inspector in self.inspectors:
            close = getattr(inspector, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("closing an inspector failed")


class Digest:
    """An upload's hasher and its inspection. ``inspection`` is ``None`` where the
    inspectors have not seen every byte (a resumable upload continued by another process):
    the upload is inspected again from its staged bytes before its commit."""

    def __init__(self, hasher: Any, inspection: Inspection | None = None) -> None:
        self.hasher = hasher
        self.inspection = inspection
        #: feed the next chunk: the hasher's own ``update`` when nothing inspects.
        self.update: Callable[[bytes | memoryview], Any] = hasher.update
        if inspection is not None and inspection.inspectors:
            self.update = self._hash_and_inspect

    def _hash_and_inspect(self, data: bytes | memoryview) -> None:
        self.hasher.update(data)
        self.inspection.update(data)  # type: ignore[union-attr]

    @property
    def hash(self) -> str:
        """The drop's ``hash``: ``"<name>:<hexdigest>"``."""
        return f"{self.hasher.name}:{self.hasher.hexdigest()}"

    @property
    def refused(self) -> bool:
        """Whether an inspector refused the upload."""
        return self.inspection is not None and self.inspection.refusal is not None

    def finish(self) -> None:
        """Before the commit: every inspector's ``finish()``. :raises: what one raised."""
        if self.inspection is not None:
            self.inspection.finish()

    def close(self) -> None:
        if self.inspection is not None:
            self.inspection.close()


def inspect_upload(service: Teledrop, request: UploadRequest, filename: str,
                   content_type: str) -> Inspection:
    """Ask the plugins for this upload's inspectors (``teledrop_inspect_upload``)."""
    inspectors = service.hook("teledrop_inspect_upload", request=request, filename=filename,
                              content_type=content_type)
    return Inspection([inspector for inspector in inspectors or () if inspector is not None])


def new_digest(service: Teledrop, request: UploadRequest, filename: str,
               content_type: str) -> Digest:
    """The hasher and inspectors for one file's bytes, from its first: what a host that
    reads a whole file (a completed direct upload) feeds, then finishes before the commit.

    :raises: what an implementation of ``teledrop_inspect_upload`` raised (a refusal on
        the filename or type alone)."""
    hasher = service.hook("teledrop_hasher")
    return Digest(hasher, inspect_upload(service, request, filename, content_type))


def feed_file(update: Callable[[bytes], Any], f: BinaryIO, size: int, what: str) -> None:
    """Pass the first ``size`` bytes of ``f`` to ``update`` (a digest's or a hasher's).

    :raises BlobMissing: when ``f`` ends before them (``what`` names it)."""
    remaining = size
    while remaining:
        data = f.read(min(FEED_READ, remaining))
        if not data:
            raise BlobMissing(f"{what} is short: {size - remaining} of {size} bytes")
        update(data)
        remaining -= len(data)
