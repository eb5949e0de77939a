"""Read a length-delimited request body straight from gunicorn's socket.

gunicorn's ``wsgi.input`` hands a body over through three layers of ``BytesIO``: each MiB
is received into a fresh ``bytes``, appended to the unreader's buffer, taken out and
sliced, appended to ``Body``'s own buffer and sliced again. Profiled, those copies were
~40% of a raw PUT (docs/performance.md). For a body of known length there is nothing to
parse, so teledrop receives it with ``recv_into`` into its own reused buffer instead.

It does so *through* gunicorn's bookkeeping, not around it: whatever gunicorn already read
past the request head is taken from its unreader first, bytes read past the body (a
pipelined next request) are handed back to it, and its ``LengthReader`` is told every byte
that was consumed. gunicorn therefore still knows where the next request on the
connection starts and drains whatever the application left unread, and a read that fails
marks the body failed, so that the connection is not reused. Anything that does not look
exactly like gunicorn's length-delimited body (another server, a chunked body, a gunicorn
whose internals differ) is read through ``wsgi.input`` as before.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader


class SocketBody:
    """``readinto`` over the rest of a gunicorn request body of known length."""

    def __init__(self, body: Any, sock: socket.socket) -> None:
        self._body = body
        self._reader = body.reader
        self._unreader = body.reader.unreader
        self._sock = sock
        #: a failed receive, raised once the bytes received before it are handed over.
        self._error: OSError | None = None

    @classmethod
    def wrap(cls, environ: Mapping[str, Any]) -> SocketBody | None:
        """A direct reader for this request's body, or None when it must go through
        ``wsgi.input`` (not gunicorn, not length-delimited, or already partly read)."""
        body, sock = environ.get("wsgi.input"), environ.get("gunicorn.socket")
        if type(body) is not Body or type(body.reader) is not LengthReader:
            return None
        unreader = body.reader.unreader
        if type(unreader) is not SocketUnreader or unreader.sock is not sock \
                or not isinstance(getattr(body.reader, "length", None), int) \
                or not hasattr(unreader, "take_buffered") or body.buf.tell():
            return None
        return cls(body, sock)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` from the body; fewer bytes only at its end or when the client
        closed the connection early (0 once nothing is left). A receive that fails (a
        timeout, a reset) after some bytes arrived returns those, and raises on the next
        call: a resumable upload keeps every byte it received."""
        if self._error is not None:
            raise self._error
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._reader.length)
        if not want:
            return 0
        filled = 0
        try:
            held = self._unreader.take_buffered()
            if held:
                filled = min(len(held), want)
                view[:filled] = held[:filled]
                if len(held) > filled:
                    self._unreader.unread(held[filled:])
            while filled < want:
                n = self._sock.recv_into(view[filled:want])
                if not n:
                    break
                filled += n
        except OSError as exc:
            self._body.failed = True  # where the next request starts is unknown now
            if not filled:
                raise
            self._error = exc
        except BaseException:
            self._body.failed = True
            raise
        finally:
            self._reader.length -= filled
        return filled
