"""``GET /``: the upload page for browsers, its no-JavaScript result page, the password form
of a protected drop, and usage text for curl.

The page is plain HTML that works as a multipart form on its own; ``static/page.js`` turns it
into a drop zone with one XMLHttpRequest per file, and ``static/drops.js`` fills the "My drops"
section (hidden without JavaScript: listing needs the token in a header) for a token holder.
Every value from a config or a drop is escaped here; the scripts write data with
``textContent`` only.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from urllib.parse import quote

from teledrop.core.config import Config, LimitsSettings
from teledrop.core.drop import Drop, iso
from teledrop.core.errors import PasswordRequired
from teledrop.core.interfaces import SORT_KEYS
from teledrop.core.options import MAX_DESCRIPTION, MAX_TITLE
from teledrop.core.units import format_size

#: Expiry choices offered on the page, in seconds; those over ``max_expires`` are dropped and
#: the default and the maximum are always offered.
EXPIRY_PRESETS = (10 * 60, 3600, 86400, 7 * 86400, 30 * 86400, 90 * 86400, 365 * 86400)
#: The custom slug rule of API.md §3, as an HTML ``pattern`` (implicitly anchored). Chromium
#: compiles patterns with the ``v`` flag, where ``-`` in a class must be escaped.
SLUG_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9._\-]{2,63}"
#: Only our own origin: the page loads nothing from anywhere else, and no inline code runs.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' data:; form-action 'self'; base-uri 'none'")
_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60))
#: Labels of the list's sort keys; a key the server adds later still shows, by its name.
SORT_LABELS = {"created_at": "Uploaded", "size": "Size", "filename": "File name",
               "title": "Title"}
PAGE_SIZES = (10, 20, 50, 100)
DEFAULT_PAGE_SIZE = 20


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _human_duration(seconds: int) -> str:
    for unit, size in _UNITS:
        if seconds % size == 0 and seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


def describe_size(n: int) -> str:
    """``4.0 MiB (4,194,304 bytes)``, as the page's script writes it."""
    if n < 1024:
        return "1 byte" if n == 1 else f"{n} bytes"
    value, unit = float(n), "B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.{1 if value < 10 else 0}f} {unit} ({n:,} bytes)"


def _utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def expiry_choices(limits: LimitsSettings) -> list[int]:
    """The expiry presets the page offers, in seconds, shortest first."""
    offered = {p for p in EXPIRY_PRESETS if p <= limits.max_expires}
    return sorted(offered | {limits.default_expires, limits.max_expires})


def usage_text(base: str, limits: LimitsSettings) -> str:
    return f"""teledrop - share a file with a short link

Upload (prints the link):
    curl -F file=@report.pdf {base}/
    curl -T report.pdf {base}/

Options (form fields with -F, or query parameters):
    slug=NAME          a custom link: 3-64 of A-Z a-z 0-9 . _ -
    expires=7d         seconds, or with s m h d (default {_duration(limits.default_expires)}, \
max {_duration(limits.max_expires)})
    max_downloads=N    gone after N downloads
    title=TEXT         up to {MAX_TITLE} characters
    description=TEXT   up to {MAX_DESCRIPTION} characters
    private=true       only your token can read it (upload with your token)
    curl -F file=@x.tar -F expires=1h -F max_downloads=3 {base}/

A password (a form field or a header, never in the query string):
    curl -F file=@x.tar -F password=SECRET {base}/
    curl -T x.tar -H 'X-Drop-Password: SECRET' {base}/
    curl -OJ -H 'X-Drop-Password: SECRET' {base}/SLUG

Download, inspect, delete:
    curl -OJ {base}/SLUG
    curl {base}/api/drops/SLUG
    curl -X DELETE -H 'X-Delete-Token: TOKEN' {base}/SLUG
    (the delete token is in the upload's X-Delete-Token header: curl -i)

With an upload token (Authorization: Bearer TOKEN), your drops:
    curl -H 'Authorization: Bearer TOKEN' '{base}/api/drops?q=report&sort=size'
    curl -X PATCH -H 'Authorization: Bearer TOKEN' -H 'Content-Type: application/json' \\
         -d '{{"title": "Q3", "max_downloads": 5}}' {base}/api/drops/SLUG
    curl -X DELETE -H 'Authorization: Bearer TOKEN' {base}/SLUG

Largest upload: {format_size(limits.max_upload_size)}
"""


