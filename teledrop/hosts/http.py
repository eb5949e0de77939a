"""What a host does around the core calls, with no web framework: content negotiation,
plain responses and error bodies, who is asking, and the small views every host serves.

A host turns a :class:`Reply` into its transport's response: the WSGI app into a Flask
``Response``, the Lambda host into a payload format 2.0 result. Both build their bodies
here, so an error reads the same whichever host answers it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import Authorization, MIMEAccept
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.http import parse_accept_header

from teledrop.core import drops, manage
from teledrop.core.drop import Drop
from teledrop.core.errors import BadRequest, MalformedBody, NotFound, StorageFull, TeledropError, TooLarge
from teledrop.core.owners import identify
from teledrop.core.passwords import reader_password
from teledrop.core.service import Teledrop
from teledrop.core.slugs import RESERVED, could_be_slug

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
#: On every response of every host.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # no page of teledrop's is ever framed
}
#: On every response that does not set its own.
DEFAULT_HEADERS = {"Referrer-Policy": "no-referrer"}
#: What a browser's script on any origin may send to and read from the direct-upload API
#: (``/api/direct-uploads``), as from tus's: the bearer token and the upload's id are the
#: only credentials, never a cookie, so no origin gains anything a page of its own lacks.
DIRECT_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Drop-Password",
    "Access-Control-Expose-Headers": "Location, X-Delete-Token",
    "Access-Control-Max-Age": "86400",
}
DIRECT_UPLOADS = "/api/direct-uploads"
#: Methods only the slug routes take: on one of the app's own paths they mean nothing.
SLUG_ONLY_METHODS = frozenset({"POST", "DELETE"})


@dataclass
class Reply:
    """A response as plain data. ``content_type`` is ``None`` for a response without a
    body of its own (204, 302, 304)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_type: str | None = None


def accepts(headers: Mapping[str, str], mime: str) -> bool:
    """Whether the request's ``Accept`` names ``mime`` with a quality above 0."""
    accept = parse_accept_header(headers.get("Accept"), MIMEAccept)
    return any(name == mime and q > 0 for name, q in accept)


def wants_json(headers: Mapping[str, str]) -> bool:
    return accepts(headers, "application/json")


def wants_html(headers: Mapping[str, str]) -> bool:
    return accepts(headers, "text/html")


def json_reply(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, dict(headers or {}), (json.dumps(data) + "\n").encode(), JSON_TYPE)


def text_reply(text: str, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, dict(headers or {}), text.encode(), TEXT_TYPE)


def error_reply(headers: Mapping[str, str], error: TeledropError) -> Reply:
    """The error as JSON when the client asks for it, else one line of plain text."""
    if wants_json(headers):
        body = {"error": {"code": error.code, "message": error.message}}
        return json_reply(body, error.status, error.headers())
    return text_reply(f"{error.message}\n", error.status, error.headers())


def http_error(exc: HTTPException) -> TeledropError:
    """werkzeug's refusal (a route's 404 or 405, a body over the limit) as teledrop's own
    error, carrying the headers werkzeug would send (``Allow``)."""
    error = _WerkzeugError(exc.description or exc.name,
                           {name: value for name, value in exc.get_headers()
                            if name.lower() != "content-type"})
    error.status = exc.code or 500
    # werkzeug's 413 is teledrop's too_large, whichever of the two refused the body.
    error.code = TooLarge.code if exc.code == 413 else \
        (exc.name or "error").lower().replace(" ", "_")
    return error


class _WerkzeugError(TeledropError):
    def __init__(self, message: str, headers: dict[str, str]) -> None:
        super().__init__(message)
        self._headers = headers

    def headers(self) -> dict[str, str]:
        return self._headers


