"""``GET /``: the upload page for browsers, its no-JavaScript result page and the password form
of a protected drop (curl's usage text is :mod:`teledrop.hosts.usage`).

The page is plain HTML that works as a multipart form on its own; ``static/page.js`` turns it
into a drop zone with one XMLHttpRequest per file, and ``static/drops.js`` fills the "My drops"
section (hidden without JavaScript: listing needs the token in a header) for a token holder.
The pages are Jinja templates under ``templates/``, where Flask's autoescape escapes every
value from a config, a request or a drop; the scripts write data with ``textContent`` only.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from flask import render_template

from teledrop.core.config import Config, LimitsSettings
from teledrop.core.drop import Drop, iso, now
from teledrop.core.errors import PasswordRequired
from teledrop.core.interfaces import SORT_KEYS
from teledrop.core.manage import DEFAULT_PAGE_SIZE, DEFAULT_SORT, FILTERS, MAX_PAGE_SIZE, ORDERS
from teledrop.core.options import MAX_DESCRIPTION, MAX_TITLE
from teledrop.core.slugs import CUSTOM_SLUG_MAX, CUSTOM_SLUG_MIN, CUSTOM_SLUG_PATTERN
from teledrop.core.units import describe_duration, describe_size, format_duration, \
    format_size, relative_time

from .qr import qr_data_uri

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


def utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def expiry_choices(limits: LimitsSettings) -> list[int]:
    """The expiry presets the page offers, in seconds, shortest first."""
    offered = {p for p in EXPIRY_PRESETS if p <= limits.max_expires}
    return sorted(offered | {limits.default_expires, limits.max_expires})


def render_page(template: str, title: str, root: str = "", **context: Any) -> str:
    """A page from ``templates/``, every value escaped by Flask's autoescape. ``root``
    leads from the page's URL to the app's root (``../`` for a page one level down), so
    the stylesheet is found under any mount path."""
    return render_template(template, title=title, root=root, **context)


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


#: The headings of the "My drops" table (the scripts fill its rows).
COLUMNS = ("File", "Title", "Size", "Uploaded", "Expires", "Downloads", "Access")


def index_html(config: Config) -> str:
    limits = config.limits
    return render_page(
        "index.html", "teledrop",
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
