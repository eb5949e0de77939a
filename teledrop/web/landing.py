"""The landing page: what a person gets who opens a drop's link in a browser.

``GET /{slug}`` answers the bytes to every client but one: a browser navigating to the
link (``Sec-Fetch-Mode: navigate`` to a document, or, from a browser that sends no fetch
metadata, an ``Accept`` that names ``text/html`` first) gets an HTML page about the drop,
with a Download button to ``/{slug}/{filename}``, which always serves the bytes. Rendering
the page reads the record only: it never counts a download. ``?download``, ``?preview``, a
``Range``, ``HEAD``, ``<img>``, ``fetch`` and curl's ``Accept: */*`` get the bytes as before,
and :data:`VARY` keeps a cache from handing one kind of answer to the other.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Request, Response

from teledrop.core.drop import Drop, iso, now
from teledrop.core.units import describe_size, relative_time
from teledrop.hosts.download import is_inline

from .page import render_page, utc
from .qr import qr_data_uri

#: The request headers that choose between the landing page and the bytes.
VARY = ("Accept", "Sec-Fetch-Mode", "Sec-Fetch-Dest")
#: Query parameters that ask for the bytes themselves.
BYTES_PARAMETERS = ("download", "preview")


def wants_landing(request: Request) -> bool:
    """Whether this request to ``/{slug}`` is a browser opening the link as a page (a GET,
    or the password form's POST), rather than a client asking for the bytes."""
    if request.method not in ("GET", "POST") or "Range" in request.headers:
        return False
    if any(name in request.args for name in BYTES_PARAMETERS):
        return False
    mode = request.headers.get("Sec-Fetch-Mode")
    if mode is not None:  # fetch metadata says exactly what the browser is doing
        return mode == "navigate" and request.headers.get("Sec-Fetch-Dest", "document") \
            == "document"
    return html_first(request.headers.get("Accept", ""))


def html_first(accept: str) -> bool:
    """Whether ``accept`` lists ``text/html`` first (with a non-zero quality), as browsers
    do when they navigate; ``*/*`` or an image type first is a client that takes anything."""
    first, _, params = accept.split(",", 1)[0].partition(";")
    if first.strip().lower() != "text/html":
        return False
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                return float(value) > 0
            except ValueError:
                return False
    return True


def add_vary(response: Response) -> Response:
    """``Vary`` on every answer of ``/{slug}``: the same URL is a page or the bytes."""
    response.vary.update(VARY)
    return response


def preview_of(drop: Drop) -> str | None:
    """How the page shows the file itself: ``image``, ``video`` or ``audio`` inline, ``link``
    to a preview in the browser (plain text, PDF), or ``None`` (never shown inline)."""
    if not is_inline(drop.content_type):
        return None
    kind = drop.content_type.split("/", 1)[0]
    return kind if kind in ("image", "video", "audio") else "link"


def landing_response(drop: Drop, url: str, password: str | None) -> Response:
    """The landing page of ``drop``, whose link is ``url``.

    A drop with a password is shown only after the form took it: the page's Download button
    posts it again (it is never put into a link), so the page is never stored by a cache.
    An inline preview fetches the bytes, which counts as a download: it is shown only for a
    drop that anyone with the link may read (an ``<img>`` carries no password or token),
    embedded when the drop has no download limit and otherwise offered as a link that says
    what it costs."""
    at = now()
    password = password if drop.password_hash is not None else None
    path = quote(drop.slug, safe="") + "/" + quote(drop.filename, safe="")
    public = not drop.private and drop.password_hash is None
    html = render_page(
        "landing.html", f"{drop.title or drop.filename} - teledrop",
        drop=drop, url=url, download_path=path, password=password or "",
        size=describe_size(drop.size), expires_iso=iso(drop.expires_at),
        expires=utc(drop.expires_at), expires_in=relative_time(drop.expires_at - at),
        left=drop.downloads_left(), preview=preview_of(drop) if public else None,
        embedded=drop.max_downloads is None, qr=qr_data_uri(url))
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store" if password else "private, no-cache"
    return response
