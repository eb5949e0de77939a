"""Resumable staging on S3: one blob written over many requests, each perhaps on another
host, with nothing kept on any host between them.

Layout in the bucket::

    {prefix}blobs/<blob_id>                 the multipart upload its full parts go to
    {prefix}resumable/<blob_id>/<offset>    the tail: the bytes past the last full part,
                                            as they stood at byte ``offset``

Each upload has a part size fixed when it is staged (grown from the declared length as a
streamed upload's is). A request fills one part buffer; each full part is uploaded as a
part of the multipart upload on the blob's final key, while the request waits (memory is
one part per request). Whatever ends a request, the bytes past the last full part are put
as the tail object, so a request cut anywhere keeps every byte it received; the next
request reads the tail back into its buffer and goes on filling that part. S3 parts must be
5 MiB but the last, a request may end anywhere: the tail is how both hold.

The resume state (see :class:`Staged`) — the part size, the multipart upload's id, each
part's size and ETag, and which tail object holds the rest — is recorded by teledrop in its
metadata store with the offset, never read back from the bucket's listings. A tail is
written under a new key each time (its offset), so the one a record names is never
overwritten by a request that failed before recording its own; a resume deletes the others.

A tail object is also the mark that a multipart upload belongs to a resumable upload:
``list_staging`` leaves those out (they live until their upload expires, however old),
``list_resumable`` lists them. Parts of a multipart upload in progress cannot be read back,
so ``read_staged`` gives ``None`` once a part is uploaded: teledrop then hashes the blob
once it is published.
"""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from teledrop.core.errors import BlobMissing, StorageUnavailable, TooLarge
from teledrop.core.interfaces import StoredItem
from teledrop.core.units import format_size

from .ages import age
from .errors import s3_errors
from .parts import capacity, initial_part_size, part_size
from .writer import GROWING_BUFFER, PartBody, part_body

if TYPE_CHECKING:
    from .storage import S3Storage

log = logging.getLogger(__name__)

_TAIL_NAME = re.compile(r"(?P<blob_id>[0-9a-f]{32})/(?P<offset>[0-9]+)")
#: What a tail read back is read in.
TAIL_READ = 1024 * 1024


@dataclass
class Staged:
    """A resumable blob's resume state, recorded with its offset."""

    #: the size of part 1 (later parts as :func:`~.parts.part_size` grows them).
    part_size: int
    upload_id: str
    #: ``(size, ETag)`` of parts 1, 2, ... in order.
    parts: list[tuple[int, str]] = field(default_factory=list)
    #: the tail object: the offset it is named by (where it ends) and its length.
    tail_end: int = 0
    tail_length: int = 0

    @property
    def parts_size(self) -> int:
        return sum(size for size, _ in self.parts)

    def dumps(self) -> str:
        return json.dumps({"part_size": self.part_size, "upload_id": self.upload_id,
                           "parts": self.parts, "tail": [self.tail_end, self.tail_length]},
                          separators=(",", ":"))

    @classmethod
    def loads(cls, state: str) -> Staged:
        """:raises ValueError: for a state this module did not write."""
        try:
            data = json.loads(state)
            tail_end, tail_length = data["tail"]
            return cls(int(data["part_size"]), str(data["upload_id"]),
                       [(int(size), str(etag)) for size, etag in data["parts"]],
                       int(tail_end), int(tail_length))
        except (TypeError, KeyError, ValueError) as exc:
            raise ValueError(f"not an s3_storage resume state: {state[:60]!r}") from exc


