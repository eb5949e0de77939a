"""A published object as a seekable, read-only file that streams it.

Each stream is one GetObject for an exact range, ``bytes=N-M``: from the current position
to the end of the object, or, after :meth:`S3ReadFile.open_range`, to the end of the range
a download serves, so S3 never sends more than is read. A seek elsewhere drops the stream;
the next read asks again from there. No file is ever held in memory (a stream is read at most
a few chunks ahead), and there is no ``fileno()``: hosts fall back to reading.

A download should call :meth:`~S3ReadFile.open_range` before it commits to a status: the
object is asked for there, so one deleted since it was looked up, or a store that went
away, raises :class:`~teledrop.core.errors.BlobMissing` or
:class:`~teledrop.core.errors.StorageUnavailable` while a clean error can still be
answered, instead of cutting a response whose headers are out.
"""

from __future__ import annotations

import io
from typing import Any

from teledrop.core.errors import StorageUnavailable

from .errors import s3_errors
from .readahead import CHUNK, ReadAhead
from .seekable import SeekableReader


class S3ReadFile(SeekableReader):
    def __init__(self, client: Any, bucket: str, key: str, size: int) -> None:
        super().__init__(size)
        self._client = client
        self._bucket = bucket
        self._key = key
        self._stream: Any = None
        #: reads end here: the object's end, or the end of the range being served.
        self._stop = size

    def open_range(self, start: int, stop: int) -> None:
        """Position at ``start`` and open the stream of bytes ``[start, stop)`` now; reads
        end at ``stop``. A failure to open it raises here, before anything was read."""
        if not 0 <= start <= stop <= self.size:
            raise ValueError(f"range {start}-{stop} outside a file of {self.size} bytes")
        self._drop_stream()
        self._pos, self._stop = start, stop
        if start < stop:
            self._open_stream()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        before = self._pos
        position = super().seek(offset, whence)
        if position != before:
            self._drop_stream()
            self._stop = self.size
        return position

    def _open_stream(self) -> None:
        """GetObject of ``[pos, stop)``; a body longer than one chunk is read ahead on a
        thread of its own (:mod:`.readahead`)."""
        with s3_errors("starting a download"):
            body = self._client.get_object(Bucket=self._bucket, Key=self._key,
                                           Range=f"bytes={self._pos}-{self._stop - 1}")["Body"]
        self._stream = ReadAhead(body) if self._stop - self._pos > CHUNK else body

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("read of a closed file")
        left = self._stop - self._pos
        if left <= 0 or size == 0:
            return b""
        if self._stream is None:
            self._open_stream()
        with s3_errors("streaming a download"):
            data = self._stream.read(left if size is None or size < 0 else min(size, left))
        if not data:
            raise StorageUnavailable(f"the stored file ended after {self._pos} of "
                                     f"{self.size} bytes")
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[:len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)

    def _drop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    def close(self) -> None:
        if not self.closed:
            self._drop_stream()
        super().close()
