"""A GetObject body read on a thread of its own, a few chunks ahead of its reader.

A proxied download waits in turn for S3 (receiving) and for its client (sending); reading
ahead overlaps the two. Memory per download: at most :data:`DEPTH` chunks of
:data:`CHUNK` bytes waiting, and the one being served.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

#: Bytes per read of the body, and how many read chunks may wait for the reader.
CHUNK = 256 * 1024
DEPTH = 4
#: How long close waits for the thread (stopped by closing the body it reads).
JOIN_TIMEOUT = 5.0


class ReadAhead:
    """Reads ``body`` (botocore's StreamingBody) to its end on a daemon thread; :meth:`read`
    returns its bytes in order and raises what reading it raised."""

    def __init__(self, body: Any) -> None:
        self._body = body
        self._chunks: queue.Queue[bytes | BaseException] = queue.Queue(DEPTH)
        self._chunk = b""
        self._offset = 0
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="s3-read", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._closed.is_set():
                data = self._body.read(CHUNK)
                self._hand_over(data)
                if not data:
                    return
        except BaseException as exc:  # the reader raises it (after close: nobody reads)
            self._hand_over(exc)

    def _hand_over(self, item: bytes | BaseException) -> None:
        while not self._closed.is_set():
            try:
                self._chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read(self, size: int) -> bytes:
        """``size`` bytes, fewer only at the end of the body."""
        pieces = []
        while size > 0:
            piece = self._read_piece(size)
            if not piece:
                break
            pieces.append(piece)
            size -= len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _read_piece(self, size: int) -> bytes:
        """Up to ``size`` bytes of the current chunk (``b""``: the body ended)."""
        if self._offset == len(self._chunk):
            item = self._chunks.get()
            if isinstance(item, BaseException) or not item:
                self._chunks.put_nowait(item)  # the last item: every later read sees it
                if isinstance(item, BaseException):
                    raise item
                return b""
            self._chunk, self._offset = item, 0
        start, self._offset = self._offset, min(len(self._chunk), self._offset + size)
        if start == 0 and self._offset == len(self._chunk):
            return self._chunk  # a whole chunk: no copy
        return self._chunk[start:self._offset]

    def close(self) -> None:
        self._closed.set()
        self._body.close()
        self._thread.join(JOIN_TIMEOUT)
