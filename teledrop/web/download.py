"""File responses: the WSGI host's side of a download (the headers come from
:mod:`teledrop.hosts.download`).

Both a full response and a range go out through ``wsgi.file_wrapper`` over a file
positioned at the range's start, so gunicorn serves either with one ``sendfile`` call
(werkzeug's own range path writes 8 KiB at a time). A file without a descriptor (an
object store's stream) is read in :data:`STREAM_READ_SIZE` pieces instead, its range
opened before the status is sent (:class:`~teledrop.core.interfaces.RangeOpener`).
"""

from __future__ import annotations

from typing import BinaryIO

from flask import Request, Response
from werkzeug.wsgi import wrap_file

from teledrop.core.drop import Drop
from teledrop.core.interfaces import RangeOpener
from teledrop.hosts import download

#: Bytes per read of a file that cannot be sent with sendfile.
STREAM_READ_SIZE = 256 * 1024


class FileSlice:
    """``length`` bytes of ``f`` from its current position. ``fileno()`` lets gunicorn
    sendfile exactly ``Content-Length`` bytes from there; ``read`` serves other hosts."""

    def __init__(self, f: BinaryIO, length: int) -> None:
        self.f = f
        self.remaining = length

    def fileno(self) -> int:
        return self.f.fileno()

    def read(self, size: int = -1) -> bytes:
        size = self.remaining if size < 0 else min(size, self.remaining)
        data = self.f.read(size) if size else b""
        self.remaining -= len(data)
        return data

    def close(self) -> None:
        self.f.close()


def file_response(request: Request, drop: Drop, f: BinaryIO, preview: bool = False) -> Response:
    """The drop's bytes (200), a slice of them (206), 304 or 416. An attachment, unless
    ``preview`` asks to show a safe type (image, PDF, plain text, audio, video) inline."""
    plan = download.plan_file(request.headers, drop, preview)  # 416: the caller closes ``f``
    response = Response(status=plan.status)
    response.headers.update(plan.headers)
    if plan.status == 304:
        f.close()
        return response
    if isinstance(f, RangeOpener) and request.method != "HEAD":
        f.open_range(plan.start, plan.stop)
    elif plan.start:
        f.seek(plan.start)
    response.response = wrap_file(request.environ,  # type: ignore[assignment]
                                  FileSlice(f, plan.stop - plan.start),
                                  buffer_size=STREAM_READ_SIZE)
    response.direct_passthrough = True
    return response


def redirect_response(request: Request, drop: Drop, url: str, preview: bool) -> Response:
    """302 to ``url``; 304 when the client's copy is current; 416 for a range past the end
    (the storage would refuse it only after the download was counted)."""
    status, headers = download.redirect_headers(request.headers, drop, url, preview)
    response = Response(status=status)
    response.headers.update(headers)
    return response