def _head(title: str, root: str = "") -> str:
    """The document's head, open; ``root`` leads from the page's URL to the app's root
    (``../`` for a page one level down), so the stylesheet is found under any mount path."""
    return f"""<!doctype html>
<html lang="en" class="no-js">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="referrer" content="no-referrer">
<title>{escape(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{escape(root)}static/page.css">
"""


def _access(drop: Drop) -> str:
    """``private, password``: who can read the drop, in words; empty for anyone."""
    return ", ".join(word for word, on in (("private", drop.private),
                                           ("password", drop.password_hash is not None)) if on)


def result_html(drop: Drop, url: str) -> str:
    """The answer to the page's form when it is posted without JavaScript."""
    link = escape(url)
    token = escape(drop.delete_token or "")
    downloads = "unlimited" if drop.max_downloads is None else str(drop.max_downloads)
    title = f"<dt>Title</dt><dd>{escape(drop.title)}</dd>\n" if drop.title else ""
    access = f"<dt>Access</dt><dd>{escape(_access(drop))}</dd>\n" if _access(drop) else ""
    return _head("teledrop: uploaded") + f"""</head>
<body>
<main>
<h1>Uploaded</h1>
<section class="result" aria-labelledby="file-name">
<p class="name" id="file-name">{escape(drop.filename)}</p>
<p class="link-row"><a class="link" href="{link}">{link}</a></p>
<dl>
{title}<dt>Size</dt><dd>{describe_size(drop.size)}</dd>
<dt>Hash</dt><dd><code>{escape(drop.hash)}</code></dd>
<dt>Expires</dt><dd><time datetime="{iso(drop.expires_at)}">{_utc(drop.expires_at)}</time></dd>
<dt>Downloads</dt><dd>{escape(downloads)}</dd>
{access}<dt>Delete token</dt><dd><code class="token">{token}</code></dd>
</dl>
<p class="hint">Keep the delete token: it is shown only once. To delete the file:</p>
<pre>curl -X DELETE -H 'X-Delete-Token: {token}' '{link}'</pre>
</section>
<p><a href="./">Upload another file</a></p>
</main>
</body>
</html>
"""


def password_html(action: str, message: str) -> str:
    """The form a browser gets for a password-protected drop. It posts the password to the
    drop's own URL (never into a query string) and receives the file.

    ``action`` is the drop's path under the app (``/SLUG`` or ``/SLUG/NAME``). The form and
    the stylesheet are addressed relative to it, so they stay right when the app is mounted
    under a path prefix that ``action`` does not carry."""
    segments = action.strip("/").split("/")
    root = "../" * (len(segments) - 1)
    target = "./" + quote(segments[-1], safe="")
    # The first visit asks; anything else (a wrong password) is an error to notice.
    problem = message != PasswordRequired.default_message
    shown = message[:1].upper() + message[1:]
    return _head("teledrop: password", root) + f"""</head>
<body>
<main class="narrow">
<header>
<p class="brand"><a href="{escape(root) or './'}">teledrop</a></p>
</header>
<form class="card password-form" method="post" action="{escape(target)}">
<h1>This file is protected</h1>
<p id="password-message" class="message{' error' if problem else ''}" role="alert">\
{escape(shown)}</p>
<div class="field">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password"
 required autofocus aria-describedby="password-message"{' aria-invalid="true"' if problem else ''}>
</div>
<p class="submit-row"><button type="submit">Download</button></p>
</form>
</main>
</body>
</html>
"""


def _expiry_options(limits: LimitsSettings, selected: int | None) -> str:
    return "\n".join(
        f'<option value="{_duration(s)}"{" selected" if s == selected else ""}>'
        f"{escape(_human_duration(s))}</option>"
        for s in expiry_choices(limits))


def _expiry_select(limits: LimitsSettings) -> str:
    return (f'<select id="expires" name="expires">\n'
            f"{_expiry_options(limits, limits.default_expires)}\n</select>")


def _token_field(config: Config) -> str:
    if not config.auth.tokens_required:
        return ""
    # No name: the token travels in the Authorization header, never as a form field.
    return """<div class="field token-field">
<label for="token">Upload token</label>
<input id="token" type="password" autocomplete="off" spellcheck="false"
 aria-describedby="token-hint">
<small id="token-hint">This server needs one to upload. It is kept in this browser.</small>
<noscript><p class="hint">Uploading with a token needs JavaScript, or curl:
<code>curl -H 'Authorization: Bearer TOKEN' -T FILE</code> to this address.</p></noscript>
</div>
"""


