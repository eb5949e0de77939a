"""Flask responses from the host-neutral replies of :mod:`teledrop.hosts.http`."""

from __future__ import annotations

from typing import Any

from flask import Request, Response

from teledrop.core.errors import TeledropError
from teledrop.hosts import http


def wants_json(request: Request) -> bool:
    return http.wants_json(request.headers)


def wants_html(request: Request) -> bool:
    return http.wants_html(request.headers)


def flask_response(reply: http.Reply) -> Response:
    response = Response(reply.body, status=reply.status, headers=reply.headers)
    if reply.content_type is not None:
        response.content_type = reply.content_type
    return response


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return flask_response(http.json_reply(data, status, headers))


def text_response(text: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return flask_response(http.text_reply(text, status, headers))


def error_response(request: Request, error: TeledropError) -> Response:
    """The error as JSON when the client asks for it, else one line of plain text."""
    return flask_response(http.error_reply(request.headers, error))
