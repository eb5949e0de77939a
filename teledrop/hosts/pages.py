"""teledrop's HTML pages, for every host: the upload page (``GET /`` from a browser), its
no-JavaScript result page, the password form of a protected drop and a drop's landing page
(a browser opening ``/{slug}``), or, for a link that leads nowhere, a page saying so.

The pages are the Jinja templates under ``teledrop/web/templates/``, rendered by a plain
Jinja environment with autoescape on, so every value from a config, a request or a drop is
escaped, and the WSGI host and the Lambda host answer the same HTML. The static files the
pages load are under ``teledrop/web/static/`` (:mod:`.assets` serves them where no web
framework does). The scripts write data with ``textContent`` only.

Which requests get a page rather than bytes or plain text is decided here too
(:func:`wants_landing`, :data:`VARY`), from headers alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader

from teledrop.core.config import Config, LimitsSettings
from teledrop.core.drop import Drop, iso, now
from teledrop.core.errors import Gone, NotFound, PasswordRequired, TeledropError
from teledrop.core.interfaces import SORT_KEYS
from teledrop.core.manage import DEFAULT_PAGE_SIZE, DEFAULT_SORT, FILTERS, MAX_PAGE_SIZE, ORDERS
from teledrop.core.options import MAX_DESCRIPTION, MAX_TITLE
from teledrop.core.passwords import PASSWORD_HEADER
from teledrop.core.slugs import CUSTOM_SLUG_MAX, CUSTOM_SLUG_MIN, CUSTOM_SLUG_PATTERN
from teledrop.core.units import describe_duration, describe_size, format_duration, \
    format_size, relative_time

from .download import is_inline
from .http import HTML_TYPE, Reply, wants_html, wants_json
from .qr import qr_data_uri

#: The templates, beside the WSGI host's static files (files only: nothing is imported).
TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
#: Expiry choices offered on the page, in seconds; those over ``max_expires`` are dropped and
#: the default and the maximum are always offered.
EXPIRY_PRESETS = (10 * 60, 3600, 86400, 7 * 86400, 30 * 86400, 90 * 86400, 365 * 86400)
#: Labels of the list's sort keys; a key the server adds later still shows, by its name.
SORT_LABELS = {"created_at": "Uploaded", "size": "Size", "filename": "File name",
               "title": "Title"}
ORDER_LABELS = {"desc": "Descending", "asc": "Ascending"}
#: Each filter of the list: its label, and its choices besides "Any".
FILTER_LABELS = {
    "private": ("Private", [("true", "Private only"), ("false", "Not private")]),
    "has_password": ("Password", [("true", "With a password"), ("false", "Without")]),
    "expired": ("Expired", [("false", "Not expired"), ("true", "Expired only")]),
}
#: The list's page sizes: a few steps up to the largest the server gives.
PAGE_SIZES = tuple(sorted({10, DEFAULT_PAGE_SIZE, 50, MAX_PAGE_SIZE}))
#: The headings of the "My drops" table (the scripts fill its rows).
COLUMNS = ("File", "Title", "Size", "Uploaded", "Expires", "Downloads", "Access")
#: How the upload page's script sends files: resumable tus uploads, or direct uploads
#: (the parts straight to the bucket) where the host has no streamed body.
TUS, DIRECT = "tus", "direct"
#: The request headers that choose between the landing page and the bytes.
VARY = ("Accept", "Sec-Fetch-Mode", "Sec-Fetch-Dest")
#: Query parameters that ask for the bytes themselves.
BYTES_PARAMETERS = ("download", "preview")


@cache
def environment() -> Environment:
    """The one Jinja environment of every host. Templates keep the markup's own lines: a
    block tag leaves no blank line behind."""
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                       trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render_page(template: str, title: str, root: str = "", **context: Any) -> str:
    """A page from the templates, every value escaped. ``root`` leads from the page's URL
    to the app's root (``../`` for a page one level down), so the stylesheet is found
    under any mount path."""
    return environment().get_template(template).render(title=title, root=root, **context)


def utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def expiry_choices(limits: LimitsSettings) -> list[int]:
    """The expiry presets the page offers, in seconds, shortest first."""
    offered = {p for p in EXPIRY_PRESETS if p <= limits.max_expires}
    return sorted(offered | {limits.default_expires, limits.max_expires})


def _access(drop: Drop) -> str:
    """``private, password``: who can read the drop, in words; empty for anyone."""
    return ", ".join(word for word, on in (("private", drop.private),
                                           ("password", drop.password_hash is not None)) if on)


def result_html(drop: Drop, url: str) -> str:
    """The answer to the page's form when it is posted without JavaScript."""
    return render_page(
        "result.html", "teledrop: uploaded", drop=drop, url=url, token=drop.delete_token or "",
        size=describe_size(drop.size), expires_iso=iso(drop.expires_at),
        expires=utc(drop.expires_at), expires_in=relative_time(drop.expires_at - now()),
        access=_access(drop), qr=qr_data_uri(url),
        downloads="unlimited" if drop.max_downloads is None else str(drop.max_downloads))


def password_html(action: str, message: str) -> str:
    """The form a browser gets for a password-protected drop. It posts the password to the
    drop's own URL (never into a query string) and receives the file.

    ``action`` is the drop's path under the app (``/SLUG`` or ``/SLUG/NAME``). The form and
    the stylesheet are addressed relative to it, so they stay right when the app is mounted
    under a path prefix that ``action`` does not carry."""
    segments = action.strip("/").split("/")
    # The first visit asks; anything else (a wrong password) is an error to notice.
    return render_page("password.html", "teledrop: password", "../" * (len(segments) - 1),
                       target="./" + quote(segments[-1], safe=""),
                       problem=message != PasswordRequired.default_message,
                       message=message[:1].upper() + message[1:])


