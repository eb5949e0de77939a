"""HTTP routes: uploads, downloads, drop info and deletion. No business rule lives here: each view calls core."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from flask import Blueprint, Response, after_this_request, current_app, request

from teledrop.core import drops
from teledrop.core.drop import Drop
from teledrop.core.errors import Gone, InvalidFilename, LengthRequired, MalformedBody, \
    NotFound, PasswordRequired, TooManyAttempts
from teledrop.core.service import Teledrop
from teledrop.core.upload import UploadRequest, check_size, create_drop
from teledrop.hosts.body import MULTIPART_OVERHEAD, multipart_boundary, multipart_receiver, \
    raw_receiver
from teledrop.hosts.download import bucket_origin, presigned_url
from teledrop.hosts.http import checked as http_checked
from teledrop.hosts.http import created_reply, health_reply, reader_of
from teledrop.hosts.openapi import openapi_document
from teledrop.hosts.pages import index_html, landing_reply, missing_reply, password_reply, \
    result_html
from teledrop.hosts.usage import usage_text
from teledrop.metrics import CONTENT_TYPE_LATEST

from . import observe
from .download import file_response, redirect_response
from .landing import add_vary, wants_landing_page
from .responses import flask_response, json_response, text_response, wants_html
from .socket_body import SocketBody

bp = Blueprint("teledrop", __name__)


def service() -> Teledrop:
    return current_app.extensions["teledrop"]


def base_url() -> str:
    return service().config.server.base_url.rstrip("/") or request.url_root.rstrip("/")


def drop_url(drop: Drop) -> str:
    return f"{base_url()}/{drop.slug}"


def upload_request(filename: str | None = None, declared_size: int | None = None,
                   max_size: int | None = None) -> UploadRequest:
    return UploadRequest(
        method=request.method,
        headers=request.headers,
        query={key: request.args[key] for key in request.args},
        remote_addr=request.remote_addr,
        declared_size=declared_size,
        max_size=max_size,
        filename=filename,
    )


def allow_upload_body(overhead: int) -> None:
    """Lift this request's body limit from the app's small one to an upload's: the file's
    limit plus ``overhead`` for what frames it. A Content-Length past it is refused before
    the body is opened, so the reason is teledrop's, not werkzeug's."""
    limit = service().config.limits.max_upload_size
    check_size(request.content_length, limit, overhead)
    request.max_content_length = limit + overhead


def body_stream() -> Any:
    """The request body. Under gunicorn, teledrop's worker has given the client's socket
    the idle timeout (:mod:`teledrop.worker`): a stalled upload ends in ``TimeoutError``.

    A body is read straight from a server that delimits it itself (gunicorn sets
    ``wsgi.input_terminated``): werkzeug's limiting wrapper would copy every chunk once
    more, and hide a timeout as a disconnect. A body of known length under gunicorn is
    received straight from its socket (:mod:`.socket_body`). The core writer enforces the
    size limit, and the multipart reader bounds everything around the file.
    """
    codings = [c.strip().lower() for c in request.headers.get("Transfer-Encoding", "").split(",")
               if c.strip()]
    if codings and codings != ["chunked"]:
        # A compressed transfer coding would be stored compressed: refuse it.
        raise MalformedBody("only the chunked transfer coding is accepted")
    direct = SocketBody.wrap(request.environ)
    if direct is not None:
        return direct
    if request.environ.get("wsgi.input_terminated"):
        return request.environ["wsgi.input"]
    return request.stream


def path_is_utf8() -> bool:
    """Whether the request's path, as the client sent it, decodes as UTF-8. werkzeug turns
    other bytes into U+FFFD, which would be stored as part of a filename."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    path = unquote_to_bytes(raw.split("?", 1)[0]) if raw \
        else request.environ.get("PATH_INFO", "").encode("latin-1")
    try:
        path.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def created(drop: Drop) -> Response:
    observe.note_drop(drop)
    url = drop_url(drop)
    return flask_response(created_reply(request.headers, drop, url,
                                        f"{request.script_root}/{drop.slug}",
                                        lambda: result_html(drop, url)))


@bp.get("/")
def index() -> Response:
    config = service().config
    if wants_html(request):
        return Response(index_html(config), mimetype="text/html")
    return text_response(usage_text(base_url(), config.limits))


