"""``/api/uploads``: resumable uploads over the tus 1.0 protocol (https://tus.io), with its
creation, creation-with-upload, creation-defer-length, termination and expiration
extensions. The rules live in :mod:`teledrop.core.resumable`; this module speaks the
protocol's headers. A walk-through is in docs/resumable.md.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response, request
from werkzeug.http import http_date

from teledrop.core import resumable
from teledrop.core.drop import Drop
from teledrop.core.errors import BadRequest, MethodNotAllowed, TeledropError, \
    UnsupportedMediaType
from teledrop.core.interfaces import UploadState
from teledrop.hosts.body import body_chunks, reads_from

from . import observe
from .responses import json_response
from .routes import allow_upload_body, base_url, body_stream, drop_url, service, upload_request

PREFIX = "/api/uploads"
TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,creation-defer-length,termination,expiration"
OFFSET_STREAM = "application/offset+octet-stream"
#: What a browser's script may send and read, across origins (the upload URL and the
#: bearer token are the only credentials: no cookie is involved).
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET, HEAD, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Tus-Resumable, "
                                    "Upload-Length, Upload-Metadata, Upload-Offset, "
                                    "Upload-Defer-Length, X-HTTP-Method-Override, "
                                    "X-Drop-Password, X-Requested-With",
    "Access-Control-Expose-Headers": "Location, Tus-Resumable, Tus-Version, Tus-Extension, "
                                     "Tus-Max-Size, Upload-Offset, Upload-Length, "
                                     "Upload-Metadata, Upload-Expires, Upload-Defer-Length, "
                                     "X-Drop-Url, X-Delete-Token",
    "Access-Control-Max-Age": "86400",
}
tus_bp = Blueprint("tus", __name__, url_prefix=PREFIX)


class VersionUnsupported(TeledropError):
    code, status, default_message = "tus_version_unsupported", 412, \
        f"send Tus-Resumable: {TUS_VERSION}"

    def headers(self) -> dict[str, str]:
        return {"Tus-Version": TUS_VERSION}


@tus_bp.after_app_request
def protocol_headers(response: Response) -> Response:
    """``Tus-Resumable`` on every response under the prefix (errors and 405s included),
    and CORS for browsers."""
    if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
        response.headers["Tus-Resumable"] = TUS_VERSION
        if "Origin" in request.headers:
            response.headers.update(CORS_HEADERS)
    return response


def require_version() -> None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise VersionUnsupported()


def header_int(name: str) -> int | None:
    value = request.headers.get(name)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        raise BadRequest(f"{name} must be a non-negative integer")
    return int(value)


def upload_url(state: UploadState) -> str:
    return f"{base_url()}{PREFIX}/{state.id}"


def state_headers(state: UploadState) -> dict[str, str]:
    return {"Upload-Offset": str(state.offset), "Upload-Expires": http_date(state.expires_at)}


def drop_headers(drop: Drop | None) -> dict[str, str]:
    """The link, and the delete token, of the drop a request completed."""
    if drop is None:
        return {}
    observe.note_drop(drop)
    return {"X-Drop-Url": drop_url(drop), "X-Delete-Token": drop.delete_token or ""}


def has_body() -> bool:
    return bool(request.content_length) or "chunked" in \
        request.headers.get("Transfer-Encoding", "").lower()


def empty(status: int, headers: dict[str, str]) -> Response:
    """A protocol answer: all in its headers."""
    response = Response(status=status, headers=headers)
    del response.headers["Content-Type"]
    return response


def require_offset_stream() -> None:
    if request.mimetype != OFFSET_STREAM:
        raise UnsupportedMediaType(f"send the bytes as Content-Type: {OFFSET_STREAM}")


def append_body(upload_id: str, offset: int, length: int | None = None) -> resumable.Progress:
    require_offset_stream()
    allow_upload_body(0)
    chunks = body_chunks(body_stream(), read_size=reads_from(offset)) if has_body() \
        else iter(())
    return resumable.append(service(), upload_id, offset, chunks, length,
                            request.content_length)


@tus_bp.route("", methods=["OPTIONS"])
@tus_bp.route("/<upload_id>", methods=["OPTIONS"])
def options(upload_id: str | None = None) -> Response:
    return empty(204, {
        "Tus-Version": TUS_VERSION, "Tus-Extension": EXTENSIONS,
        "Tus-Max-Size": str(service().config.limits.max_upload_size)})


@tus_bp.post("")
def create() -> Response:
    require_version()
    length = header_int("Upload-Length")
    deferred = request.headers.get("Upload-Defer-Length")
    if (length is None) == (deferred is None) or deferred not in (None, "1"):
        raise BadRequest("send Upload-Length, or Upload-Defer-Length: 1")
    if has_body():
        require_offset_stream()  # before the upload is made
    state = resumable.create_upload(service(), upload_request(), length,
                                    request.headers.get("Upload-Metadata"))
    headers = {"Location": upload_url(state), **state_headers(state)}
    if has_body():  # creation-with-upload
        progress: resumable.Progress | None = append_body(state.id, 0)
    elif length == 0:  # nothing will follow (tus clients send no PATCH): complete it now
        progress = resumable.append(service(), state.id, 0, iter(()))
    else:
        progress = None
    if progress is not None:
        headers.update(state_headers(progress.state))
        headers.update(drop_headers(progress.drop))
    return empty(201, headers)


@tus_bp.route("/<upload_id>", methods=["GET", "HEAD"])
def status(upload_id: str) -> Response:
    """HEAD: where the upload stands. GET: the drop it became, once complete."""
    if request.method == "HEAD":
        return head(upload_id)
    drop = resumable.completed_drop(service(), upload_id)
    return json_response(drop.to_json(drop_url(drop)), headers={"Cache-Control": "no-store"})


def head(upload_id: str) -> Response:
    require_version()
    state = resumable.find_upload(service(), upload_id)
    headers = {**state_headers(state), "Cache-Control": "no-store"}
    if state.length is None:
        headers["Upload-Defer-Length"] = "1"
    else:
        headers["Upload-Length"] = str(state.length)
    if state.metadata:
        headers["Upload-Metadata"] = state.metadata
    return empty(200, headers)


@tus_bp.patch("/<upload_id>")
def patch(upload_id: str) -> Response:
    require_version()
    offset = header_int("Upload-Offset")
    if offset is None:
        raise BadRequest("send Upload-Offset")
    progress = append_body(upload_id, offset, header_int("Upload-Length"))
    return empty(204, {**state_headers(progress.state), **drop_headers(progress.drop)})


@tus_bp.delete("/<upload_id>")
def terminate(upload_id: str) -> Response:
    require_version()
    resumable.terminate(service(), upload_id)
    return empty(204, {})


@tus_bp.post("/<upload_id>")
def overridden(upload_id: str) -> Response:
    """A POST standing in for a method some clients or proxies cannot send."""
    method = request.headers.get("X-HTTP-Method-Override", "").upper()
    views: dict[str, Callable[[str], Response]] = {"PATCH": patch, "DELETE": terminate,
                                                   "HEAD": head}
    if method not in views:
        raise MethodNotAllowed("POST an upload only with X-HTTP-Method-Override: "
                               + ", ".join(views))
    return views[method](upload_id)
