"""Resumable uploads: one file sent over many requests, any of which may reach any host.

:func:`create_upload` takes every decision an ordinary upload takes before its body (auth,
size and space limits, slug, options, password) through :class:`~.upload.Upload` itself,
and records the upload's state in the metadata backend. :func:`append` continues it at its
recorded offset: it leases the upload (one conditional UPDATE, so a second request for it
on any host is refused), reopens the storage's staged blob there, and hashes, counts and
limits each byte like a streamed upload. Whatever ends a request, what reached the storage
is synced and recorded, so a dropped connection loses nothing it delivered. The request
that delivers the last byte commits the drop through ``teledrop_commit_drop``, exactly as a
streamed upload does.

A hash's running state cannot be saved, so each process keeps the hashers of the uploads
it last continued (:data:`HASHERS`); a request that finds none for its offset (another
host or worker took the last one) reads the staged bytes once to rebuild it. Inspectors
(``teledrop_inspect_upload``) start with the upload's first byte and go on with its later
requests only while those reach the same process and the inspectors declare that they can;
otherwise the completed upload is inspected again from its staged bytes, read once, before
its commit. An inspector's refusal removes the upload and everything staged for it. Where
the storage cannot read staged bytes back before publishing (an object store's multipart
parts), the hash and the inspection wait (:class:`LaterHash`): the request that completes
the upload publishes the blob, reads it once into both, then commits.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .drop import Drop, now
from .errors import InvalidOption, NotFound, NotImplementedByStorage, OffsetMismatch, \
    UploadIncomplete, UploadLocked
from .inspection import Digest, Inspection, feed_file, inspect_upload, new_digest
from .interfaces import TUS, ResumableStaging, ResumableWriter, UploadState
from .passwords import PASSWORD_HEADER
from .service import Teledrop
from .space import Room
from .upload import OPTION_NAMES, SECRET_OPTIONS, IngestWriter, Upload, UploadRequest, \
    check_size, clean_filename, pick_content_type

log = logging.getLogger(__name__)

#: Random bytes of an upload's id (its URL is the capability to continue it).
ID_BYTES = 20
#: Seconds a lease outlives the last sign of progress: a host that died mid-request frees
#: its uploads after this much longer than the idle timeout.
LEASE_MARGIN = 30
#: Hashers kept per process for uploads between their requests.
MAX_HASHERS = 256
FILENAME_KEY, FILETYPE_KEY = "filename", "filetype"


class Hashers:
    """The running digests (hasher, and resumable inspection) of this process's recent
    uploads, each at the offset it has hashed up to; the least recently used go first."""

    def __init__(self, size: int = MAX_HASHERS) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[int, Digest]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, upload_id: str, offset: int) -> Digest | None:
        """The digest of ``upload_id`` if it is at ``offset`` (it leaves the cache)."""
        with self._lock:
            item = self._items.pop(upload_id, None)
        if item is None:
            return None
        if item[0] != offset:
            item[1].close()
            return None
        return item[1]

    def keep(self, upload_id: str, offset: int, digest: Digest) -> None:
        dropped = []
        with self._lock:
            self._items[upload_id] = (offset, digest)
            self._items.move_to_end(upload_id)
            while len(self._items) > self.size:
                dropped.append(self._items.popitem(last=False)[1][1])
        for old in dropped:
            old.close()


HASHERS = Hashers()


@dataclass
class Progress:
    """Where an upload stands after a request: the drop once complete (with its delete
    token on the request that completed it)."""

    state: UploadState
    drop: Drop | None = None


def parse_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (the value may be
    absent). :raises InvalidOption: on a malformed pair, a value that is not base64 or
    not UTF-8, or a key given twice."""
    values: dict[str, str] = {}
    for pair in (header or "").split(","):
        if not pair.strip():
            continue
        parts = pair.strip().split(" ")
        key = parts[0]
        if len(parts) > 2 or not key.isascii() or not key.isprintable():
            raise InvalidOption(f"Upload-Metadata: {pair.strip()[:40]!r} is not 'key base64'")
        if key in values:
            raise InvalidOption(f"Upload-Metadata: {key!r} is given twice")
        try:
            raw = base64.b64decode(parts[1], validate=True) if len(parts) == 2 else b""
            values[key] = raw.decode("utf-8")
        except (binascii.Error, ValueError):
            raise InvalidOption(f"Upload-Metadata: {key!r} is not base64 of UTF-8 text") \
                from None
    return values


def staging_of(service: Teledrop) -> ResumableStaging:
    storage = service.storage
    if not isinstance(storage, ResumableStaging):
        raise NotImplementedByStorage()
    return storage