def password_reply(headers: Mapping[str, str], path: str, error: TeledropError) -> Reply | None:
    """The password form, as the answer to a browser whose request for the drop at
    ``path`` was refused for its password (``error``); ``None`` for any other client, who
    gets the error itself."""
    if not wants_html(headers) or wants_json(headers):
        return None
    challenge = error.headers()
    if "WWW-Authenticate" in challenge:
        # The form is the challenge: a Basic one would make browsers show their own prompt
        # instead of it, and no browser prompts for this scheme.
        challenge["WWW-Authenticate"] = f'{PASSWORD_HEADER} realm="teledrop drop"'
    return Reply(error.status, challenge, password_html(path, error.message).encode(),
                 HTML_TYPE)


def index_html(config: Config, uploads: str = TUS, form_limit: int | None = None,
               bucket: str | None = None) -> str:
    """The upload page. ``uploads`` is how its script sends files (:data:`TUS` or
    :data:`DIRECT`, whose parts go to the origin ``bucket``); ``form_limit``, when the host
    has one, is the largest file its plain form (the page without JavaScript) may post."""
    limits = config.limits
    return render_page(
        "index.html", "teledrop", uploads=uploads, bucket_origin=bucket,
        form_limit=None if form_limit is None else format_size(form_limit),
        expiry_choices=[(format_duration(s), describe_duration(s))
                        for s in expiry_choices(limits)],
        default_expires=format_duration(limits.default_expires),
        default_expires_words=describe_duration(limits.default_expires),
        slug_pattern=CUSTOM_SLUG_PATTERN, slug_min=CUSTOM_SLUG_MIN, slug_max=CUSTOM_SLUG_MAX,
        max_title=MAX_TITLE, max_description=MAX_DESCRIPTION,
        tokens_required=config.auth.tokens_required,
        max_size=format_size(limits.max_upload_size),
        # The script puts the page's own address here; without it, the configured one.
        here=(config.server.base_url.rstrip("/") + "/" if config.server.base_url
              else "this page's address"),
        sort_choices=[(key, SORT_LABELS.get(key, key)) for key in SORT_KEYS],
        default_sort=DEFAULT_SORT,
        order_choices=[(order, ORDER_LABELS[order]) for order in ORDERS],
        filters=[(name, *FILTER_LABELS[name]) for name in FILTERS],
        page_sizes=[(str(n), str(n)) for n in PAGE_SIZES],
        default_page_size=str(DEFAULT_PAGE_SIZE), columns=COLUMNS)


def missing_reply(method: str, headers: Mapping[str, str], query: Mapping[str, str],
                  path: str, error: TeledropError) -> Reply | None:
    """A page saying the drop is gone (410) or never was (404), with the error's own
    status, for a browser that opened the link at ``path`` as a page; ``None`` for any
    other client, who gets the error itself (JSON or one line)."""
    if not isinstance(error, (NotFound, Gone)) or not wants_landing(method, headers, query):
        return None
    gone = isinstance(error, Gone)
    message = error.message if gone else "There is no file at this link."
    html = render_page("missing.html", "teledrop: " + ("gone" if gone else "not found"),
                       "../" * path.strip("/").count("/"),
                       heading="This file is gone" if gone else "Nothing here",
                       message=message[:1].upper() + message[1:] + ("." if gone else ""))
    return Reply(error.status, error.headers(), html.encode(), HTML_TYPE)


# -- the landing page -------------------------------------------------------------------

def wants_landing(method: str, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
    """Whether this request to ``/{slug}`` is a browser opening the link as a page (a GET,
    or the password form's POST), rather than a client asking for the bytes:
    ``Sec-Fetch-Mode: navigate`` to a document, or, from a browser that sends no fetch
    metadata, an ``Accept`` that names ``text/html`` first. ``?download``, ``?preview``, a
    ``Range``, ``HEAD``, ``<img>``, ``fetch`` and curl's ``Accept: */*`` get the bytes, and
    :data:`VARY` keeps a cache from handing one kind of answer to the other."""
    if method not in ("GET", "POST") or "Range" in headers:
        return False
    if any(name in query for name in BYTES_PARAMETERS):
        return False
    mode = headers.get("Sec-Fetch-Mode")
    if mode is not None:  # fetch metadata says exactly what the browser is doing
        return mode == "navigate" and headers.get("Sec-Fetch-Dest", "document") == "document"
    return html_first(headers.get("Accept", ""))


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


def preview_of(drop: Drop) -> str | None:
    """How the page shows the file itself: ``image``, ``video`` or ``audio`` inline, ``link``
    to a preview in the browser (plain text, PDF), or ``None`` (never shown inline)."""
    if not is_inline(drop.content_type):
        return None
    kind = drop.content_type.split("/", 1)[0]
    return kind if kind in ("image", "video", "audio") else "link"


def landing_reply(drop: Drop, url: str, password: str | None,
                  bucket: str | None = None) -> Reply:
    """The landing page of ``drop``, whose link is ``url``. ``bucket`` is the origin its
    bytes are redirected to, where the host redirects (the page's policy lets its preview
    and its Download form go there).

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
        embedded=drop.max_downloads is None, qr=qr_data_uri(url),
        bucket_origin=bucket)
    return Reply(200, {"Cache-Control": "no-store" if password else "private, no-cache"},
                 html.encode(), HTML_TYPE)
