"""QR codes of drop links, drawn on the server as SVG by segno (no outside service sees a
link). The landing and result pages embed one as a ``data:`` URI; the upload page's script
asks ``GET /api/qr.svg?link=URL`` for each new drop, which draws only links to this
server's own drops, so the route is no QR service for anything else."""

from __future__ import annotations

import io

import segno
from flask import Blueprint, Response, request

from teledrop.core.errors import BadRequest
from teledrop.core.slugs import could_be_slug

from . import routes

#: Medium error correction, dark modules on white with segno's 4-module quiet zone: it reads
#: on a dark page too.
_STYLE = {"scale": 5, "dark": "#000", "light": "#fff", "border": 4}

qr_bp = Blueprint("qr", __name__)


def qr_svg(link: str) -> bytes:
    out = io.BytesIO()
    segno.make(link, error="m").save(out, kind="svg", xmldecl=False, **_STYLE)
    return out.getvalue()


def qr_data_uri(link: str) -> str:
    return segno.make(link, error="m").svg_data_uri(**_STYLE)


@qr_bp.get("/api/qr.svg")
def qr_image() -> Response:
    link = request.args.get("link", "")
    prefix = routes.base_url() + "/"
    if not link.startswith(prefix) or not could_be_slug(link[len(prefix):]):
        raise BadRequest("link must be the link of a drop on this server")
    response = Response(qr_svg(link), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "public, max-age=86400"
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response