def cors_headers(path: str, headers: Mapping[str, str]) -> dict[str, str]:
    """The CORS headers of an answer to a request for ``path`` (under the app) with these
    request headers: :data:`DIRECT_CORS_HEADERS` for a cross-origin request (one with an
    ``Origin``) to the direct-upload API, its preflight and its errors included."""
    if "Origin" in headers and (path == DIRECT_UPLOADS or path.startswith(DIRECT_UPLOADS + "/")):
        return dict(DIRECT_CORS_HEADERS)
    return {}


def json_body(body: bytes) -> Any:
    """A request's JSON body, whatever its label says.

    :raises BadRequest: when it is not JSON (or is ``null``)."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        value = None
    if value is None:
        raise BadRequest("send a JSON body (Content-Type: application/json)")
    return value


def json_object(body: bytes) -> dict[str, Any]:
    """An owner's JSON edit. Its label is not checked: ``curl -X PATCH -d '{...}'`` sends
    JSON labelled as a form.

    :raises MalformedBody: unless ``body`` is one JSON object."""
    try:
        changes = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep for the parser
        changes = None
    if not isinstance(changes, dict):
        raise MalformedBody("send a JSON object of the fields to change "
                            "(Content-Type: application/json)")
    return changes


def owned_page(page: manage.Page, url_of: Callable[[Drop], str]) -> dict[str, Any]:
    """One page of an owner's drops as JSON."""
    return {
        "total": page.total,
        "page": page.page,
        "page_size": page.page_size,
        "drops": [drop.to_json(url_of(drop)) for drop in page.drops],
    }


def health_reply(service: Teledrop) -> Reply:
    """``ok`` (200); ``full`` (507) below ``limits.min_free_space``; ``unavailable`` (503)
    when storage or metadata cannot be reached."""
    try:
        drops.health(service)
    except TeledropError as exc:
        full = isinstance(exc, StorageFull)
        return json_reply({"status": "full" if full else "unavailable",
                           "error": {"code": exc.code, "message": exc.message}},
                          507 if full else 503)
    return json_reply({"status": "ok"})


def created_reply(request_headers: Mapping[str, str], drop: Drop, url: str, location: str,
                  page: Callable[[], str] | None = None) -> Reply:
    """``201`` for a new drop: JSON with its delete token when asked for, the ``page`` a
    browser's form gets (posted without JavaScript) where the host renders one, else the
    link and a newline."""
    headers = {"Location": location, "X-Delete-Token": drop.delete_token or ""}
    if wants_json(request_headers):
        return json_reply(drop.to_json(url, with_delete_token=True), 201, headers)
    if page is not None and wants_html(request_headers):
        return Reply(201, headers, page().encode(), HTML_TYPE)
    return text_reply(url + "\n", 201, headers)


def reader_of(service: Teledrop, headers: Mapping[str, str], query: Mapping[str, str],
              form: Callable[[], str | None]) -> drops.Reader:
    """Who is asking: the owner their bearer token names, and a drop password from the
    X-Drop-Password header, HTTP Basic (any user name) or the page's form (``form`` reads
    it) — never the query string, which lands in access logs."""
    auth = Authorization.from_header(headers.get("Authorization"))
    basic = auth.password if auth is not None and auth.type == "basic" else None
    password = reader_password(query, headers, basic, form)
    return drops.Reader(owner=identify(service, headers), password=password)


def sluglike(slug: str) -> str:
    """``slug`` if it could name a drop, else 404 without a lookup (a reserved word never
    does: custom slugs cannot be one)."""
    if not could_be_slug(slug):
        raise NotFound()
    return slug


def checked(slug: str, method: str, allowed: Callable[[], Iterable[str]]) -> str:
    """``slug`` if it could name a drop, in a top-level ``/<slug>`` route. One of the app's
    own paths (``POST /healthz``) is not a drop: other methods than GET get 405 there, as
    if the slug routes did not exist (``allowed``: the methods the path's routes take)."""
    if slug.lower() in RESERVED and method not in ("GET", "HEAD"):
        raise MethodNotAllowed(valid_methods=sorted(set(allowed()) - SLUG_ONLY_METHODS))
    return sluglike(slug)