def create_upload(service: Teledrop, request: UploadRequest, length: int | None,
                  metadata: str | None) -> UploadState:
    """A new resumable upload of ``length`` bytes (``None``: given later), refused here,
    before a byte is sent, for whatever would refuse an ordinary upload.

    :raises InvalidOption: for a ``password`` in the metadata (it would be echoed back)."""
    values = parse_metadata(metadata)
    if "password" in values:
        raise InvalidOption(f"send a password in the {PASSWORD_HEADER} header, never in "
                            "Upload-Metadata (it is shown back to anyone with the upload URL)")
    staging = staging_of(service)
    request.declared_size = length
    upload = Upload(service, request)
    upload.begin()
    for name in OPTION_NAMES:
        if name in values and name not in SECRET_OPTIONS:
            upload.set_field(name, values[name])
    filename = clean_filename(values.get(FILENAME_KEY))
    created = now()
    writer = staging.stage_resumable(size_hint=upload.size_hint())
    try:
        state = UploadState(
            id=secrets.token_hex(ID_BYTES), blob_id=writer.blob_id, length=length, offset=0,
            metadata=metadata or "", filename=filename,
            content_type=pick_content_type(values.get(FILETYPE_KEY), filename),
            options=json.dumps({"given": upload.given(),
                                "password_hash": upload.options.password_hash}),
            owner=upload.request.owner, created_at=created,
            expires_at=created + service.config.limits.resumable_expires,
            storage_state=writer.sync())
        writer.close()
        service.metadata.insert_upload(state)
    except BaseException:
        writer.discard()
        raise
    return state


def find_upload(service: Teledrop, upload_id: str) -> UploadState:
    """:raises NotFound: unknown or expired."""
    state = service.metadata.get_upload(upload_id)
    if state is None or state.kind != TUS or state.expires_at <= now():
        raise NotFound("no such upload")
    return state


def lease(service: Teledrop, upload_id: str) -> tuple[UploadState, str]:
    """Take ``upload_id`` for this request. :raises NotFound: / :raises UploadLocked:
    (another request holds it, on any host)."""
    holder = secrets.token_hex(16)
    at = now()
    state = service.metadata.lease_upload(upload_id, holder, at, at + lease_seconds(service))
    if state is None:
        find_upload(service, upload_id)
        raise UploadLocked()
    return state, holder


def lease_seconds(service: Teledrop) -> int:
    return service.config.limits.idle_timeout + LEASE_MARGIN


def append(service: Teledrop, upload_id: str, offset: int,
           chunks: Iterable[bytes | memoryview], length: int | None = None,
           body_size: int | None = None) -> Progress:
    """Stream ``chunks`` into the upload at ``offset``, which must be the recorded one.
    ``length`` gives a deferred length; ``body_size`` is the request body's, when known.

    :raises OffsetMismatch: (409) when ``offset`` is not the upload's;
    :raises UploadLocked: (423) when another request continues it;
    :raises NotFound: unknown or expired; :raises TooLarge: past its length or the limit.
    """
    state = service.metadata.get_upload(upload_id)
    if state is not None and state.kind != TUS:
        raise NotFound("no such upload")
    if state is not None and state.slug is not None and state.expires_at > now():
        if offset != state.offset or body_size:
            raise OffsetMismatch("the upload is complete")
        return Progress(state)
    state, holder = lease(service, upload_id)
    try:
        if offset != state.offset:
            raise OffsetMismatch(f"the upload is at offset {state.offset}, not {offset}")
        if length is not None:
            set_length(service, state, length)
        limit = service.config.limits.max_upload_size if state.length is None else state.length
        check_size(None if body_size is None else offset + body_size, limit)
        digest = HASHERS.take(state.id, state.offset) or resumed_digest(service, state)
        try:
            writer = staging_of(service).resume(state.blob_id, state.storage_state,
                                                state.offset)
        except BaseException:
            digest.close()
            raise
    except BaseException:
        release(service, state, holder, {})
        raise
    return Continuation(service, state, holder, writer, digest).run(chunks)


class LaterHash:
    """Stands for the hasher of an upload whose staged bytes cannot be read back: the
    bytes pass unhashed, and the published blob is hashed (and inspected) at completion."""

    def update(self, data: bytes | memoryview) -> None:
        pass


def resumed_digest(service: Teledrop, state: UploadState) -> Digest:
    """The digest of an upload this process holds none for: at its first byte, a new
    hasher and inspection; further on, a hasher over the staged bytes, read once (the one
    that hashed them lives in another process, or was forgotten), and no inspection: the
    upload is inspected again at its completion. A :class:`LaterHash` where the storage
    cannot read them back."""
    hasher = service.hook("teledrop_hasher")
    if state.offset == 0:
        try:
            inspection = inspect_upload(service, recorded_request(state), state.filename,
                                        state.content_type)
        except BaseException:  # refused on its name or type: the upload goes
            staging_of(service).remove_resumable(state.blob_id, state.storage_state)
            service.metadata.delete_upload(state.id)
            raise
        return Digest(hasher, inspection)
    staged = staging_of(service).read_staged(state.blob_id, state.storage_state, state.offset)
    if staged is None:
        return Digest(LaterHash())
    with staged as f:
        feed_file(hasher.update, f, state.offset, f"the staged bytes of upload {state.id}")
    return Digest(hasher)


