"""The contracts storage and metadata backends implement (see ``teledrop.testing``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, Protocol, runtime_checkable

from .drop import Drop


@runtime_checkable
class BlobWriter(Protocol):
    """A staged blob being written. Unpublished, it is invisible to readers.

    ``close()`` without ``publish()`` means discard, so a writer that escapes its owner
    (a parser error, a vanished client) cleans up after itself.
    """

    blob_id: str

    def write(self, data: bytes | memoryview) -> int:
        """Append ``data``. :raises StorageFull: when out of space;
        :raises StorageUnavailable: on any other I/O error."""

    def publish(self) -> None:
        """Make the blob durable and readable under ``blob_id`` (fsync, rename, fsync dir)."""

    def discard(self) -> None:
        """Remove whatever this writer made, published or not. Idempotent; never raises."""

    def close(self) -> None:
        """Release resources; discards when not published."""


@dataclass(frozen=True)
class StoredItem:
    """A published blob or a piece of staging debris, with its age in seconds."""

    name: str
    age: float
    #: the blob a piece of staging is for, where the storage can tell: gc leaves the
    #: staging of a blob a record names (a direct upload's multipart upload) alone.
    blob_id: str | None = None


@runtime_checkable
class Storage(Protocol):
    def stage(self, size_hint: int | None = None) -> BlobWriter:
        """A new writer in the staging area, under a fresh generated ``blob_id``.

        ``size_hint``, when the caller knows it, is about the most bytes it will write (a
        request's Content-Length): a storage may size its buffers or parts from it. It is
        never a limit, and a storage may ignore it."""

    def open(self, blob_id: str) -> BinaryIO:
        """The published blob for reading (a real file where there is one, for sendfile).
        :raises BlobMissing: when it does not exist."""

    def delete(self, blob_id: str) -> None:
        """Remove a published blob. Idempotent."""

    def list_blobs(self) -> Iterable[StoredItem]:
        """Every published blob."""

    def list_staging(self) -> Iterable[StoredItem]:
        """Every staged, unpublished piece (live uploads included: gc judges by age)."""

    def remove_staging(self, name: str) -> None:
        """Remove one piece of staging debris. Idempotent."""

    def free_space(self) -> int | None:
        """Bytes still free for new blobs, or ``None`` where the backend cannot know (an
        object store): then ``limits.min_free_space`` is not checked."""

    def check(self) -> None:
        """:raises StorageUnavailable: when the storage cannot be written."""

    def close(self) -> None:
        """Release resources."""


@runtime_checkable
class PresignedDownloads(Protocol):
    """An optional capability of a storage: handing a download to the client as a URL the
    storage serves the blob from itself (an S3 presigned GET), instead of streaming it
    through teledrop."""

    def presign_download(self, blob_id: str, content_type: str,
                         content_disposition: str) -> str | None:
        """A URL that serves the blob, for a limited time, with exactly these
        ``Content-Type`` and ``Content-Disposition`` headers; ``None`` when this storage
        serves downloads through teledrop."""


@runtime_checkable
class RangeOpener(Protocol):
    """An optional capability of a blob that :meth:`Storage.open` returns: opening the
    stream of one range up front (an object store's GetObject). A host calls it before it
    commits to a status, so a blob that cannot be read answers an error, not a response
    cut after its headers, and the store streams no more than the range served."""

    def open_range(self, start: int, stop: int) -> None:
        """Position at ``start`` and open bytes ``[start, stop)`` now; reads end at
        ``stop``. Raises the storage's error if they cannot be read."""


@runtime_checkable
class ResumableWriter(Protocol):
    """A staged blob that outlives the request writing it: ``close()`` keeps what was
    staged (it is reopened by :meth:`ResumableStaging.resume`); ``discard()`` removes it;
    ``publish()`` makes it a blob, as a :class:`BlobWriter`'s."""

    blob_id: str
    #: bytes staged so far, the bytes of earlier requests included.
    offset: int

    def write(self, data: bytes | memoryview) -> int:
        """Append ``data``. :raises StorageFull: / :raises StorageUnavailable: as a
        :class:`BlobWriter`'s, and what was written before the failure stays counted in
        ``offset``."""

    def sync(self, final: bool = False) -> str:
        """Make the first ``offset`` bytes durable and return the storage's resume state
        to record with them (opaque to teledrop). ``final``: no byte will follow, only
        ``publish()`` (a storage may put the last bytes where the blob needs them rather
        than where a later request would continue them)."""

    def publish(self) -> None:
        """As :meth:`BlobWriter.publish`; again once published, nothing (a blob published
        to be hashed is published again by the commit chain)."""

    def discard(self) -> None:
        """Remove the staged bytes (or the blob, once published). Idempotent; never raises."""

    def close(self) -> None:
        """Release resources; the staged bytes stay."""


@runtime_checkable
class ResumableStaging(Protocol):
    """An optional capability of a storage: staging a blob across many requests, perhaps
    on different hosts. Its staged pieces are not part of ``list_staging``: they live
    until the upload they belong to expires, however old."""

    def stage_resumable(self, size_hint: int | None = None) -> ResumableWriter:
        """A new, empty resumable blob under a fresh ``blob_id``."""

    def resume(self, blob_id: str, state: str, offset: int) -> ResumableWriter:
        """Reopen a resumable blob to append at ``offset``, the count recorded with
        ``state``; anything staged past it (never recorded) is dropped.
        :raises BlobMissing: when its staged bytes are gone or shorter than ``offset``."""

    def read_staged(self, blob_id: str, state: str, offset: int) -> BinaryIO | None:
        """The first ``offset`` staged bytes, for reading (to rebuild a hash); ``None``
        when they cannot be read back before the blob is published (an object store's
        multipart parts): the hash is then taken from the published blob."""

    def remove_resumable(self, blob_id: str, state: str) -> None:
        """Remove everything staged for the blob. Idempotent."""

    def list_resumable(self) -> Iterable[StoredItem]:
        """Every resumable blob staged here (named by its blob id), with the age of its
        last write: gc removes those no upload record names (a process killed between
        staging one and recording its upload)."""


@dataclass(frozen=True)
class StoredPart:
    """One part of a direct upload, as the storage itself lists it."""

    number: int
    size: int
    etag: str


@dataclass(frozen=True)
class DirectStart:
    """A direct upload just begun in the storage: what to record, what to hand out."""

    blob_id: str
    #: the storage's state of the upload (opaque to teledrop), given back on every call.
    state: str
    #: every part's size but the last one's, which holds the rest.
    part_size: int
    #: a presigned ``PUT`` URL per part, part 1 first.
    urls: list[str]


@runtime_checkable
class DirectUploads(Protocol):
    """An optional capability of a storage: clients send a file's bytes straight to it,
    in parts, through URLs it presigns, and teledrop only checks and commits the result
    (see :mod:`teledrop.core.direct`). A completed upload is a blob like any other: read
    with :meth:`Storage.open` (to hash it), removed with :meth:`Storage.delete`.

    The upload lives in the storage's staging area until completed; ``list_staging``
    names its blob in :attr:`StoredItem.blob_id`, so gc leaves a recorded one alone."""

    def start_direct(self, size: int, expires_in: int) -> DirectStart:
        """Begin an upload of exactly ``size`` bytes on a fresh blob's final key, in as
        many parts as it takes (the part size grown so that it fits the storage's part
        limit), each with a URL valid for at most ``expires_in`` seconds.

        :raises TooLarge: when ``size`` does not fit in one object."""

    def list_direct_parts(self, blob_id: str, state: str) -> list[StoredPart]:
        """The parts the storage holds, by number. A part sent again replaces the one
        before, but some servers (SeaweedFS) list both: a number may come more than once.

        :raises BlobMissing: when the upload is gone (aborted, or completed already)."""

    def complete_direct(self, blob_id: str, state: str, parts: list[StoredPart]) -> None:
        """Make ``parts`` the blob ``blob_id``, published.

        :raises DirectUploadInvalid: when the storage refuses the parts."""

    def abort_direct(self, blob_id: str, state: str) -> None:
        """Drop the upload and every part sent to it (a completed blob stays: remove it
        with :meth:`Storage.delete`). Idempotent."""


SORT_KEYS = ("created_at", "size", "filename", "title")


@dataclass(frozen=True)
class DropQuery:
    """One page of an owner's drops. ``None`` filters match everything."""

    owner: str
    at: int
    page: int = 1
    page_size: int = 20
    sort: Literal["created_at", "size", "filename", "title"] = "created_at"
    order: Literal["asc", "desc"] = "desc"
    private: bool | None = None
    has_password: bool | None = None
    expired: bool | None = None
    #: case-insensitive substring of the filename or title.
    search: str | None = None


@dataclass(frozen=True)
class TokenRecord:
    """An upload token of the token store: only its hash is kept."""

    name: str
    token_hash: str
    created_at: int


#: The kinds of :class:`UploadState`.
TUS, DIRECT = "tus", "direct"


@dataclass
class UploadState:
    """A resumable upload between its requests (see :mod:`teledrop.core.resumable`)."""

    #: ≥ 128 random bits: its URL is the capability to continue it.
    id: str
    blob_id: str
    #: the file's size; ``None`` until a deferred length is given.
    length: int | None
    #: bytes received and durably staged.
    offset: int
    #: the client's ``Upload-Metadata``, echoed as it came.
    metadata: str
    filename: str
    content_type: str
    #: the upload options as given (JSON), replayed at completion.
    options: str
    owner: str | None
    created_at: int
    expires_at: int
    #: the storage's resume state (see :meth:`ResumableWriter.sync`).
    storage_state: str = ""
    #: who continues it now (one request's random id) and until when.
    lease_holder: str | None = None
    lease_until: int = 0
    #: the drop it became, once complete.
    slug: str | None = None
    #: :data:`TUS` (bytes through teledrop, see :mod:`teledrop.core.resumable`) or
    #: :data:`DIRECT` (bytes straight to the storage, see :mod:`teledrop.core.direct`).
    kind: str = TUS


#: What ``Metadata.update_upload`` may change.
UPLOAD_UPDATABLE = frozenset({"length", "offset", "storage_state", "lease_holder",
                              "lease_until", "slug"})


@runtime_checkable
class Metadata(Protocol):
    def insert(self, drop: Drop) -> None:
        """Record a new drop. :raises SlugTaken: when the slug exists (UNIQUE decides)."""

    def get(self, slug: str) -> Drop | None:
        """The drop, expired or not, or ``None``."""

    def claim_download(self, slug: str, at: int) -> Drop | None:
        """Count one download atomically, refusing past ``max_downloads`` or expiry.

        :returns: the drop after counting, or ``None`` when nothing was counted.
        """

    def delete(self, slug: str, blob_id: str | None = None) -> Drop | None:
        """Remove the record; with ``blob_id``, only if it is still the drop of that blob
        (one atomic statement), so a slug freed and taken again by another drop since the
        caller read it is left alone.

        :returns: the removed drop, or ``None`` if there was none (or another drop has
            the slug now)."""

    def delete_if_gone(self, slug: str, at: int) -> Drop | None:
        """Remove the record only if it is still expired or exhausted at ``at``."""

    def list_gone(self, at: int) -> list[Drop]:
        """Drops expired or out of downloads at ``at``."""

    def iter_drops(self) -> Iterable[Drop]:
        """Every drop."""

    def blob_ids(self) -> set[str]:
        """The blob id of every record: every drop's, and every resumable upload's."""

    def count(self) -> int:
        """How many records there are (gone ones included until gc removes them)."""

    def total_size(self) -> int:
        """The sum of ``size`` over every record (gone ones included until gc removes
        them); 0 for an empty store."""

    def update(self, slug: str, changes: Mapping[str, Any],
               blob_id: str | None = None) -> Drop | None:
        """Change some of a drop's fields (title, description, expires_at, max_downloads,
        private, password_hash) in one atomic statement; with ``blob_id``, only if the
        slug still names the drop of that blob (as ``delete``).

        :returns: the drop after the change, ``None`` if absent (or another drop's now)."""

    def list_owned(self, query: DropQuery) -> tuple[int, list[Drop]]:
        """One page of ``query.owner``'s drops: ``(total matching, the page)``."""

    def note_password_failure(self, slug: str, at: int, window: int) -> int:
        """Count a wrong password for ``slug``. :returns: failures within the current
        ``window`` seconds, this one included (atomically, across processes)."""

    def forgive_password_failure(self, slug: str) -> None:
        """Take back one counted attempt (it was the right password)."""
        ...

    def password_failures(self, slug: str, at: int, window: int) -> int:
        """Wrong passwords for ``slug`` within the current window."""

    def add_token(self, token: TokenRecord) -> None:
        """Store an upload token. :raises TokenExists: when the name is taken."""

    def list_tokens(self) -> list[TokenRecord]:
        """Every stored token, oldest first."""

    def revoke_token(self, name: str) -> bool:
        """Remove a token. :returns: whether there was one."""

    def token_owner(self, token_hash: str) -> str | None:
        """The name of the token with this hash, or ``None``."""

    def insert_upload(self, upload: UploadState) -> None:
        """Record a new resumable upload."""

    def get_upload(self, upload_id: str) -> UploadState | None:
        """The upload, expired or not, or ``None``."""

    def lease_upload(self, upload_id: str, holder: str, at: int,
                     until: int) -> UploadState | None:
        """Take the upload for ``holder`` until ``until``, in one atomic statement: only
        if it is unexpired at ``at``, not complete, and nobody else's lease runs.

        :returns: the upload, leased; ``None`` when it was not taken."""

    def update_upload(self, upload_id: str, holder: str,
                      changes: Mapping[str, Any]) -> UploadState | None:
        """Change some fields (:data:`UPLOAD_UPDATABLE`) of an upload ``holder`` leases, in
        one atomic statement. :returns: the upload after the change; ``None`` when
        ``holder`` no longer holds it."""

    def delete_upload(self, upload_id: str) -> UploadState | None:
        """Remove the record. :returns: the removed upload, or ``None``."""

    def list_expired_uploads(self, at: int) -> list[UploadState]:
        """Uploads expired at ``at``."""

    def check(self) -> None:
        """:raises MetadataUnavailable: when the store cannot be queried."""

    def close(self) -> None:
        """Release this thread's/process's connections."""
