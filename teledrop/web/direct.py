"""``/api/direct-uploads``: a file's bytes go from the client straight to the storage, in
parts, through presigned URLs; teledrop checks and commits the result. The rules live in
:mod:`teledrop.core.direct`; a walk-through is in docs/direct-uploads.md.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from teledrop.core import direct
from teledrop.hosts.body import COMPLETE_BODY_LIMIT
from teledrop.hosts.http import DIRECT_UPLOADS, cors_headers, json_body

from . import observe
from .responses import json_response
from .routes import drop_url, service, upload_request

PREFIX = DIRECT_UPLOADS
direct_bp = Blueprint("direct", __name__, url_prefix=PREFIX)


@direct_bp.after_app_request
def cross_origin(response: Response) -> Response:
    """CORS for a browser's script on another origin, on every answer under the prefix
    (preflights, errors and 405s included)."""
    response.headers.update(cors_headers(request.path, request.headers))
    return response


@direct_bp.post("")
def create() -> Response:
    """``201`` with the upload's id, part size, part URLs and expiry."""
    direct.direct_uploads_of(service())  # 501 before anything else: clients fall back
    upload = direct.create_direct_upload(service(), upload_request(),
                                         json_body(request.get_data()))
    return json_response(upload.to_json(), 201,
                         {"Location": f"{request.script_root}{PREFIX}/{upload.id}",
                          # the URLs are capabilities: no cache keeps them
                          "Cache-Control": "no-store"})


@direct_bp.post("/<upload_id>/complete")
def complete(upload_id: str) -> Response:
    """``201`` with the drop as JSON and its delete token, as an upload's answer."""
    direct.direct_uploads_of(service())
    request.max_content_length = COMPLETE_BODY_LIMIT
    drop = direct.complete_direct_upload(service(), upload_id, json_body(request.get_data()))
    observe.note_drop(drop)
    return json_response(drop.to_json(drop_url(drop), with_delete_token=True), 201,
                         {"Location": f"{request.script_root}/{drop.slug}",
                          "X-Delete-Token": drop.delete_token or "",
                          "Cache-Control": "no-store"})


@direct_bp.delete("/<upload_id>")
def abort(upload_id: str) -> Response:
    direct.abort_direct_upload(service(), upload_id)
    return Response(status=204)