def reinspection(service: Teledrop, state: UploadState) -> Inspection | None:
    """The complete upload's inspection from its staged bytes, read once (no inspectors
    when no plugin inspects it); ``None`` when there are inspectors but the storage cannot
    read the staged bytes back: the published blob is inspected instead."""
    inspection = inspect_upload(service, recorded_request(state), state.filename,
                                state.content_type)
    if not inspection.inspectors:
        return inspection
    try:
        staged = staging_of(service).read_staged(state.blob_id, state.storage_state,
                                                 state.offset)
        if staged is None:
            inspection.close()
            return None
        with staged as f:
            feed_file(inspection.update, f, state.offset,
                      f"the staged bytes of upload {state.id}")
    except BaseException:
        inspection.close()
        raise
    return inspection


def recorded_request(state: UploadState) -> UploadRequest:
    """The request facts recorded with an upload, for the hooks that run after its
    creation."""
    return UploadRequest(method="PATCH", headers={}, owner=state.owner,
                         declared_size=state.length, filename=state.filename)


def set_length(service: Teledrop, state: UploadState, length: int) -> None:
    if state.length is not None and state.length != length:
        raise InvalidOption("Upload-Length cannot change once given")
    if length < state.offset:
        raise InvalidOption("Upload-Length is below the bytes already received")
    check_size(length, service.config.limits.max_upload_size)
    state.length = length


def release(service: Teledrop, state: UploadState, holder: str,
            changes: dict[str, Any]) -> UploadState | None:
    """Record ``changes`` and give the lease back."""
    return service.metadata.update_upload(
        state.id, holder, {**changes, "length": state.length, "lease_holder": None,
                           "lease_until": 0})


