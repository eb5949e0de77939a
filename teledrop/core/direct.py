"""Direct uploads: a file's bytes go from the client straight to the storage, in parts,
through URLs the storage presigns; teledrop only checks and commits what arrived.

:func:`create_direct_upload` takes every decision an ordinary upload takes before its
body (auth, size and space limits, slug, options, password) through
:class:`~.upload.Upload` itself, and only then starts the storage's upload and signs its
part URLs. The upload is recorded among the resumable uploads of the metadata backend
(kind :data:`~.interfaces.DIRECT`) and expires after ``limits.resumable_expires``.

:func:`complete_direct_upload` never trusts the client: it leases the record (one
conditional UPDATE, so of two completions on any hosts one goes on and the other is
refused), lists the parts the storage holds, requires the client's list to be exactly that
listing, checks count, sizes and total against the declared size and the limits, completes
the object, reads it once to hash it and commits the drop through ``teledrop_commit_drop``,
whose undo deletes the object. A refused completion aborts the upload and removes its
record: nothing of it stays in the storage.

:func:`abort_direct_upload` is the client's way out; :func:`collect_expired_direct` is
gc's. Each function takes plain objects and returns plain results, for any host.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .drop import Drop, iso, now
from .errors import BadRequest, BlobMissing, ContentRefused, DirectUploadBusy, \
    DirectUploadCompleted, DirectUploadInvalid, DirectUploadsUnavailable, InvalidOption, \
    NotFound, SlugTaken, StorageFull, StorageUnavailable, TooLarge, UnsupportedMediaType
from .inspection import new_digest
from .interfaces import DIRECT, DirectUploads, Storage, StoredPart, UploadState
from .resumable import ID_BYTES, lease_seconds, recorded_request, restore
from .service import Teledrop
from .space import Room
from .upload import OPTION_NAMES, IngestWriter, Upload, UploadRequest, check_size, \
    clean_filename, pick_content_type
from .units import format_size

log = logging.getLogger(__name__)

#: What the JSON body of a new direct upload may hold.
BODY_KEYS = ("filename", "size", "content_type", *OPTION_NAMES)
#: Bytes per read when a completed object is hashed.
HASH_READ = 1024 * 1024
#: Errors that refuse a completion for good (the upload is aborted); any other one (an
#: unreachable store) leaves the upload to be completed again.
REFUSALS = (BadRequest, TooLarge, SlugTaken, StorageFull, BlobMissing, ContentRefused,
            UnsupportedMediaType)
PARTS_SHAPE = 'send {"parts": [{"number": 1, "etag": "..."}, ...]}, each part as its PUT answered'


@dataclass(frozen=True)
class PartURL:
    number: int
    url: str


@dataclass(frozen=True)
class DirectUpload:
    """A direct upload just created: where the client sends each part, until when."""

    id: str
    part_size: int
    parts: list[PartURL]
    expires_at: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "part_size": self.part_size,
                "parts": [{"number": part.number, "url": part.url} for part in self.parts],
                "expires_at": iso(self.expires_at)}


def direct_uploads_of(service: Teledrop) -> DirectUploads:
    """The storage, if it takes direct uploads. :raises DirectUploadsUnavailable: (501)
    when it does not: clients then upload through teledrop."""
    storage = service.storage
    if not isinstance(storage, DirectUploads):
        raise DirectUploadsUnavailable()
    return storage


def create_direct_upload(service: Teledrop, request: UploadRequest,
                         body: Any) -> DirectUpload:
    """A new direct upload of the file ``body`` describes: a JSON object with ``size``
    (bytes, required), ``filename``, ``content_type`` and any upload option (``slug``,
    ``expires``, ``max_downloads``, ``title``, ``description``, ``private``,
    ``password``). ``request`` carries the headers (token, ``X-Drop-Password``) and the
    query string (options, as for any upload).

    Everything that would refuse an ordinary upload refuses this one here, before the
    storage starts anything or signs a URL.

    :raises DirectUploadsUnavailable: (501) on a storage without the capability;
    :raises BadRequest: / :raises InvalidOption: for a malformed body or option;
    :raises Unauthorized: / :raises TooLarge: / :raises StorageFull: / :raises SlugTaken:
        as for any upload.
    """
    storage = direct_uploads_of(service)
    if not isinstance(body, Mapping):
        raise BadRequest('send a JSON object: {"filename": ..., "size": ..., '
                         '"content_type": ..., and any upload option}')
    unknown = sorted(set(body) - set(BODY_KEYS))
    if unknown:
        raise InvalidOption(f"unknown field {unknown[0]!r} (known: {', '.join(BODY_KEYS)})")
    size = declared_size(body.get("size"))
    request.declared_size = size
    upload = Upload(service, request)
    upload.begin()
    for name in OPTION_NAMES:
        text = option_text(name, body.get(name))
        if text is not None:
            upload.set_field(name, text)
    filename = clean_filename(text_field(body, "filename"))
    content_type = pick_content_type(text_field(body, "content_type"), filename)
    limits = service.config.limits
    created = now()
    expires_at = created + limits.resumable_expires
    # a URL never outlives its upload
    start = storage.start_direct(size, max(1, int(expires_at - time.time())))
    state = UploadState(
        id=secrets.token_hex(ID_BYTES), blob_id=start.blob_id, length=size, offset=0,
        metadata="", filename=filename, content_type=content_type,
        options=json.dumps({"given": upload.given(),
                            "password_hash": upload.options.password_hash,
                            "part_size": start.part_size}),
        owner=upload.request.owner, created_at=created, expires_at=expires_at,
        storage_state=start.state, kind=DIRECT)
    try:
        service.metadata.insert_upload(state)
    except BaseException:
        quietly(lambda: storage.abort_direct(start.blob_id, start.state),
                f"abort the unrecorded direct upload of blob {start.blob_id}")
        raise
    return DirectUpload(state.id, start.part_size,
                        [PartURL(number, url) for number, url in enumerate(start.urls, 1)],
                        expires_at)


def complete_direct_upload(service: Teledrop, upload_id: str, body: Any) -> Drop:
    """Turn the direct upload into a drop. ``body`` is the client's
    ``{"parts": [{"number", "etag"}, ...]}``, each part as its ``PUT`` answered.

    :returns: the drop, with its delete token.
    :raises NotFound: (404) unknown id; :raises DirectUploadCompleted: (409) completed
        already; :raises DirectUploadBusy: (409) another request is completing it;
    :raises DirectUploadInvalid: (400) expired, or the parts are not the declared file
        (the client's list differs from the storage's, a part is missing or of the wrong
        size); :raises TooLarge: (413) the parts hold more than ``limits.max_upload_size``;
        and whatever refuses an ordinary commit (409 slug taken, a plugin's error). Each of
        these but the first three aborts the upload: nothing of it stays.
    """
    storage = direct_uploads_of(service)
    state, holder = take(service, storage, upload_id)
    return Completion(service, storage, state, holder).run(body)


def abort_direct_upload(service: Teledrop, upload_id: str) -> None:
    """Abort the upload and remove every part sent to it (a completed one's drop stays;
    its record goes).

    :raises NotFound: unknown id; :raises DirectUploadBusy: while a request completes it.
    """
    storage = direct_uploads_of(service)
    state = find(service, upload_id)
    if state.slug is None:
        at = now()
        holder = secrets.token_hex(16)
        leased = service.metadata.lease_upload(upload_id, holder, at,
                                               at + lease_seconds(service))
        if leased is None:
            state = find(service, upload_id)
            if state.slug is None and state.lease_holder is not None and state.lease_until > at:
                raise DirectUploadBusy()
            # else expired (nobody can complete it any more), or completed meanwhile
        else:
            state = leased
        if state.slug is None:
            try:
                storage.abort_direct(state.blob_id, state.storage_state)
            except BaseException:
                if leased is not None:
                    release(service, state, holder, {})
                raise
    service.metadata.delete_upload(upload_id)


def collect_expired_direct(service: Teledrop, at: int,
                           dry_run: bool = False) -> Iterable[UploadState]:
    """Abort the expired direct uploads (none that a request is completing right now) and
    remove their records, yielding each. An object completed by a host that died before
    committing it has no record left then: gc removes it as a record-less blob."""
    storage = service.storage
    for state in service.metadata.list_expired_uploads(at):
        if state.kind != DIRECT or (state.slug is None and state.lease_until > at):
            continue
        if not dry_run:
            if state.slug is None and isinstance(storage, DirectUploads):
                storage.abort_direct(state.blob_id, state.storage_state)
            service.metadata.delete_upload(state.id)
        yield state


# -- reading the client's JSON ------------------------------------------------------------

def declared_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest("size must be the file's size in bytes (a non-negative integer)")
    return value


def option_text(name: str, value: Any) -> str | None:
    """An option from JSON as an upload takes it from a form: ``null`` is absent, numbers
    and booleans are their text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return str(value)
    raise InvalidOption(f"{name} must be a string, a number or a boolean")


def text_field(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    return value


def claimed_parts(body: Any) -> list[tuple[int, str]]:
    """The client's ``[(number, etag)]``. :raises DirectUploadInvalid: when malformed."""
    parts = body.get("parts") if isinstance(body, Mapping) else None
    if not isinstance(parts, list):
        raise DirectUploadInvalid(PARTS_SHAPE)
    claimed = []
    for part in parts:
        number = part.get("number") if isinstance(part, Mapping) else None
        etag = part.get("etag") if isinstance(part, Mapping) else None
        if isinstance(number, bool) or not isinstance(number, int) \
                or not isinstance(etag, str):
            raise DirectUploadInvalid(PARTS_SHAPE)
        claimed.append((number, bare_etag(etag)))
    return claimed


def bare_etag(etag: str) -> str:
    """An ETag without its quotes (some clients strip them, every store adds them)."""
    return etag.strip().strip('"')


# -- the checks ---------------------------------------------------------------------------

def part_count(size: int, part_size: int) -> int:
    """How many parts a file of ``size`` bytes takes (an empty file: one empty part)."""
    return max(1, -(-size // part_size))


def check_parts(listed: list[StoredPart], claimed: list[tuple[int, str]], size: int,
                part_size: int, limit: int) -> list[StoredPart]:
    """That the client's list is the parts the storage holds, and they are the declared
    file. A part number the storage lists more than once (sent again) is the one the
    client names, if it is one of them.

    :returns: the parts, one per number, in order.
    :raises TooLarge: past ``limit``; :raises DirectUploadInvalid: for any other mismatch."""
    held: dict[int, dict[str, StoredPart]] = {}
    for part in listed:
        held.setdefault(part.number, {})[bare_etag(part.etag)] = part
    problem = mismatch(claimed, held)
    if problem:
        raise DirectUploadInvalid(f"the parts listed are not the parts the storage holds "
                                  f"({problem})")
    parts = [held[number][etag] for number, etag in claimed]
    check_size(sum(part.size for part in parts), limit)
    count = part_count(size, part_size)
    if [part.number for part in parts] != list(range(1, count + 1)):
        raise DirectUploadInvalid(f"a file of {size} bytes is parts 1 to {count}; the "
                                  f"storage holds {describe_numbers(parts)}")
    for part in parts:
        expected = part_size if part.number < count else size - (count - 1) * part_size
        if part.size != expected:
            raise DirectUploadInvalid(f"part {part.number} has {part.size} bytes, not "
                                      f"{expected} ({format_size(part_size)} parts, the "
                                      "last one the rest)")
    return parts


def mismatch(claimed: list[tuple[int, str]], held: dict[int, dict[str, StoredPart]]) -> str:
    """What differs first between the client's list and the storage's; "" when nothing."""
    numbers = [number for number, _ in claimed]
    for number, etag in claimed:
        if number not in held:
            return f"part {number} is not in the storage"
        if etag not in held[number]:
            return f"part {number} has another ETag"
    for number in held:
        if number not in numbers:
            return f"part {number} is missing from the list"
    if numbers != sorted(set(numbers)):
        return "the parts are not listed once each, in order"
    return ""


def describe_numbers(listed: list[StoredPart]) -> str:
    if not listed:
        return "no part"
    return "parts " + ", ".join(str(part.number) for part in listed[:10]) \
        + (", ..." if len(listed) > 10 else "")


# -- completion ---------------------------------------------------------------------------

def find(service: Teledrop, upload_id: str) -> UploadState:
    """:raises NotFound: unknown id (or another kind of upload's)."""
    state = service.metadata.get_upload(upload_id)
    if state is None or state.kind != DIRECT:
        raise NotFound("no such direct upload")
    return state


def take(service: Teledrop, storage: DirectUploads, upload_id: str) -> tuple[UploadState, str]:
    """Lease the upload to complete it, in one atomic statement (any host, any process).
    An expired one is aborted and refused."""
    state = find(service, upload_id)
    if state.slug is not None:
        raise DirectUploadCompleted(f"this direct upload is complete already: drop {state.slug}")
    holder = secrets.token_hex(16)
    at = now()
    leased = service.metadata.lease_upload(upload_id, holder, at, at + lease_seconds(service))
    if leased is not None:
        return leased, holder
    state = find(service, upload_id)
    if state.slug is not None:
        raise DirectUploadCompleted(f"this direct upload is complete already: drop {state.slug}")
    if state.lease_holder is not None and state.lease_until > at:
        raise DirectUploadBusy()
    remove(service, storage, state, delete_blob=False)
    raise DirectUploadInvalid(f"the direct upload expired at {iso(state.expires_at)}: "
                              "start a new one")


def release(service: Teledrop, state: UploadState, holder: str,
            changes: dict[str, Any]) -> UploadState | None:
    return service.metadata.update_upload(state.id, holder,
                                          {**changes, "lease_holder": None, "lease_until": 0})


def quietly(action: Callable[[], Any], what: str) -> None:
    """Undo work: a failure is logged, never raised over the error being handled."""
    try:
        action()
    except Exception:
        log.exception("could not %s", what)


def remove(service: Teledrop, storage: DirectUploads, state: UploadState,
           delete_blob: bool) -> None:
    """Abort the upload, delete its object (once completed by this request) and its record,
    each tried whatever happened to the one before."""
    quietly(lambda: storage.abort_direct(state.blob_id, state.storage_state),
            f"abort the direct upload of blob {state.blob_id}")
    if delete_blob:
        quietly(lambda: service.storage.delete(state.blob_id), f"delete blob {state.blob_id}")
    quietly(lambda: service.metadata.delete_upload(state.id),
            f"remove direct upload {state.id}")


class StoredBlob:
    """A blob the storage holds already (a completed direct upload), as the commit chain
    takes a blob: its publish has nothing left to do, and its undo deletes the object."""

    def __init__(self, storage: Storage, blob_id: str) -> None:
        self.storage = storage
        self.blob_id = blob_id

    def write(self, data: bytes | memoryview) -> int:
        raise StorageUnavailable("a direct upload's bytes are written by its client")

    def publish(self) -> None:
        pass

    def discard(self) -> None:
        quietly(lambda: self.storage.delete(self.blob_id), f"delete blob {self.blob_id}")

    def close(self) -> None:
        pass


class Completion:
    """One request completing a leased direct upload."""

    def __init__(self, service: Teledrop, storage: DirectUploads, state: UploadState,
                 holder: str) -> None:
        self.service = service
        self.storage = storage
        self.state = state
        self.holder = holder
        self.size = state.length or 0
        self.part_size = int(json.loads(state.options)["part_size"])
        self.renew_every = max(1, service.config.limits.idle_timeout // 3)

    def run(self, body: Any) -> Drop:
        try:
            upload, parts = self.prepare(body)
        except REFUSALS:
            remove(self.service, self.storage, self.state, delete_blob=False)
            raise
        except BaseException:  # the storage or the database is unreachable: try again later
            quietly(lambda: release(self.service, self.state, self.holder, {}),
                    f"release direct upload {self.state.id}")
            raise
        try:
            self.storage.complete_direct(self.state.blob_id, self.state.storage_state, parts)
            self.hash(upload)
            drop = upload.commit()
        except DirectUploadBusy:  # the lease was lost: the upload is another request's now
            raise
        except BaseException:
            remove(self.service, self.storage, self.state, delete_blob=True)
            raise
        finally:
            upload.close()
        quietly(lambda: release(self.service, self.state, self.holder, {"slug": drop.slug}),
                f"record the drop of direct upload {self.state.id}")
        return drop

    def prepare(self, body: Any) -> tuple[Upload, list[StoredPart]]:
        """Every check that needs no completed object, and the upload to commit (its
        options replayed: a custom slug taken since creation is refused here)."""
        claimed = claimed_parts(body)
        try:
            listed = self.storage.list_direct_parts(self.state.blob_id, self.state.storage_state)
        except BlobMissing:
            raise DirectUploadInvalid("the storage no longer holds this upload") from None
        limits = self.service.config.limits
        parts = check_parts(listed, claimed, self.size, self.part_size,
                            limits.max_upload_size)
        room = Room(self.service)
        room.reserve(self.size)
        # the plugins' inspectors see the object as it is hashed (teledrop_inspect_upload)
        digest = new_digest(self.service, recorded_request(self.state), self.state.filename,
                            self.state.content_type)
        ingest = IngestWriter(StoredBlob(self.service.storage, self.state.blob_id), digest,
                              limits.max_upload_size, room)
        try:
            return restore(self.service, self.state, ingest), parts
        except BaseException:
            digest.close()
            raise

    def hash(self, upload: Upload) -> None:
        """Read the completed object once, into the upload's hasher and inspectors and
        count."""
        ingest = upload.writer
        assert ingest is not None
        renew_at = time.monotonic() + self.renew_every
        with self.service.storage.open(self.state.blob_id) as f:
            while True:
                data = f.read(HASH_READ)
                if not data:
                    break
                ingest.digest.update(data)
                ingest.size += len(data)
                if ingest.size > self.size:
                    break
                if time.monotonic() >= renew_at:
                    renew_at = time.monotonic() + self.renew_every
                    self.renew()
        if ingest.size != self.size:
            raise DirectUploadInvalid(f"the stored object does not have the {self.size} "
                                      "bytes its parts had")

    def renew(self) -> None:
        until = now() + lease_seconds(self.service)
        if self.service.metadata.update_upload(self.state.id, self.holder,
                                               {"lease_until": until}) is None:
            raise DirectUploadBusy("the direct upload was taken over or removed meanwhile")