def _owner_token_field(config: Config) -> str:
    """Where an anonymous server's page takes a token: optional, for "My drops" and for
    uploads that should belong to its holder. A server that needs a token has its field in
    the upload form, and the list uses that one."""
    if config.auth.tokens_required:
        return '<p class="hint">The files uploaded with the token above.</p>\n'
    return """<div class="field token-field">
<label for="owner-token">Your token</label>
<input id="owner-token" type="password" autocomplete="off" spellcheck="false"
 aria-describedby="owner-token-hint">
<small id="owner-token-hint">Optional. Files you upload with it are listed here and can be
private. It is kept in this browser.</small>
</div>
"""


def _choice(element_id: str, name: str, label: str, options: list[tuple[str, str]],
            selected: str = "") -> str:
    rendered = "\n".join(
        f'<option value="{escape(value)}"{" selected" if value == selected else ""}>'
        f"{escape(text)}</option>" for value, text in options)
    return f"""<div class="field">
<label for="{element_id}">{escape(label)}</label>
<select id="{element_id}" name="{name}">
{rendered}
</select>
</div>"""


def _drops_query() -> str:
    """The list's search, sort, filters and page size: one form, sent as the query of
    ``GET /api/drops``; an empty value leaves the parameter out."""
    either = [("", "Any")]
    return f"""<form id="drops-query" class="drops-query" role="search"
 aria-label="Search my drops">
<div class="field search-field">
<label for="drops-q">Search</label>
<input id="drops-q" name="q" type="search" maxlength="{MAX_TITLE}" autocomplete="off"
 spellcheck="false" placeholder="file name or title">
</div>
{_choice("drops-sort", "sort", "Sort by",
         [(key, SORT_LABELS.get(key, key)) for key in SORT_KEYS], "created_at")}
{_choice("drops-order", "order", "Order",
         [("desc", "Descending"), ("asc", "Ascending")], "desc")}
{_choice("drops-private", "private", "Private",
         either + [("true", "Private only"), ("false", "Not private")])}
{_choice("drops-has-password", "has_password", "Password",
         either + [("true", "With a password"), ("false", "Without")])}
{_choice("drops-expired", "expired", "Expired",
         either + [("false", "Not expired"), ("true", "Expired only")])}
{_choice("drops-page-size", "page_size", "Per page",
         [(str(n), str(n)) for n in PAGE_SIZES], str(DEFAULT_PAGE_SIZE))}
<p class="query-submit"><button type="submit" id="drops-show">Show</button></p>
</form>"""


_COLUMNS = ("File", "Title", "Size", "Uploaded", "Expires", "Downloads", "Access")


def _edit_dialog(limits: LimitsSettings) -> str:
    """The edit form, a modal dialog: it takes the focus, Escape closes it, and the focus
    returns to the row's Edit button."""
    return f"""<dialog id="edit-dialog" class="edit-dialog" aria-labelledby="edit-heading">
<form id="edit-form" novalidate>
<h3 id="edit-heading">Edit <span id="edit-name"></span></h3>
<div class="field">
<label for="edit-title">Title</label>
<input id="edit-title" name="title" maxlength="{MAX_TITLE}" autocomplete="off">
</div>
<div class="field">
<label for="edit-description">Description</label>
<textarea id="edit-description" name="description" rows="3"
 maxlength="{MAX_DESCRIPTION}"></textarea>
</div>
<div class="field">
<label for="edit-expires">Expires</label>
<select id="edit-expires" name="expires" aria-describedby="edit-expires-hint">
<option value="" selected>Keep the date</option>
{_expiry_options(limits, None)}
</select>
<small id="edit-expires-hint">From now. Currently: <span id="edit-expires-now"></span>.</small>
</div>
<div class="field">
<label for="edit-max-downloads">Download limit</label>
<input id="edit-max-downloads" name="max_downloads" type="number" min="1" step="1"
 inputmode="numeric" placeholder="unlimited" aria-describedby="edit-max-downloads-hint">
<small id="edit-max-downloads-hint">Empty: unlimited. Downloaded
<span id="edit-downloads"></span> so far.</small>
</div>
<div class="check">
<input id="edit-private" name="private" type="checkbox" aria-describedby="edit-private-hint">
<label for="edit-private">Private</label>
<small id="edit-private-hint">Only your token can open it.</small>
</div>
<div class="field">
<label for="edit-password">New password</label>
<input id="edit-password" name="password" type="password" autocomplete="new-password"
 aria-describedby="edit-password-hint">
<small id="edit-password-hint"></small>
</div>
<div class="check" id="edit-clear-row">
<input id="edit-clear-password" name="clear_password" type="checkbox">
<label for="edit-clear-password">Remove the password</label>
</div>
<p id="edit-error" class="message error" role="alert"></p>
<p class="actions">
<button type="submit" id="edit-save">Save</button>
<button type="button" id="edit-cancel" class="secondary">Cancel</button>
</p>
</form>
</dialog>"""


