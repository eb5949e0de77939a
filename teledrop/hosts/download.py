"""Download headers for any host: safe disposition and type, conditional requests, a
single byte range, and the redirect to a storage that serves blobs itself.

A storage that serves blobs itself (:class:`~teledrop.core.interfaces.PresignedDownloads`)
gets a redirect, to a URL that answers with the headers teledrop would send.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

from werkzeug.http import dump_options_header, http_date, parse_if_range_header, \
    parse_range_header, quote_etag
from werkzeug.sansio.http import is_resource_modified

from teledrop.core.drop import Drop
from teledrop.core.errors import RangeNotSatisfiable, TeledropError
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
#: The type a redirected download of a type never shown inline is served as.
SAFE_TYPE = "application/octet-stream"
#: ``bytes=-0``: a suffix of no bytes, which no representation satisfies (RFC 9110 §14.1.1).
_EMPTY_SUFFIX = re.compile(r"\s*bytes\s*=\s*-0+\s*")


def is_inline(content_type: str) -> bool:
    return content_type in INLINE_TYPES or content_type.startswith(INLINE_PREFIXES)


def content_disposition(inline: bool, filename: str) -> str:
    """RFC 6266: an ASCII ``filename`` fallback and the exact name in ``filename*``.
    Stored filenames have no control characters; quoting handles the rest. A ``%`` in the
    fallback gets ``filename*`` too: some user agents percent-decode ``filename``
    (appendix D), and would save ``invoice%2Epdf`` as ``invoice.pdf``."""
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace("?", "_")
    options = {"filename": ascii_name}
    if ascii_name != filename or "%" in ascii_name:
        options["filename*"] = "UTF-8''" + quote(filename, safe="!#$&+-.^_`|~")
    return dump_options_header("inline" if inline else "attachment", options)


def byte_range(headers: Mapping[str, str], drop: Drop) -> tuple[int, int] | None:
    """The one byte range to serve as ``(start, stop)``, or ``None`` for the whole file.

    Per RFC 9110 §14.2 a server may ignore a Range header: teledrop ignores other units,
    syntax errors, several ranges, and a stale ``If-Range``.

    :raises RangeNotSatisfiable: when the range starts past the end.
    """
    header = headers.get("Range")
    if not header:
        return None
    if_range = parse_if_range_header(headers.get("If-Range"))
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


def download_headers(request_headers: Mapping[str, str], drop: Drop, preview: bool
                     ) -> tuple[int, dict[str, str]]:
    """Every header of a download of ``drop`` but its length, and the status: 304 when the
    client's copy is current, else 200."""
    inline = preview and is_inline(drop.content_type)
    # Chrome's PDF viewer refuses to run in a sandboxed document.
    sandbox = "" if drop.content_type == "application/pdf" else "; sandbox"
    modified = datetime.fromtimestamp(drop.created_at, timezone.utc)
    headers = {
        "Content-Type": drop.content_type,  # as stored: no charset added
        "Content-Disposition": content_disposition(inline, drop.filename),
        "Content-Security-Policy": DOWNLOAD_CSP + sandbox,
        "Cache-Control": "private, no-cache",
        "Accept-Ranges": "bytes",
        "ETag": quote_etag(drop.hash),
        "Last-Modified": http_date(modified),
    }
    current = not is_resource_modified(
        http_range=request_headers.get("Range"),
        http_if_range=request_headers.get("If-Range"),
        http_if_modified_since=request_headers.get("If-Modified-Since"),
        http_if_none_match=request_headers.get("If-None-Match"),
        http_if_match=request_headers.get("If-Match"),
        etag=drop.hash, last_modified=modified)
    return (304 if current else 200), headers


@dataclass(frozen=True)
class FilePlan:
    """What a download of the bytes answers: 200, 206 or 304, its headers (the length and
    range included), and the stretch ``[start, stop)`` of the file its body is."""

    status: int
    headers: dict[str, str]
    start: int = 0
    stop: int = 0


def plan_file(request_headers: Mapping[str, str], drop: Drop, preview: bool) -> FilePlan:
    """The answer to a download of ``drop``'s bytes, but the bytes.

    :raises RangeNotSatisfiable: for a range past the end."""
    status, headers = download_headers(request_headers, drop, preview)
    if status == 304:
        return FilePlan(status, headers)
    selected = byte_range(request_headers, drop)
    start, stop = selected or (0, drop.size)
    if selected is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{drop.size}"
    headers["Content-Length"] = str(stop - start)
    return FilePlan(status, headers, start, stop)


def presigned_url(storage: Storage, drop: Drop, preview: bool) -> str | None:
    """Where ``storage`` serves ``drop`` itself, if it does: with the disposition teledrop
    would send, and the drop's type only where it would be shown inline (anything else, on
    the storage's origin too, is a download of opaque bytes)."""
    if not isinstance(storage, PresignedDownloads):
        return None
    shown = is_inline(drop.content_type)
    return storage.presign_download(drop.blob_id, drop.content_type if shown else SAFE_TYPE,
                                    content_disposition(preview and shown, drop.filename))


#: The blob id whose URL tells a storage's origin (never stored: ids are random).
ORIGIN_PROBE = "0" * 32


def bucket_origin(storage: Storage) -> str | None:
    """The origin of the URLs ``storage`` signs (the bucket's), where it redirects
    downloads; ``None`` where the host serves the bytes itself. A page lists it in its
    Content-Security-Policy: its previews, its Download form and (under a host whose page
    sends direct uploads) its part PUTs go there. The URL of a blob id of the usual form
    (32 hex digits) is signed to learn it: signing is local, no request is made, and a
    storage that takes no such id has no origin to tell."""
    if not isinstance(storage, PresignedDownloads):
        return None
    try:
        url = storage.presign_download(ORIGIN_PROBE, SAFE_TYPE, "attachment")
    except TeledropError:
        return None
    if url is None:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def redirect_headers(request_headers: Mapping[str, str], drop: Drop, url: str, preview: bool
                     ) -> tuple[int, dict[str, str]]:
    """302 to ``url``; 304 (with the download's headers) when the client's copy is current;
    :class:`RangeNotSatisfiable` for a range past the end (the storage would refuse it only
    after the download was counted)."""
    status, headers = download_headers(request_headers, drop, preview)
    if status == 304:
        return status, headers
    byte_range(request_headers, drop)
    # The URL is a short-lived capability of its own: no cache may keep or replay it.
    return 302, {"Location": url, "Cache-Control": "no-store"}
