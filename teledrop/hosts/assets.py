"""The pages' static files (``/static/...``: stylesheet, scripts, icon) for a host with no
web framework to serve them. They are small and few, so each answer carries the whole
file; ``ETag`` lets a browser keep its copy and ask again with ``If-None-Match``.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from teledrop.core.errors import NotFound

from .http import Reply

#: The files the WSGI host serves under ``/static`` too (``vendor/`` is built by ``make``).
STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
#: JavaScript modules must be labelled as JavaScript, whatever the platform's table says.
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".svg": "image/svg+xml; charset=utf-8"}


@cache
def _load(name: str) -> tuple[bytes, str, str]:
    path = (STATIC / name).resolve()
    if not path.is_relative_to(STATIC) or not path.is_file():
        raise NotFound()
    body = path.read_bytes()
    content_type = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] \
        or "application/octet-stream"
    return body, content_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def asset_reply(name: str, headers: Mapping[str, str]) -> Reply:
    """``/static/{name}``, or ``304`` when ``If-None-Match`` names its current copy.

    :raises NotFound: for a name outside the static files."""
    body, content_type, etag = _load(name)
    cache_headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in (tag.strip() for tag in headers.get("If-None-Match", "").split(",")):
        return Reply(304, cache_headers)
    return Reply(200, cache_headers, body, content_type)
