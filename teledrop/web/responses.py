"""Content negotiation and error bodies."""

from __future__ import annotations

import json
from typing import Any

from flask import Request, Response

from teledrop.core.errors import TeledropError


def wants_json(request: Request) -> bool:
    return any(mime == "application/json" and q > 0 for mime, q in request.accept_mimetypes)


def wants_html(request: Request) -> bool:
    return any(mime == "text/html" and q > 0 for mime, q in request.accept_mimetypes)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(data) + "\n", status=status, headers=headers,
                    mimetype="application/json")


def text_response(text: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(text, status=status, headers=headers, mimetype="text/plain")


def error_response(request: Request, error: TeledropError) -> Response:
    """The error as JSON when the client asks for it, else one line of plain text."""
    headers = error.headers()
    if wants_json(request):
        body = {"error": {"code": error.code, "message": error.message}}
        return json_response(body, error.status, headers)
    return text_response(f"{error.message}\n", error.status, headers)
