"""Content negotiation, error bodies and file responses."""

from __future__ import annotations

import json
from typing import Any, BinaryIO
from urllib.parse import quote

from flask import Request, Response
from werkzeug.http import dump_options_header
from werkzeug.wsgi import wrap_file

from teledrop.core.drop import Drop
from teledrop.core.errors import TeledropError

#: Types a browser may render on teledrop's origin; everything else is an attachment,
#: so uploaded HTML, SVG, XML or JavaScript never runs here.
INLINE_TYPES = frozenset({
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp",
    "text/plain", "application/pdf",
})
INLINE_PREFIXES = ("audio/", "video/")
#: For what is shown inline: no scripts, no plugins, no requests to anywhere.
DOWNLOAD_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'"


def wants_json(request: Request) -> bool:
    return any(mime == "application/json" and q > 0 for mime, q in request.accept_mimetypes)


def wants_html(request: Request) -> bool:
    return any(mime == "text/html" and q > 0 for mime, q in request.accept_mimetypes)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data) + "\n", status=status, headers=headers,
                    mimetype="application/json")


def text_response(text: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(text, status=status, headers=headers, mimetype="text/plain")


def error_response(request: Request, error: TeledropError) -> Response:
    """The error as JSON when the client asks for it, else one line of plain text."""
    headers = {}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="teledrop"'
    if wants_json(request):
        body = {"error": {"code": error.code, "message": error.message}}
        return json_response(body, error.status, headers)
    return text_response(f"{error.message}\n", error.status, headers)


def content_disposition(inline: bool, filename: str) -> str:
    """RFC 6266: an ASCII ``filename`` fallback and the exact name in ``filename*``.
    Filenames are stored without control characters; quoting handles the rest."""
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace("?", "_")
    options = {"filename": ascii_name}
    if ascii_name != filename:
        options["filename*"] = "UTF-8''" + quote(filename, safe="!#$&+-.^_`|~")
    return dump_options_header("inline" if inline else "attachment", options)


def is_inline(content_type: str) -> bool:
    return content_type in INLINE_TYPES or content_type.startswith(INLINE_PREFIXES)


def file_response(environ: dict[str, Any], drop: Drop, f: BinaryIO) -> Response:
    """The blob with range and conditional handling. A full response goes out through
    ``wsgi.file_wrapper`` (gunicorn: sendfile)."""
    inline = is_inline(drop.content_type)
    response = Response(wrap_file(environ, f), mimetype=drop.content_type,
                        direct_passthrough=True)
    response.content_length = drop.size
    response.headers["Content-Disposition"] = content_disposition(inline, drop.filename)
    # Chrome's PDF viewer refuses to run in a sandboxed document.
    sandbox = "" if drop.content_type == "application/pdf" else "; sandbox"
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP + sandbox
    response.headers["Cache-Control"] = "private, no-cache"
    response.set_etag(drop.hash)
    response.last_modified = drop.created_at
    response.make_conditional(environ, accept_ranges=True, complete_length=drop.size)
    return response