def _my_drops(config: Config) -> str:
    head = "\n".join(f'<th scope="col">{name}</th>' for name in _COLUMNS)
    return f"""<section id="my-drops" class="my-drops" aria-labelledby="my-drops-heading" hidden>
<h2 id="my-drops-heading">My drops</h2>
{_owner_token_field(config)}{_drops_query()}
<p id="drops-status" class="status" role="status" aria-live="polite"></p>
<div id="drops-region" class="table-wrap" tabindex="-1">
<table id="drops-table" class="drops" aria-labelledby="my-drops-heading" hidden>
<thead>
<tr>
{head}
<th scope="col"><span class="visually-hidden">Actions</span></th>
</tr>
</thead>
<tbody id="drops-body"></tbody>
</table>
</div>
<nav class="pager" id="drops-pager" aria-label="Pages of my drops" hidden>
<button type="button" id="drops-prev" class="secondary">Previous page</button>
<span id="drops-page"></span>
<button type="button" id="drops-next" class="secondary">Next page</button>
</nav>
{_edit_dialog(config.limits)}
</section>
"""


def index_html(config: Config) -> str:
    limits = config.limits
    max_size = escape(format_size(limits.max_upload_size))
    # The script puts the page's own address here; without it, the configured one.
    here = escape(config.server.base_url.rstrip("/") + "/" if config.server.base_url
                  else "this page's address")
    return _head("teledrop") + f"""<script type="module" src="static/page.js" defer></script>
<script type="module" src="static/drops.js" defer></script>
</head>
<body>
<main>
<header>
<h1>teledrop</h1>
<p>Share files with a short link.</p>
</header>
<form id="upload" method="post" action="./" enctype="multipart/form-data">
<fieldset class="options">
<legend>Options</legend>
<div class="field">
<label for="expires">Expires after</label>
{_expiry_select(limits)}
</div>
<div class="field">
<label for="max_downloads">Maximum downloads</label>
<input id="max_downloads" name="max_downloads" type="number" min="1" step="1"
 inputmode="numeric" placeholder="unlimited" aria-describedby="max-downloads-hint">
<small id="max-downloads-hint">Empty: unlimited.</small>
</div>
<div class="field">
<label for="slug">Custom link name</label>
<input id="slug" name="slug" pattern="{escape(SLUG_PATTERN)}" maxlength="64"
 placeholder="random" autocomplete="off" spellcheck="false" aria-describedby="slug-hint">
<small id="slug-hint">3–64 letters, digits, . _ - (one file at a time).</small>
</div>
<div class="field">
<label for="title">Title</label>
<input id="title" name="title" maxlength="{MAX_TITLE}" autocomplete="off"
 aria-describedby="title-hint">
<small id="title-hint">Optional, shown in your list.</small>
</div>
<div class="field">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="new-password"
 aria-describedby="password-hint">
<small id="password-hint">Readers must enter it. Empty: none.</small>
</div>
<div class="check needs-js">
<input id="private" name="private" type="checkbox" value="true"
 aria-describedby="private-hint">
<label for="private">Private</label>
<small id="private-hint">Only your token can open it.</small>
</div>
<div class="field wide">
<label for="description">Description</label>
<textarea id="description" name="description" rows="2" maxlength="{MAX_DESCRIPTION}"
 aria-describedby="description-hint"></textarea>
<small id="description-hint">Optional, up to {MAX_DESCRIPTION} characters.</small>
</div>
</fieldset>
{_token_field(config)}<div class="drop-zone" id="drop-zone">
<label for="file" class="drop-label">
<span class="plain-label">File</span>
<span class="drop-title">Drop files here</span>
<span class="drop-or">or <span class="pick">choose files</span></span>
</label>
<input id="file" name="file" type="file" required aria-describedby="file-hint">
<small id="file-hint">Each file up to {max_size}.</small>
</div>
<p class="submit-row"><button type="submit" id="submit">Upload</button></p>
</form>
<p id="status" class="status" role="status" aria-live="polite"></p>
<ul id="uploads" class="uploads" aria-label="Uploads"></ul>
{_my_drops(config)}<footer>
<p>From a terminal: <code>curl -T FILE <span id="here">{here}</span></code></p>
</footer>
</main>
</body>
</html>
"""
