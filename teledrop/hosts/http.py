"""Content negotiation, plain responses and error bodies, for any host.

A host turns a :class:`Reply` into its transport's response: the WSGI app into a Flask
``Response``, the Lambda host into a payload format 2.0 result. Both build their bodies
here, so an error reads the same whichever host answers it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MIMEAccept
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_accept_header

from teledrop.core.errors import TeledropError, TooLarge

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