class ResumableS3Writer:
    """See :class:`teledrop.core.interfaces.ResumableWriter`."""

    def __init__(self, storage: S3Storage, blob_id: str, staged: Staged,
                 buffer: bytearray, filled: int) -> None:
        self.blob_id = blob_id
        self.key = storage.key(blob_id)
        self.published = False
        self._storage = storage
        self._staged = staged
        self._buffer: bytearray | None = buffer
        self._filled = filled
        self._number = len(staged.parts) + 1  # the part being filled
        self._part_size = part_size(staged.part_size, self._number)
        #: a short part is the last one: nothing may follow it.
        self._sealed = bool(staged.parts) and \
            staged.parts[-1][0] < part_size(staged.part_size, len(staged.parts))

    @property
    def offset(self) -> int:
        return self._staged.parts_size + self._filled

    # -- writing -------------------------------------------------------------------------

    def write(self, data: bytes | memoryview) -> int:
        buffer = self._open_buffer("write to")
        if self._sealed:
            raise StorageUnavailable("write past the last part of a blob")
        view = memoryview(data).cast("B")
        total = len(view)
        while view:
            if self._filled == self._part_size:  # a part that failed to upload before
                self._ship_part()
            if self._number > self._storage.max_parts:
                raise TooLarge("the file is larger than the storage can take in one object "
                               f"({format_size(capacity(self._staged.part_size))})")
            take = view[:self._part_size - self._filled]
            end = self._filled + len(take)
            buffer = self._grown(buffer, end)
            buffer[self._filled:end] = take
            self._filled = end
            view = view[len(take):]
            if self._filled == self._part_size:
                self._ship_part()
                buffer = self._open_buffer("write to")
        return total

    def _grown(self, buffer: bytearray, end: int) -> bytearray:
        """The buffer, able to hold ``end`` bytes: it grows by appending up to
        :data:`GROWING_BUFFER` (a small file never takes a whole part), then is a whole
        part at once, then is overwritten in place part after part."""
        if len(buffer) < end and end > GROWING_BUFFER:
            whole = bytearray(self._part_size)
            whole[:self._filled] = memoryview(buffer)[:self._filled]
            buffer = self._buffer = whole
        return buffer

    def _ship_part(self) -> None:
        """Upload the buffer's bytes as the next part. On failure they stay in the buffer
        (and in ``offset``): a later write or a sync may still keep them."""
        etag = self._storage.upload_part(self.key, self._staged.upload_id, self._number,
                                         self._open_buffer("upload"), self._filled)
        self._staged.parts.append((self._filled, etag))
        self._sealed = self._filled < self._part_size
        self._filled = 0
        self._number += 1
        self._part_size = part_size(self._staged.part_size, self._number)

    def _open_buffer(self, doing: str) -> bytearray:
        if self._buffer is None:
            raise StorageUnavailable(f"{doing} a closed blob")
        return self._buffer

    def sync(self, final: bool = False) -> str:
        """Keep the bytes past the last full part: as the last part when ``final`` and a
        part went before it, else as a new tail object."""
        staged = self._staged
        if final and self._filled and staged.parts:
            self._ship_part()
        elif (staged.tail_end, staged.tail_length) != (self.offset, self._filled):
            self._storage.put_bytes(self._storage.tail_key(self.blob_id, self.offset),
                                    self._open_buffer("sync"), self._filled,
                                    "keeping the bytes past the last part")
            staged.tail_end, staged.tail_length = self.offset, self._filled
        return staged.dumps()

    # -- publishing ----------------------------------------------------------------------

    def publish(self) -> None:
        if self.published:
            return
        buffer = self._open_buffer("publish of")
        try:
            if not self._staged.parts:  # smaller than a part: one PutObject
                self._storage.put_bytes(self.key, buffer, self._filled, "storing a file")
            else:
                if self._filled:
                    self._ship_part()
                parts = [{"PartNumber": number, "ETag": etag}
                         for number, (_, etag) in enumerate(self._staged.parts, start=1)]
                with s3_errors("completing a multipart upload"):
                    self._storage.client.complete_multipart_upload(
                        Bucket=self._storage.bucket, Key=self.key,
                        UploadId=self._staged.upload_id, MultipartUpload={"Parts": parts})
        except BaseException:
            self.discard()  # a publish that raised leaves nothing behind
            raise
        self.published = True
        self.close()
        try:
            if not self._staged.parts:  # no part went to it
                self._storage.abort_upload(self.key, self._staged.upload_id)
            self._storage.delete_tails(self.blob_id)
        except StorageUnavailable:  # gc removes what is left (a stale upload, a tail)
            log.exception("s3_storage: could not tidy up after publishing blob %s",
                          self.blob_id)

    # -- undoing -------------------------------------------------------------------------

    def discard(self) -> None:
        """Never raises."""
        self.close()
        self.published = False
        try:
            self._storage.remove_resumable(self.blob_id, self._staged.dumps())
        except Exception:
            log.exception("s3_storage: could not remove resumable blob %s", self.blob_id)

    def close(self) -> None:
        self._buffer = None