@bp.post("/")
def upload_form() -> Response:
    boundary = multipart_boundary(request.headers.get("Content-Type"))
    allow_upload_body(MULTIPART_OVERHEAD)
    receive = multipart_receiver(body_stream(), boundary)
    req = upload_request(max_size=request.content_length)
    return created(create_drop(service(), req, receive))


@bp.put("/")
@bp.put("/<filename>")
def upload_raw(filename: str | None = None) -> Response:
    if request.content_length is None and "Transfer-Encoding" not in request.headers:
        # A body ended by closing the connection (HTTP/1.0) cannot be told from a cut one.
        raise LengthRequired()
    if filename is not None and not path_is_utf8():
        raise InvalidFilename("the filename in the path is not UTF-8: percent-encode the "
                              "name's UTF-8 bytes")
    allow_upload_body(0)
    receive = raw_receiver(body_stream(), filename, request.headers.get("Content-Type"),
                           request.content_length)
    req = upload_request(filename, declared_size=request.content_length)
    return created(create_drop(service(), req, receive))


@bp.get("/<slug>")
@bp.get("/<slug>/<path:name>")
@bp.post("/<slug>")
@bp.post("/<slug>/<path:name>")
def download(slug: str, name: str | None = None) -> Response:
    """A drop's bytes, or for a browser opening ``/{slug}`` its landing page. POST is the
    password form (the password never goes into a URL)."""
    if name is None:
        after_this_request(add_vary)
    try:
        slug, who = checked(slug), reader()
        drop = drops.find_drop(service(), slug, who)
    except (PasswordRequired, TooManyAttempts) as exc:
        page = password_reply(request.headers, request.path, exc)
        if page is None:
            raise
        observe.note_error(exc.code)
        return flask_response(page)
    except (NotFound, Gone) as exc:
        if name is not None:  # a page here too for a browser: the error varies as well
            after_this_request(add_vary)
        page = missing_reply(request.method, request.headers, request.args, request.path, exc)
        if page is None:
            raise
        observe.note_error(exc.code)
        return flask_response(page)
    observe.note_drop(drop)
    if name is None and wants_landing_page(request):
        return flask_response(landing_reply(drop, drop_url(drop), who.password,
                                            bucket_origin(service().storage)))
    preview = "preview" in request.args
    # HEAD never mints a URL: it answers the headers of the bytes, as a proxied GET would.
    url = None if request.method == "HEAD" else presigned_url(service().storage, drop, preview)
    if url is not None:
        response = redirect_response(request, drop, url, preview)
        if response.status_code == 302:
            drops.claim_download(service(), drop)
        return response
    f = drops.open_blob(service(), drop)
    try:
        response = file_response(request, drop, f, preview=preview)
        if request.method != "HEAD" and response.status_code in (200, 206):
            drops.claim_download(service(), drop)
    except BaseException:
        f.close()
        raise
    return response


@bp.delete("/<slug>")
def delete(slug: str) -> Response:
    observe.note_drop(drops.delete_drop(service(), checked(slug),
                                        request.headers.get("X-Delete-Token"), reader()))
    return Response(status=204)


@bp.get("/api/drops/<slug>")
def drop_info(slug: str) -> Response:
    drop = drops.find_drop(service(), checked(slug), reader())
    return json_response(drop.to_json(drop_url(drop)))


@bp.get("/openapi.json")
def openapi() -> Response:
    return json_response(openapi_document())


@bp.get("/metrics")
def metrics() -> Response:
    if not service().config.server.metrics:
        raise NotFound("metrics are disabled ([server] metrics = false)")
    body = observe.metrics_of(current_app).exposition(service())
    return Response(body, mimetype=None, content_type=CONTENT_TYPE_LATEST)


@bp.get("/healthz")
def healthz() -> Response:
    return flask_response(health_reply(service()))


def reader() -> drops.Reader:
    return reader_of(service(), request.headers, request.args, form_password)


def form_password() -> str | None:
    """The upload page's password form posts the password in the body."""
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        return request.form.get("password")
    return None


def checked(slug: str) -> str:
    return http_checked(slug, request.method, lambda: current_app.url_map.bind_to_environ(
        request.environ).allowed_methods())
