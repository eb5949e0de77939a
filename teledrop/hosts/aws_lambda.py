"""The AWS Lambda host: ``teledrop.hosts.aws_lambda.handler`` behind a Function URL or an
API Gateway HTTP API (payload format 2.0).

Written against the core, like the WSGI app, not around it: an event becomes the plain
objects core takes, and a :class:`~teledrop.hosts.http.Reply` becomes the function's
result. What differs from the WSGI host follows from Lambda itself:

- A function keeps nothing between invocations that another may not need, so the only
  backends are ``s3_storage`` and ``postgres_meta``; any other stops the cold start with
  one line.
- A request body arrives whole inside the event (6 MB at most, a third more as base64):
  a file of up to :data:`EVENT_FILE_LIMIT` bytes may be uploaded the ordinary way, a
  larger one is refused with ``413`` naming direct uploads, whose bytes go straight to
  the bucket. tus (``/api/uploads``) needs a body streamed over many requests: ``501``.
- A response leaves through the event too, so a download is counted, then redirected to
  a presigned GET, whatever ``downloads`` says; ``HEAD`` answers the headers a proxied GET
  would carry and never mints a URL.

The pages are the WSGI host's (:mod:`.pages`, :mod:`.assets`), but the upload page's script
sends files as direct uploads, the one way a large file reaches a function's bucket. Each
event writes the WSGI host's access-log line (:mod:`.access`), with the invocation's id.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from werkzeug.datastructures import Headers, MultiDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import Map, Rule

from teledrop import composition, logs
from teledrop.composition import PluginTeledrop
from teledrop.core import direct, drops, manage
from teledrop.core.config import Config, load_config
from teledrop.core.drop import Drop
from teledrop.core.errors import ConfigError, Gone, InvalidFilename, MalformedBody, \
    NotFound, NotImplementedByStorage, PasswordRequired, StartupError, TeledropError, \
    TooLarge, TooManyAttempts
from teledrop.core.owners import require_owner
from teledrop.core.upload import Upload, UploadRequest, check_size, create_drop
from teledrop.core.units import format_size

from . import http, pages
from .access import log_access
from .assets import asset_reply
from .body import COMPLETE_BODY_LIMIT, MULTIPART_OVERHEAD, SMALL_BODY_LIMIT, \
    multipart_boundary, multipart_receiver, raw_receiver
from .download import bucket_origin, plan_file, presigned_url, redirect_headers
from .openapi import openapi_document
from .qr import qr_reply
from .usage import usage_text

log = logging.getLogger(__name__)

#: The largest file an upload through an event may carry, inclusive: a 6 MB event holds
#: about 4.4 MiB once base64 has grown it by a third, and framing needs some room.
EVENT_FILE_LIMIT = 4 * 1024 * 1024
#: Where a larger file goes instead.
DIRECT_UPLOADS = http.DIRECT_UPLOADS
#: The only backends a function may use: everything else lives on one machine's disk.
BACKENDS = {"storage": "s3_storage", "metadata": "postgres_meta"}
#: Under Lambda a download always redirects.
OVERRIDES = {"plugins": {"s3_storage": {"downloads": "redirect"}}}


def _rule(path: str, *methods: str, endpoint: str) -> Rule:
    # Every route takes OPTIONS too, as Flask's do: a 405's Allow names the same methods.
    return Rule(path, methods=[*methods, "OPTIONS"] if methods else None, endpoint=endpoint)


_ROUTES = Map([
    _rule("/", "GET", endpoint="index"),
    _rule("/", "POST", endpoint="upload_form"),
    _rule("/", "PUT", endpoint="upload_raw"),
    _rule("/<filename>", "PUT", endpoint="upload_raw"),
    _rule("/<slug>", "GET", "POST", endpoint="download"),
    _rule("/<slug>/<path:name>", "GET", "POST", endpoint="download"),
    _rule("/<slug>", "DELETE", endpoint="delete"),
    _rule("/api/drops", "GET", endpoint="list_drops"),
    _rule("/api/drops/<slug>", "GET", endpoint="drop_info"),
    _rule("/api/drops/<slug>", "PATCH", endpoint="edit_drop"),
    _rule("/openapi.json", "GET", endpoint="openapi"),
    _rule("/healthz", "GET", endpoint="healthz"),
    _rule("/static/<path:name>", "GET", endpoint="static"),
    _rule("/api/qr.svg", "GET", endpoint="qr"),
    _rule("/metrics", "GET", endpoint="metrics"),
    _rule(DIRECT_UPLOADS, "POST", endpoint="direct_create"),
    _rule(f"{DIRECT_UPLOADS}/<upload_id>/complete", "POST", endpoint="direct_complete"),
    _rule(f"{DIRECT_UPLOADS}/<upload_id>", "DELETE", endpoint="direct_abort"),
    _rule("/api/uploads", endpoint="tus"),
    _rule("/api/uploads/<upload_id>", endpoint="tus"),
])


def check_backends(config: Config) -> None:
    """:raises ConfigError: (one line) unless ``config`` names the backends a function can
    share with every other: an S3 bucket and PostgreSQL."""
    for kind, wanted in BACKENDS.items():
        name = getattr(config, kind).plugin
        if name != wanted:
            key = f"{kind}.plugin"
            raise ConfigError(config.source_of(key), key,
                              f"the AWS Lambda host needs {wanted}, not {name!r}: a function "
                              "keeps nothing on its own disk")


def start(environ: Mapping[str, str] | None = None, plugins: Iterable[object] = ()
          ) -> PluginTeledrop:
    """One running teledrop for this function's instance, configured by ``environ``
    (default: the process's): ``TELEDROP_CONFIG`` and the ``TELEDROP_*`` variables.
    ``plugins`` are registered after the installed ones (embedding, tests).

    :raises StartupError: (one line, logged) when the config or the backends are wrong.
    """
    try:
        config = load_config(environ=os.environ if environ is None else environ,
                             overrides=OVERRIDES)
        logs.configure(config.server.log_level)
        check_backends(config)
        return composition.start(config, plugins)
    except StartupError as exc:
        log.error("teledrop: %s", exc)
        raise


@dataclass
class Request:
    """An event as the views see it."""

    method: str
    #: the path under the app, decoded; ``raw_path`` as the client sent it (percent-encoded)
    path: str
    raw_path: str
    #: the stage's prefix (``/prod``) on an HTTP API stage other than ``$default``
    root: str
    query: MultiDict[str, str]
    headers: Headers
    body: bytes
    source_ip: str | None
    #: what the views learn about the request, for its answer and its access-log line:
    #: the drop it dealt with, the code of an error it answered with a page, and whether
    #: the answer varies by the headers that choose a page or the bytes
    drop: Drop | None = field(default=None, compare=False)
    error: str | None = field(default=None, compare=False)
    vary: bool = field(default=False, compare=False)

    @property
    def args(self) -> dict[str, str]:
        """The query as core takes it: each name's first value, as the WSGI host gives it."""
        return {key: self.query[key] for key in self.query}


def parse_event(event: Mapping[str, Any]) -> Request:
    """A payload format 2.0 event as a :class:`Request`.

    Header names arrive lower-cased, repeated headers joined with commas, cookies in a list
    of their own; ``rawQueryString`` keeps a repeated key's values apart where
    ``queryStringParameters`` joins them; a body that is not text arrives as base64.
    """
    context = event.get("requestContext") or {}
    http_context = context.get("http") or {}
    headers = Headers(list((event.get("headers") or {}).items()))
    cookies = event.get("cookies") or []
    if cookies:
        headers["Cookie"] = "; ".join(cookies)
    raw_path = event.get("rawPath") or http_context.get("path") or "/"
    root = ""
    stage = context.get("stage")
    if stage and stage != "$default" and (raw_path == f"/{stage}"
                                           or raw_path.startswith(f"/{stage}/")):
        root, raw_path = f"/{stage}", raw_path[len(stage) + 1:] or "/"
    return Request(
        method=(http_context.get("method") or "GET").upper(),
        path=unquote_to_bytes(raw_path).decode("utf-8", "replace"),
        raw_path=raw_path,
        root=root,
        query=_query(event),
        headers=headers,
        body=_body(event),
        source_ip=http_context.get("sourceIp"),
    )


def _query(event: Mapping[str, Any]) -> MultiDict[str, str]:
    raw = event.get("rawQueryString")
    if raw is None:  # only the joined form: each value as it came
        return MultiDict(event.get("queryStringParameters") or {})
    return MultiDict(parse_qsl(raw, keep_blank_values=True, errors="replace"))


def _body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return body.encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error:
        raise MalformedBody("the event's body is not valid base64") from None


def result(reply: http.Reply, head: bool = False) -> dict[str, Any]:
    """A reply as payload format 2.0's result. A body that is not valid UTF-8 travels as
    base64; ``head`` drops the body and keeps its length."""
    headers = {**http.DEFAULT_HEADERS, **reply.headers, **http.SECURITY_HEADERS}
    if reply.content_type is not None:
        headers["Content-Type"] = reply.content_type
    body = b"" if head else reply.body
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    return {"statusCode": reply.status, "headers": headers, "body": text,
            "isBase64Encoded": encoded}


class LambdaHost:
    """Answers events with one running teledrop."""

    def __init__(self, service: PluginTeledrop) -> None:
        self.service = service
        #: where the pages' browsers reach the bucket (part PUTs, redirected downloads)
        self.bucket = bucket_origin(service.storage)
        self.views: dict[str, Callable[..., http.Reply]] = {
            name: getattr(self, name) for name in {rule.endpoint for rule in _ROUTES.iter_rules()}
        }

    def __call__(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        started = time.perf_counter()
        request: Request | None = None
        error: str | None = None
        try:
            request = parse_event(event)
            reply = self.dispatch(request)
        except TeledropError as exc:
            error = exc.code
            reply = http.error_reply(request.headers if request else {}, exc)
        except Exception:
            log.exception("unhandled error on %s", event.get("rawPath"))
            failure = TeledropError("internal server error")
            error = failure.code
            reply = http.error_reply(request.headers if request else {}, failure)
        if request is not None:
            reply.headers.update(http.cors_headers(request.path, request.headers))
            if request.vary:
                reply.headers["Vary"] = ", ".join(pages.VARY)
        head = request is not None and request.method == "HEAD"
        self.log(event, context, request, reply, error, time.perf_counter() - started)
        return result(reply, head)

    @staticmethod
    def log(event: Mapping[str, Any], context: Any, request: Request | None,
            reply: http.Reply, error: str | None, elapsed: float) -> None:
        """The event's access-log line, as the WSGI host writes one, with the invocation's
        id (``context.aws_request_id``)."""
        http_context = (event.get("requestContext") or {}).get("http") or {}
        method = request.method if request else str(http_context.get("method") or "GET")
        path = request.path if request else str(event.get("rawPath") or "/")
        log_access(method, path, reply.status, elapsed, request.drop if request else None,
                   len(reply.body), error or (request.error if request else None),
                   http_context.get("sourceIp"), getattr(context, "aws_request_id", None))

    def dispatch(self, request: Request) -> http.Reply:
        adapter = _ROUTES.bind("lambda")
        try:
            endpoint, values = adapter.match(request.path, request.method)
        except HTTPException as exc:
            raise http.http_error(exc) from None
        if request.method == "OPTIONS" and endpoint != "tus":  # as Flask answers it
            return http.Reply(200, {"Allow": ", ".join(adapter.allowed_methods(request.path))})
        try:
            return self.views[endpoint](request, **values)
        except HTTPException as exc:
            raise http.http_error(exc) from None

    # -- helpers -------------------------------------------------------------------------

    def base_url(self, request: Request) -> str:
        configured = self.service.config.server.base_url.rstrip("/")
        if configured:
            return configured
        scheme = request.headers.get("X-Forwarded-Proto", "https").split(",")[0].strip()
        host = request.headers.get("Host", "localhost")
        return f"{scheme}://{host}{request.root}"

    def drop_url(self, request: Request, drop: Drop) -> str:
        return f"{self.base_url(request)}/{drop.slug}"

    def checked(self, request: Request, slug: str) -> str:
        adapter = _ROUTES.bind("lambda")
        return http.checked(slug, request.method, lambda: adapter.allowed_methods(request.path))

    def reader(self, request: Request) -> drops.Reader:
        return http.reader_of(self.service, request.headers, request.args,
                              lambda: self.form_password(request))

    @staticmethod
    def form_password(request: Request) -> str | None:
        """The upload page's password form posts the password in the body."""
        mimetype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if request.method != "POST" or mimetype != "application/x-www-form-urlencoded":
            return None
        small_body(request)
        form = MultiDict(parse_qsl(request.body.decode("utf-8", "replace"),
                                   keep_blank_values=True))
        return form.get("password")

    @staticmethod
    def upload_request(request: Request, filename: str | None = None,
                       declared_size: int | None = None, max_size: int | None = None
                       ) -> UploadRequest:
        return UploadRequest(method=request.method, headers=request.headers,
                             query=request.args, remote_addr=request.source_ip,
                             declared_size=declared_size, max_size=max_size, filename=filename)

    def upload(self, request: Request, receive: Callable[[Upload], None],
               filename: str | None = None, declared_size: int | None = None,
               max_size: int | None = None) -> http.Reply:
        upload_request = self.upload_request(request, filename, declared_size, max_size)
        drop = create_drop(self.service, upload_request, within_event(receive))
        request.drop = drop
        url = self.drop_url(request, drop)
        return http.created_reply(request.headers, drop, url, f"{request.root}/{drop.slug}",
                                  lambda: pages.result_html(drop, url))

    # -- views ---------------------------------------------------------------------------

    def index(self, request: Request) -> http.Reply:
        """A browser's upload page, sending its files as direct uploads; curl's usage."""
        if http.wants_html(request.headers):
            page = pages.index_html(self.service.config, pages.DIRECT, EVENT_FILE_LIMIT,
                                    self.bucket)
            return http.Reply(200, {}, page.encode(), http.HTML_TYPE)
        return http.text_reply(usage_text(self.base_url(request), self.service.config.limits,
                                          EVENT_FILE_LIMIT))

    def upload_form(self, request: Request) -> http.Reply:
        boundary = multipart_boundary(request.headers.get("Content-Type"))
        size = len(request.body)
        check_size(size, self.service.config.limits.max_upload_size, MULTIPART_OVERHEAD)
        refuse_past_event(size - MULTIPART_OVERHEAD)
        return self.upload(request, multipart_receiver(io.BytesIO(request.body), boundary),
                           max_size=size)

    def upload_raw(self, request: Request, filename: str | None = None) -> http.Reply:
        if filename is not None:
            filename = utf8_name(request.raw_path)
        size = len(request.body)
        check_size(size, self.service.config.limits.max_upload_size)
        refuse_past_event(size)
        receive = raw_receiver(io.BytesIO(request.body), filename,
                               request.headers.get("Content-Type"), size)
        return self.upload(request, receive, filename, declared_size=size)

    def download(self, request: Request, slug: str, name: str | None = None) -> http.Reply:
        """Counted, then redirected to the bucket; ``HEAD`` answers the headers of the
        bytes, as a proxied GET would, and mints no URL."""
        if name is None:
            request.vary = True
        try:
            slug, who = self.checked(request, slug), self.reader(request)
            drop = drops.find_drop(self.service, slug, who)
        except (PasswordRequired, TooManyAttempts) as exc:
            page = pages.password_reply(request.headers, request.path, exc)
            if page is None:
                raise
            request.error = exc.code
            return page
        except (NotFound, Gone) as exc:
            request.vary = True  # a page here too for a browser: the error varies as well
            page = pages.missing_reply(request.method, request.headers, request.args,
                                       request.path, exc)
            if page is None:
                raise
            request.error = exc.code
            return page
        request.drop = drop
        if name is None and pages.wants_landing(request.method, request.headers, request.args):
            return pages.landing_reply(drop, self.drop_url(request, drop), who.password,
                                      self.bucket)
        preview = "preview" in request.query
        if request.method == "HEAD":
            plan = plan_file(request.headers, drop, preview)
            return http.Reply(plan.status, plan.headers)
        url = presigned_url(self.service.storage, drop, preview)
        if url is None:  # check_backends keeps this from happening
            raise NotImplementedByStorage("the storage cannot hand out download URLs")
        status, headers = redirect_headers(request.headers, drop, url, preview)
        if status == 302:
            drops.claim_download(self.service, drop)
        return http.Reply(status, headers)

    def delete(self, request: Request, slug: str) -> http.Reply:
        request.drop = drops.delete_drop(self.service, self.checked(request, slug),
                                         request.headers.get("X-Delete-Token"),
                                         self.reader(request))
        return http.Reply(204)

    def drop_info(self, request: Request, slug: str) -> http.Reply:
        drop = drops.find_drop(self.service, self.checked(request, slug), self.reader(request))
        return http.json_reply(drop.to_json(self.drop_url(request, drop)))

    def list_drops(self, request: Request) -> http.Reply:
        owner = require_owner(self.service, request.headers)
        page = manage.list_drops(self.service, owner, request.args)
        return http.json_reply(http.owned_page(page, lambda d: self.drop_url(request, d)))

    def edit_drop(self, request: Request, slug: str) -> http.Reply:
        owner = require_owner(self.service, request.headers)
        small_body(request)
        drop = manage.update_drop(self.service, owner, http.sluglike(slug),
                                  http.json_object(request.body))
        return http.json_reply(drop.to_json(self.drop_url(request, drop)))

    def openapi(self, request: Request) -> http.Reply:
        return http.json_reply(openapi_document())

    def healthz(self, request: Request) -> http.Reply:
        return http.health_reply(self.service)

    def static(self, request: Request, name: str) -> http.Reply:
        """The pages' stylesheet, scripts and icon."""
        return asset_reply(name, request.headers)

    def qr(self, request: Request) -> http.Reply:
        return qr_reply(request.query.get("link", ""), self.base_url(request))

    def metrics(self, request: Request) -> http.Reply:
        # Counters of one short-lived instance mean nothing: CloudWatch has the function's.
        raise NotFound("metrics are not served by the AWS Lambda host")

    def direct_create(self, request: Request) -> http.Reply:
        """``201`` with the upload's id, part size, part URLs and expiry."""
        direct.direct_uploads_of(self.service)  # 501 before anything else
        small_body(request)
        upload = direct.create_direct_upload(self.service, self.upload_request(request),
                                             http.json_body(request.body))
        return http.json_reply(upload.to_json(), 201, {
            "Location": f"{request.root}{DIRECT_UPLOADS}/{upload.id}",
            # the URLs are capabilities: no cache keeps them
            "Cache-Control": "no-store"})

    def direct_complete(self, request: Request, upload_id: str) -> http.Reply:
        """``201`` with the drop as JSON and its delete token, as an upload's answer."""
        direct.direct_uploads_of(self.service)
        small_body(request, COMPLETE_BODY_LIMIT)
        drop = direct.complete_direct_upload(self.service, upload_id, http.json_body(request.body))
        request.drop = drop
        return http.json_reply(drop.to_json(self.drop_url(request, drop), with_delete_token=True),
                               201, {"Location": f"{request.root}/{drop.slug}",
                                     "X-Delete-Token": drop.delete_token or "",
                                     "Cache-Control": "no-store"})

    def direct_abort(self, request: Request, upload_id: str) -> http.Reply:
        direct.abort_direct_upload(self.service, upload_id)
        return http.Reply(204)

    def tus(self, request: Request, upload_id: str | None = None) -> http.Reply:
        raise NotImplementedByStorage(
            "resumable uploads (tus) need a streamed body, which AWS Lambda does not "
            f"have: upload with POST {DIRECT_UPLOADS}")


def refuse_past_event(size: int) -> None:
    """:raises TooLarge: for a file larger than an event may carry, naming the way that
    takes it."""
    if size > EVENT_FILE_LIMIT:
        raise TooLarge(f"a file sent through this server has at most "
                       f"{format_size(EVENT_FILE_LIMIT)}: upload it with POST "
                       f"{DIRECT_UPLOADS} (teledrop upload does)")


def within_event(receive: Callable[[Upload], None]) -> Callable[[Upload], None]:
    """``receive``, then the event's own limit on the file it staged (a multipart body's
    framing is not counted), before anything is committed."""

    def receive_within(upload: Upload) -> None:
        receive(upload)
        if upload.writer is not None:
            refuse_past_event(upload.writer.size)

    return receive_within


def small_body(request: Request, limit: int = SMALL_BODY_LIMIT) -> None:
    """:raises RequestEntityTooLarge: (werkzeug's, as the WSGI host refuses it) for a body
    larger than any request but an upload needs."""
    if len(request.body) > limit:
        raise RequestEntityTooLarge()


def utf8_name(raw_path: str) -> str:
    """The filename of ``PUT /{filename}``, from the path as the client sent it.

    :raises InvalidFilename: when its bytes are not UTF-8 (stored, they would turn into
    U+FFFD)."""
    try:
        return unquote_to_bytes(raw_path.lstrip("/")).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidFilename("the filename in the path is not UTF-8: percent-encode the "
                              "name's UTF-8 bytes") from None


_host: LambdaHost | None = None


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The function's entry point. The first event of an instance starts teledrop (unless
    the module's import already did, inside Lambda)."""
    global _host
    if _host is None:
        _host = LambdaHost(start())
    return _host(event, context)


if "AWS_LAMBDA_RUNTIME_API" in os.environ:
    # Inside Lambda, start while the instance initialises: a wrong config fails the cold
    # start, with its one line in the function's log, before any request waits on it.
    _host = LambdaHost(start())
