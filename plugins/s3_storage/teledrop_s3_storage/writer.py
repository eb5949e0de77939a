"""A blob being written: an S3 multipart upload on the blob's final key.

Nothing is visible under the key before CompleteMultipartUpload, the atomic publish; abort
is the undo (delete, once completed). A file smaller than one part never starts a
multipart upload: it is one PutObject at publish.

Two part buffers, reused: while one part uploads on a background thread the next one
fills, so memory per upload is about two parts whatever the file's size. The caller's
bytes are copied once, into the filling buffer (botocore takes ``bytes``, ``bytearray`` or
a seekable file, not a ``memoryview`` of the caller's buffer, which the caller reuses).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from teledrop.core.errors import StorageUnavailable, TooLarge
from teledrop.core.units import format_size

from .errors import s3_errors
from .parts import capacity, part_size
from .seekable import SeekableReader

if TYPE_CHECKING:
    from .storage import S3Storage

log = logging.getLogger(__name__)

#: How large a part buffer may grow by appending before it is allocated whole.
GROWING_BUFFER = 1024 * 1024


class PartBody(SeekableReader):
    """The first ``length`` bytes of a part buffer as a seekable read-only file, for a part
    shorter than its buffer (botocore rewinds it to retry)."""

    def __init__(self, buffer: bytearray, length: int) -> None:
        super().__init__(length)
        self._view = memoryview(buffer)[:length]

    def readinto(self, buffer: Any) -> int:
        chunk = self._view[self._pos:self._pos + len(buffer)]
        n = len(chunk)
        memoryview(buffer).cast("B")[:n] = chunk
        self._pos += n
        return n

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else self._pos + size
        data = bytes(self._view[self._pos:end])
        self._pos += len(data)
        return data

    def close(self) -> None:
        self._view.release()
        super().close()


def part_body(buffer: bytearray, length: int) -> bytearray | PartBody:
    """A request body of the buffer's first ``length`` bytes, without copying them."""
    return buffer if length == len(buffer) else PartBody(buffer, length)


