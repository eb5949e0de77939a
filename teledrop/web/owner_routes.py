"""An owner's API: list and edit their drops (``Authorization: Bearer`` names the owner)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from teledrop.core import manage
from teledrop.core.owners import require_owner
from teledrop.hosts.http import json_object, owned_page, sluglike

from .responses import json_response
from .routes import drop_url, service

owner_bp = Blueprint("teledrop_owner", __name__)


@owner_bp.get("/api/drops")
def list_drops() -> Response:
    """``page``, ``page_size`` (≤ 100), ``sort``, ``order``, ``private``, ``has_password``,
    ``expired``, ``q`` (a search in filenames and titles)."""
    owner = require_owner(service(), request.headers)
    page = manage.list_drops(service(), owner, request.args.to_dict())
    return json_response(owned_page(page, drop_url))


@owner_bp.patch("/api/drops/<slug>")
def edit_drop(slug: str) -> Response:
    owner = require_owner(service(), request.headers)
    changes = json_object(request.get_data())
    drop = manage.update_drop(service(), owner, sluglike(slug), changes)
    return json_response(drop.to_json(drop_url(drop)))
