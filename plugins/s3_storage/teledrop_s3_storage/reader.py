"""A published object as a seekable, read-only file that streams it.

The first read asks S3 for the bytes from the current position on (``Range: bytes=N-``)
and streams that response: a download positioned at a range's start sends S3 the range,
and no file is ever held in memory. A seek elsewhere drops the stream; the next read asks
again from there. There is no ``fileno()``: hosts fall back to reading.
"""

from __future__ import annotations

import io
from typing import Any

from teledrop.core.errors import StorageUnavailable

from .errors import s3_errors
from .seekable import SeekableReader


class S3ReadFile(SeekableReader):
    def __init__(self, client: Any, bucket: str, key: str, size: int) -> None:
        super().__init__(size)
        self._client = client
        self._bucket = bucket
        self._key = key
        self._stream: Any = None

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        before = self._pos
        position = super().seek(offset, whence)
        if position != before:
            self._drop_stream()
        return position

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ValueError("read of a closed file")
        if self._pos >= self.size or size == 0:
            return b""
        if self._stream is None:
            with s3_errors("starting a download"):
                self._stream = self._client.get_object(
                    Bucket=self._bucket, Key=self._key, Range=f"bytes={self._pos}-")["Body"]
        with s3_errors("streaming a download"):
            data = self._stream.read(None if size is None or size < 0 else size)
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
