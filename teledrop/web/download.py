"""File responses: conditional requests, a single byte range, safe headers.

Both a full response and a range go out through ``wsgi.file_wrapper`` over a file
positioned at the range's start, so gunicorn serves either with one ``sendfile`` call
(werkzeug's own range path writes 8 KiB at a time). A file without a descriptor (an
object store's stream) is read in :data:`STREAM_READ_SIZE` pieces instead.

A storage that serves blobs itself (:class:`~teledrop.core.interfaces.PresignedDownloads`)
gets a redirect instead, to a URL that answers with the headers teledrop would send.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, BinaryIO
from urllib.parse import quote

from flask import Request, Response
from werkzeug.http import dump_options_header, is_resource_modified, parse_if_range_header, \
    parse_range_header
from werkzeug.wsgi import wrap_file

from teledrop.core.drop import Drop
from teledrop.core.errors import RangeNotSatisfiable
from teledrop.core.interfaces import PresignedDownloads, Storage


#: Types a browser may render on teledrop's origin; everything else is an attachment,
#: so uploaded HTML, SVG, XML or JavaScript never runs here.
INLINE_TYPES = frozenset({
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp",
    "text/plain", "application/pdf",
})
INLINE_PREFIXES = ("audio/", "video/")
#: For what is shown inline: no scripts, no plugins, no requests to anywhere.
DOWNLOAD_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'"
#: Bytes per read of a file that cannot be sent with sendfile.
STREAM_READ_SIZE = 256 * 1024
#: The type a redirected download of a type never shown inline is served as.
SAFE_TYPE = "application/octet-stream"
#: ``bytes=-0``: a suffix of no bytes, which no representation satisfies (RFC 9110 §14.1.1).
_EMPTY_SUFFIX = re.compile(r"\s*bytes\s*=\s*-0+\s*")


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


def is_inline(content_type: str) -> bool:
    return content_type in INLINE_TYPES or content_type.startswith(INLINE_PREFIXES)


def content_disposition(inline: bool, filename: str) -> str:
    """RFC 6266: an ASCII ``filename`` fallback and the exact name in ``filename*``.
    Stored filenames have no control characters; quoting handles the rest."""
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace("?", "_")
    options = {"filename": ascii_name}
    if ascii_name != filename:
        options["filename*"] = "UTF-8''" + quote(filename, safe="!#$&+-.^_`|~")
    return dump_options_header("inline" if inline else "attachment", options)


def byte_range(environ: dict[str, Any], drop: Drop) -> tuple[int, int] | None:
    """The one byte range to serve as ``(start, stop)``, or ``None`` for the whole file.

    Per RFC 9110 §14.2 a server may ignore a Range header: teledrop ignores other units,
    syntax errors, several ranges, and a stale ``If-Range``.

    :raises RangeNotSatisfiable: when the range starts past the end.
    """
    header = environ.get("HTTP_RANGE")
    if not header:
        return None
    if_range = parse_if_range_header(environ.get("HTTP_IF_RANGE"))
    if if_range.etag is not None and if_range.etag != drop.hash:
        return None
    if if_range.date is not None and int(if_range.date.timestamp()) != drop.created_at:
        return None
    if _EMPTY_SUFFIX.fullmatch(header):
        raise RangeNotSatisfiable("an empty suffix range selects nothing", size=drop.size)
    parsed = parse_range_header(header)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        return None
    start, stop = parsed.ranges[0]
    if start < 0:  # a suffix: the last -start bytes, the whole file if it is shorter
        start, stop = max(0, drop.size + start), drop.size
    else:
        stop = drop.size if stop is None else min(stop, drop.size)
    if start >= drop.size:
        raise RangeNotSatisfiable(f"the file has {drop.size} bytes", size=drop.size)
    return start, stop


def download_headers(request: Request, drop: Drop, preview: bool) -> Response:
    """A response with every header of a download of ``drop``: 304 when the client's copy
    is current, else 200 without a body yet."""
    response = Response(content_type=drop.content_type)  # as stored: no charset added
    inline = preview and is_inline(drop.content_type)
    response.headers["Content-Disposition"] = content_disposition(inline, drop.filename)
    # Chrome's PDF viewer refuses to run in a sandboxed document.
    sandbox = "" if drop.content_type == "application/pdf" else "; sandbox"
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP + sandbox
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["Accept-Ranges"] = "bytes"
    modified = datetime.fromtimestamp(drop.created_at, timezone.utc)
    response.set_etag(drop.hash)
    response.last_modified = modified
    if not is_resource_modified(request.environ, etag=drop.hash, last_modified=modified):
        response.status_code = 304
    return response


def file_response(request: Request, drop: Drop, f: BinaryIO, preview: bool = False) -> Response:
    """The drop's bytes (200), a slice of them (206), 304 or 416. An attachment, unless
    ``preview`` asks to show a safe type (image, PDF, plain text, audio, video) inline."""
    environ = request.environ
    response = download_headers(request, drop, preview)
    if response.status_code == 304:
        f.close()
        return response
    selected = byte_range(environ, drop)  # RangeNotSatisfiable: the caller closes ``f``
    start, stop = selected or (0, drop.size)
    if selected is not None:
        response.status_code = 206
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{drop.size}"
    if start:
        f.seek(start)
    response.response = wrap_file(environ, FileSlice(f, stop - start),  # type: ignore[assignment]
                                  buffer_size=STREAM_READ_SIZE)
    response.direct_passthrough = True
    response.content_length = stop - start
    return response


def presigned_url(storage: Storage, drop: Drop, preview: bool) -> str | None:
    """Where ``storage`` serves ``drop`` itself, if it does: with the disposition teledrop
    would send, and the drop's type only where it would be shown inline (anything else, on
    the storage's origin too, is a download of opaque bytes)."""
    if not isinstance(storage, PresignedDownloads):
        return None
    shown = is_inline(drop.content_type)
    return storage.presign_download(drop.blob_id, drop.content_type if shown else SAFE_TYPE,
                                    content_disposition(preview and shown, drop.filename))


def redirect_response(request: Request, drop: Drop, url: str, preview: bool) -> Response:
    """302 to ``url``; 304 when the client's copy is current; 416 for a range past the end
    (the storage would refuse it only after the download was counted)."""
    current = download_headers(request, drop, preview)
    if current.status_code == 304:
        return current
    byte_range(request.environ, drop)
    response = Response(status=302)
    response.headers["Location"] = url
    # The URL is a short-lived capability of its own: no cache may keep or replay it.
    response.headers["Cache-Control"] = "no-store"
    return response
