"""The landing page under the WSGI host: what a person gets who opens a drop's link in a
browser. Which requests get it, and the page itself, are :mod:`teledrop.hosts.pages`'."""

from __future__ import annotations

from flask import Request, Response

from teledrop.hosts.pages import VARY, wants_landing


def wants_landing_page(request: Request) -> bool:
    return wants_landing(request.method, request.headers, request.args)


def add_vary(response: Response) -> Response:
    """``Vary`` on every answer of ``/{slug}``: the same URL is a page or the bytes."""
    response.vary.update(VARY)
    return response