class ResumableS3Staging:
    """The resumable staging of :class:`~.storage.S3Storage` (mixed into it)."""

    @property
    def resumable_prefix(self) -> str:
        return f"{self.settings.prefix}resumable/"

    def tail_key(self, blob_id: str, offset: int) -> str:
        self.key(blob_id)  # a blob id, never a path
        return f"{self.resumable_prefix}{blob_id}/{offset}"

    def stage_resumable(self, size_hint: int | None = None) -> ResumableS3Writer:
        blob_id = uuid.uuid4().hex
        staged = Staged(initial_part_size(self.settings.part_size, size_hint, self.max_parts),
                        upload_id="")
        # the tail first: it marks the multipart upload as a resumable one's (list_staging)
        with s3_errors("staging a resumable blob"):
            self.client.put_object(Bucket=self.bucket, Key=self.tail_key(blob_id, 0), Body=b"")
        try:
            with s3_errors("starting a multipart upload"):
                staged.upload_id = self.client.create_multipart_upload(
                    Bucket=self.bucket, Key=self.key(blob_id))["UploadId"]
        except BaseException:
            self.remove_resumable(blob_id, "")
            raise
        return ResumableS3Writer(self, blob_id, staged, bytearray(), 0)

    def resume(self, blob_id: str, state: str, offset: int) -> ResumableS3Writer:
        staged = self._staged(blob_id, state)
        kept: list[tuple[int, str]] = []
        for size, etag in staged.parts:  # parts past ``offset`` were never recorded with it
            if sum(s for s, _ in kept) + size > offset:
                break
            kept.append((size, etag))
        more = offset - sum(size for size, _ in kept)
        tail = self.tail_key(blob_id, staged.tail_end)
        if more and (len(kept) < len(staged.parts) or
                     staged.tail_end - staged.tail_length != staged.parts_size or
                     more > staged.tail_length):
            raise BlobMissing(f"the staged bytes of {blob_id} do not reach {offset}")
        staged.parts = kept
        # a tail past what a buffer grows to is read into a whole part's buffer at once
        whole = part_size(staged.part_size, len(kept) + 1) if more > GROWING_BUFFER else more
        buffer = self._read_tail(blob_id, tail, more, bytearray(whole))
        self.delete_tails(blob_id, keep=tail)
        return ResumableS3Writer(self, blob_id, staged, buffer, more)

    def _staged(self, blob_id: str, state: str) -> Staged:
        try:
            return Staged.loads(state)
        except ValueError as exc:
            raise BlobMissing(f"the staged bytes of {blob_id}: {exc}") from None

    def _read_tail(self, blob_id: str, key: str, length: int,
                   buffer: bytearray) -> bytearray:
        """The first ``length`` bytes of tail ``key``, read into ``buffer``.
        :raises BlobMissing: when it is gone or shorter."""
        try:
            with s3_errors(f"reading the staged bytes of {blob_id}"):
                if not length:
                    self.client.head_object(Bucket=self.bucket, Key=key)
                    return buffer
                body = self.client.get_object(Bucket=self.bucket, Key=key,
                                              Range=f"bytes=0-{length - 1}")["Body"]
                filled = 0
                try:
                    while filled < length:
                        data = body.read(min(TAIL_READ, length - filled))
                        if not data:
                            break
                        buffer[filled:filled + len(data)] = data
                        filled += len(data)
                finally:
                    body.close()
        except BlobMissing:
            raise BlobMissing(f"the staged bytes of {blob_id} are missing") from None
        if filled < length:
            raise BlobMissing(f"the staged bytes of {blob_id} are shorter than recorded")
        return buffer

    def read_staged(self, blob_id: str, state: str, offset: int) -> BinaryIO | None:
        """The tail (shorter than a part), while no part is uploaded; ``None`` after
        (parts cannot be read)."""
        staged = self._staged(blob_id, state)
        if staged.parts and offset:
            return None
        if offset > staged.tail_length:
            raise BlobMissing(f"the staged bytes of {blob_id} are shorter than {offset}")
        return io.BytesIO(self._read_tail(blob_id, self.tail_key(blob_id, staged.tail_end),
                                          offset, bytearray(offset)))

    def upload_part(self, key: str, upload_id: str, number: int, buffer: bytearray,
                    length: int) -> str:
        """Part ``number`` of ``upload_id``: the first ``length`` bytes of ``buffer``."""
        return str(self._send("upload_part", buffer, length, f"uploading part {number}",
                              Key=key, UploadId=upload_id, PartNumber=number)["ETag"])

    def put_bytes(self, key: str, buffer: bytearray, length: int, doing: str) -> None:
        """Object ``key``: the first ``length`` bytes of ``buffer``."""
        self._send("put_object", buffer, length, doing, Key=key)

    def _send(self, operation: str, buffer: bytearray, length: int, doing: str,
              **params: Any) -> dict[str, Any]:
        body = part_body(buffer, length)
        try:
            with s3_errors(doing):
                return getattr(self.client, operation)(Bucket=self.bucket, Body=body,
                                                       **params)
        finally:
            if isinstance(body, PartBody):
                body.close()

    # -- removing and listing ------------------------------------------------------------

    def remove_resumable(self, blob_id: str, state: str) -> None:
        """Abort its multipart upload (and any other on its key: a host killed before
        recording one), then remove its tails, then an object published but never
        committed."""
        key = self.key(blob_id)
        with s3_errors("listing the multipart uploads of a resumable blob"):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=key)
            upload_ids = {upload["UploadId"] for page in pages
                          for upload in page.get("Uploads", []) if upload["Key"] == key}
        try:
            upload_ids.add(Staged.loads(state).upload_id)
        except ValueError:
            pass
        for upload_id in sorted(upload_ids - {""}):
            self.abort_upload(key, upload_id)
        self.delete_tails(blob_id)
        with s3_errors(f"deleting blob {blob_id}"):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def _tails(self, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        """``(blob_id, entry)`` for each tail object (under ``prefix`` inside the area)."""
        with s3_errors("listing the resumable blobs"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.resumable_prefix + prefix)
            for page in pages:
                for entry in page.get("Contents", []):
                    match = _TAIL_NAME.fullmatch(entry["Key"][len(self.resumable_prefix):])
                    if match is not None:
                        yield match["blob_id"], entry

    def delete_tails(self, blob_id: str, keep: str | None = None) -> None:
        """Delete the tail objects of ``blob_id`` but ``keep``."""
        self.key(blob_id)
        for _, entry in list(self._tails(f"{blob_id}/")):
            if entry["Key"] != keep:
                with s3_errors("removing a tail"):
                    self.client.delete_object(Bucket=self.bucket, Key=entry["Key"])

    def list_resumable(self) -> Iterator[StoredItem]:
        newest: dict[str, Any] = defaultdict(lambda: None)
        for blob_id, entry in self._tails():
            when = newest[blob_id]
            newest[blob_id] = entry["LastModified"] if when is None else \
                max(when, entry["LastModified"])
        for blob_id, when in newest.items():
            yield StoredItem(blob_id, age(when))

    def resumable_blob_ids(self) -> set[str]:
        """Whose multipart uploads are resumable blobs' (not staging debris)."""
        return {blob_id for blob_id, _ in self._tails()}
