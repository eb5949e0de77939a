"""QR codes of drop links, drawn on the server as SVG by segno (no outside service sees a
link). The landing and result pages embed one as a ``data:`` URI; the upload page's script
asks ``GET /api/qr.svg?link=URL`` for each new drop, which draws only links to this
server's own drops, so the route is no QR service for anything else."""

from __future__ import annotations

import io

import segno

from teledrop.core.errors import BadRequest
from teledrop.core.slugs import could_be_slug

from .http import Reply

#: Medium error correction, dark modules on white with segno's 4-module quiet zone: it reads
#: on a dark page too.
_STYLE = {"scale": 5, "dark": "#000", "light": "#fff", "border": 4}


def qr_svg(link: str) -> bytes:
    out = io.BytesIO()
    segno.make(link, error="m").save(out, kind="svg", xmldecl=False, **_STYLE)
    return out.getvalue()


def qr_data_uri(link: str) -> str:
    return segno.make(link, error="m").svg_data_uri(**_STYLE)


def qr_reply(link: str, base_url: str) -> Reply:
    """``GET /api/qr.svg?link=...`` for a server whose links start with ``base_url``.

    :raises BadRequest: for anything but the link of a drop on this server."""
    prefix = base_url.rstrip("/") + "/"
    if not link.startswith(prefix) or not could_be_slug(link[len(prefix):]):
        raise BadRequest("link must be the link of a drop on this server")
    return Reply(200, {"Cache-Control": "public, max-age=86400",
                       "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
                 qr_svg(link), "image/svg+xml")