class S3BlobWriter:
    """See :class:`teledrop.core.interfaces.BlobWriter`."""

    def __init__(self, storage: S3Storage, blob_id: str, base_part_size: int) -> None:
        self.blob_id = blob_id
        self.key = storage.key(blob_id)
        self.created = time.time()
        self.published = False
        #: set when gc removed this upload: nothing more may be written or published.
        self.removed = False
        self.upload_id: str | None = None
        self._storage = storage
        self._base = base_part_size
        self._number = 1  # the part being filled
        self._part_size = base_part_size
        # A buffer grows as it first fills, up to GROWING_BUFFER (a small file never takes a
        # whole part); past that it is allocated at its part's size at once, then keeps its
        # length and is overwritten in place.
        self._filling: bytearray | None = bytearray()
        self._spare: bytearray | None = bytearray()
        self._filled = 0
        self._pending: Future[str] | None = None
        self._parts: list[dict[str, Any]] = []
        self._closed = False
        #: the object may exist: a PutObject or Complete was sent, whatever its answer was.
        self._publishing = False

    # -- writing -------------------------------------------------------------------------

    def write(self, data: bytes | memoryview) -> int:
        self._check_open("write to")
        self._raise_if_failed()
        view = memoryview(data).cast("B")
        total = len(view)
        while view:
            if self._number > self._storage.max_parts:
                raise TooLarge(f"the file is larger than the storage can take in one object "
                               f"({format_size(capacity(self._base))})")
            take = view[:self._part_size - self._filled]
            end = self._filled + len(take)
            buffer = self._buffer_for(end)
            buffer[self._filled:end] = take
            self._filled = end
            view = view[len(take):]
            if self._filled == self._part_size:
                self._ship_full_part()
        return total

    def _buffer_for(self, end: int) -> bytearray:
        """The filling buffer, made to hold ``end`` bytes. Growing one by small steps to a
        whole part would copy it again and again and leave the allocator's heap full of
        holes: a buffer that passes :data:`GROWING_BUFFER` becomes a whole part at once."""
        buffer = self._filling
        assert buffer is not None
        if len(buffer) < end and end > GROWING_BUFFER and len(buffer) < self._part_size:
            whole = bytearray(self._part_size)
            whole[:self._filled] = memoryview(buffer)[:self._filled]
            buffer = self._filling = whole
        return buffer

    def _ship_full_part(self) -> None:
        """Hand the full buffer to a background upload and go on filling the other one."""
        self._wait_for_pending()
        if self.upload_id is None:
            with s3_errors("starting a multipart upload"):
                self.upload_id = self._storage.client.create_multipart_upload(
                    Bucket=self._storage.bucket, Key=self.key)["UploadId"]
        full = self._filling
        assert full is not None
        try:
            self._pending = self._storage.uploads.submit(self._upload_part, self._number, full,
                                                         self._filled)
        except RuntimeError as exc:  # the storage was closed: the process is shutting down
            raise StorageUnavailable("the storage is shutting down") from exc
        self._filling, self._spare = self._spare, full
        self._filled = 0
        self._number += 1
        self._part_size = part_size(self._base, self._number)

    def _upload_part(self, number: int, buffer: bytearray, length: int) -> str:
        body = part_body(buffer, length)
        try:
            with s3_errors(f"uploading part {number}"):
                return self._storage.client.upload_part(
                    Bucket=self._storage.bucket, Key=self.key, UploadId=self.upload_id,
                    PartNumber=number, Body=body)["ETag"]
        finally:
            if isinstance(body, PartBody):
                body.close()

    def _wait_for_pending(self) -> None:
        """Wait for the part uploading in the background; if it failed, abort the upload
        and raise why."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            etag = pending.result()
        except BaseException:
            self.discard()
            raise
        self._parts.append({"PartNumber": len(self._parts) + 1, "ETag": etag})

    def _raise_if_failed(self) -> None:
        """A part that failed in the background fails the upload at its next write and
        aborts it at once: nothing more is sent to an upload that cannot complete."""
        if self._pending is not None and self._pending.done():
            self._wait_for_pending()

    def _check_open(self, doing: str) -> None:
        if self.removed:
            raise StorageUnavailable(f"{doing} a blob whose upload was removed as debris")
        if self._closed or self.published:
            raise StorageUnavailable(f"{doing} a closed blob")

    # -- publishing ----------------------------------------------------------------------

    def publish(self) -> None:
        self._check_open("publish of")
        self._publishing = True
        try:
            if self.upload_id is None:
                self._put_whole()
            else:
                self._complete()
        except BaseException:
            self.discard()  # a publish that raised leaves nothing behind
            raise
        self.published = True
        self._release()

    def _put_whole(self) -> None:
        buffer = self._filling
        assert buffer is not None
        body = part_body(buffer, self._filled)
        try:
            with s3_errors("storing a file"):
                self._storage.client.put_object(Bucket=self._storage.bucket, Key=self.key,
                                                Body=body)
        finally:
            if isinstance(body, PartBody):
                body.close()

    def _complete(self) -> None:
        self._wait_for_pending()
        if self._filled:
            assert self._filling is not None
            etag = self._upload_part(self._number, self._filling, self._filled)
            self._parts.append({"PartNumber": self._number, "ETag": etag})
        with s3_errors("completing a multipart upload"):
            self._storage.client.complete_multipart_upload(
                Bucket=self._storage.bucket, Key=self.key, UploadId=self.upload_id,
                MultipartUpload={"Parts": self._parts})

    # -- undoing -------------------------------------------------------------------------

    def discard(self) -> None:
        """Never raises: each step is tried whatever happened to the one before."""
        steps: list[tuple[str, Callable[[], object]]] = []
        pending, self._pending = self._pending, None
        if pending is not None:  # an abort racing a part upload could let the part land
            steps.append(("wait for a part of", pending.exception))
        if self.upload_id is not None and not self.published:
            steps.append(("abort the multipart upload of", self._abort))
        if self.published or self._publishing:  # an answer lost is not a publish undone
            steps.append(("delete", lambda: self._storage.delete(self.blob_id)))
        self.published = self._publishing = False
        self._closed = True
        for what, step in steps:
            try:
                step()
            except Exception:
                log.exception("s3_storage: could not %s blob %s", what, self.blob_id)
        self._release()

    def _abort(self) -> None:
        assert self.upload_id is not None
        self._storage.abort_upload(self.key, self.upload_id)
        self.upload_id = None  # a later discard has nothing left to do

    def close(self) -> None:
        if not self.published:
            self.discard()

    def _release(self) -> None:
        self._closed = True
        self._filling = self._spare = None
        self._storage.forget(self)