class Continuation:
    """One request's part of an upload, on a leased upload and its reopened blob."""

    def __init__(self, service: Teledrop, state: UploadState, holder: str,
                 writer: ResumableWriter, digest: Digest) -> None:
        self.service = service
        self.state = state
        self.holder = holder
        self.writer = writer
        self.digest = digest
        limits = service.config.limits
        limit = limits.max_upload_size if state.length is None else state.length
        self.ingest = IngestWriter(writer, digest, limit, Room(service))
        self.ingest.size = state.offset
        self.renew_every = max(1, limits.idle_timeout // 3)

    def run(self, chunks: Iterable[bytes | memoryview]) -> Progress:
        try:
            self.receive(chunks)
        except BaseException:
            if self.digest.refused:
                self.remove()
                raise
            # a dropped connection, a limit, a full disk: what was staged is kept
            try:
                self.save(complete=False)
            except Exception:
                log.exception("recording the progress of upload %s failed", self.state.id)
            raise
        complete = self.state.length is not None and self.writer.offset == self.state.length
        if not complete:
            return Progress(self.save(complete=False))
        self.save(complete=True)
        return self.commit()

    def receive(self, chunks: Iterable[bytes | memoryview]) -> None:
        renew_at = time.monotonic() + self.renew_every
        for chunk in chunks:
            self.ingest.write(chunk)
            if time.monotonic() >= renew_at:
                renew_at = time.monotonic() + self.renew_every
                until = now() + lease_seconds(self.service)
                if self.service.metadata.update_upload(
                        self.state.id, self.holder, {"lease_until": until}) is None:
                    raise UploadLocked("the upload was taken over or removed meanwhile")

    def save(self, complete: bool) -> UploadState:
        """Sync what reached the storage and record it; give the lease back unless the
        upload is to be committed now."""
        offset = self.writer.offset
        if not complete:
            self.keep_digest(offset)
        try:
            changes: dict[str, Any] = {"offset": offset,
                                       "storage_state": self.writer.sync(final=complete)}
        finally:
            if not complete:
                self.writer.close()
        if complete:  # the lease is kept until the commit is over
            saved = self.service.metadata.update_upload(self.state.id, self.holder,
                                                        {**changes, "length": self.state.length})
        else:
            saved = release(self.service, self.state, self.holder, changes)
        if saved is None:
            raise UploadLocked("the upload was taken over or removed meanwhile")
        self.state = saved
        return saved

    def keep_digest(self, offset: int) -> None:
        """Keep the digest for this upload's next request in this process, if it has
        hashed exactly the staged bytes; its inspection only if it can go on."""
        digest = self.digest
        if self.ingest.size != offset or offset == 0:  # the next request starts afresh
            digest.close()
            return
        if digest.inspection is not None and not digest.inspection.resumable:
            digest.close()
            digest = Digest(digest.hasher)
        HASHERS.keep(self.state.id, offset, digest)

    def commit(self) -> Progress:
        """The drop, committed as a streamed upload's, once every byte is inspected; the
        upload then records its slug. A failed commit has undone everything, the staged
        bytes included: the upload goes."""
        upload = restore(self.service, self.state, self.ingest)
        try:
            later = isinstance(self.digest.hasher, LaterHash)
            if not later and self.digest.inspection is None:
                self.digest.inspection = reinspection(self.service, self.state)
            if later or self.digest.inspection is None:
                self.digest_published()
            drop = upload.commit()
        except BaseException:
            self.remove()
            raise
        finally:
            self.digest.close()
            self.writer.close()
        saved = release(self.service, self.state, self.holder, {"slug": drop.slug})
        return Progress(saved or self.state, drop)

    def digest_published(self) -> None:
        """Publish the blob and read it once into a new hasher and inspection, where the
        staged bytes could not be read back (the commit chain publishes it again, which
        changes nothing, and discards it if the commit fails)."""
        self.writer.publish()
        self.digest.close()
        self.digest = self.ingest.digest = new_digest(
            self.service, recorded_request(self.state), self.state.filename,
            self.state.content_type)
        with self.service.storage.open(self.writer.blob_id) as f:
            feed_file(self.digest.update, f, self.writer.offset,
                      f"the bytes of upload {self.state.id}")

    def remove(self) -> None:
        """The upload is refused or could not be committed: remove it and its staged bytes
        (an undone commit has discarded them already)."""
        self.digest.close()
        self.writer.discard()
        try:
            self.service.metadata.delete_upload(self.state.id)
        except Exception:
            log.exception("removing upload %s failed", self.state.id)


def restore(service: Teledrop, state: UploadState, ingest: IngestWriter) -> Upload:
    """The :class:`Upload` the recorded options describe, its file the staged blob: the
    slug is checked again (the commit's UNIQUE still decides)."""
    upload = Upload(service, UploadRequest(method="PATCH", headers={}, owner=state.owner))
    options = json.loads(state.options)
    for name, value in options["given"].items():
        upload.set_field(name, value)
    upload.options.password_hash = options["password_hash"]
    upload.filename, upload.content_type = state.filename, state.content_type
    upload.writer = ingest
    return upload


def terminate(service: Teledrop, upload_id: str) -> UploadState:
    """Remove an upload and everything staged for it (a complete one's drop stays).
    :raises UploadLocked: while a request continues it."""
    state = find_upload(service, upload_id)
    if state.slug is None:
        state, _ = lease(service, upload_id)
        staging_of(service).remove_resumable(state.blob_id, state.storage_state)
    service.metadata.delete_upload(upload_id)
    return state


def completed_drop(service: Teledrop, upload_id: str) -> Drop:
    """The drop a complete upload became. :raises UploadIncomplete: before;
    :raises NotFound: unknown, expired, or its drop deleted since."""
    state = find_upload(service, upload_id)
    if state.slug is None:
        raise UploadIncomplete()
    drop = service.metadata.get(state.slug)
    if drop is None or drop.blob_id != state.blob_id or drop.is_gone():
        raise NotFound("the drop of this upload is gone")
    return drop


def unrecorded_resumable(service: Teledrop, older_than: int,
                         dry_run: bool = False) -> Iterable[str]:
    """Remove the resumable blobs older than ``older_than`` seconds that no record names
    (staged by a process killed before it recorded their upload), yielding each blob id.
    The storage is listed before the records are read, so a blob staged after the listing
    is not seen, and one whose record lands after the read is younger than the limit."""
    storage = service.storage
    if not isinstance(storage, ResumableStaging):
        return
    old = [item.name for item in storage.list_resumable() if item.age >= older_than]
    if not old:
        return
    known = service.metadata.blob_ids()
    for blob_id in old:
        if blob_id not in known:
            if not dry_run:
                storage.remove_resumable(blob_id, "")
            yield blob_id


def collect_expired(service: Teledrop, at: int, dry_run: bool = False) -> Iterable[UploadState]:
    """Remove the expired uploads and their staged bytes (none that a request continues
    right now), yielding each."""
    for state in service.metadata.list_expired_uploads(at):
        if state.kind != TUS or (state.slug is None and state.lease_until > at):
            continue
        if not dry_run:
            if state.slug is None:
                staging_of(service).remove_resumable(state.blob_id, state.storage_state)
            service.metadata.delete_upload(state.id)
        yield state
