"""An owner's API: list and edit their drops (``Authorization: Bearer`` names the owner)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from teledrop.core import manage
from teledrop.core.errors import MalformedBody
from teledrop.core.owners import require_owner

from .responses import json_response
from .routes import drop_url, service, sluglike

owner_bp = Blueprint("teledrop_owner", __name__)


@owner_bp.get("/api/drops")
def list_drops() -> Response:
    """``page``, ``page_size`` (≤ 100), ``sort``, ``order``, ``private``, ``has_password``,
    ``expired``, ``q`` (a search in filenames and titles)."""
    owner = require_owner(service(), request.headers)
    page = manage.list_drops(service(), owner, request.args.to_dict())
    return json_response({
        "total": page.total,
        "page": page.page,
        "page_size": page.page_size,
        "drops": [drop.to_json(drop_url(drop)) for drop in page.drops],
    })


@owner_bp.patch("/api/drops/<slug>")
def edit_drop(slug: str) -> Response:
    owner = require_owner(service(), request.headers)
    try:
        # force: `curl -X PATCH -d '{...}'` sends JSON labelled as a form
        changes = request.get_json(force=True, silent=True)
    except RecursionError:  # nested too deep for the parser; silent only covers ValueError
        changes = None
    if not isinstance(changes, dict):
        raise MalformedBody("send a JSON object of the fields to change "
                            "(Content-Type: application/json)")
    drop = manage.update_drop(service(), owner, sluglike(slug), changes)
    return json_response(drop.to_json(drop_url(drop)))
