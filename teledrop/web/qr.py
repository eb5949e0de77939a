"""``GET /api/qr.svg``: the QR code of one of this server's drop links
(:mod:`teledrop.hosts.qr` draws it)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from teledrop.hosts.qr import qr_reply

from . import routes
from .responses import flask_response

qr_bp = Blueprint("qr", __name__)


@qr_bp.get("/api/qr.svg")
def qr_image() -> Response:
    return flask_response(qr_reply(request.args.get("link", ""), routes.base_url()))
