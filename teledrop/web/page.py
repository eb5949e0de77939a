"""``GET /``: the upload page for browsers, its no-JavaScript result page, and usage text for
curl.

The page is plain HTML that works as a multipart form on its own; ``static/page.js`` turns it
into a drop zone with one XMLHttpRequest per file. Every value from a config or a drop is
escaped here; the script writes data with ``textContent`` only.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape

from teledrop.core.config import Config, LimitsSettings
from teledrop.core.drop import Drop, iso
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
    curl -F file=@x.tar -F expires=1h -F max_downloads=3 {base}/

Download, inspect, delete:
    curl -OJ {base}/SLUG
    curl {base}/api/drops/SLUG
    curl -X DELETE -H 'X-Delete-Token: TOKEN' {base}/SLUG
    (the delete token is in the upload's X-Delete-Token header: curl -i)

Largest upload: {format_size(limits.max_upload_size)}
"""


def _head(title: str) -> str:
    return f"""<!doctype html>
<html lang="en" class="no-js">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="referrer" content="no-referrer">
<title>{escape(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="static/page.css">
"""


def result_html(drop: Drop, url: str) -> str:
    """The answer to the page's form when it is posted without JavaScript."""
    link = escape(url)
    token = escape(drop.delete_token or "")
    downloads = "unlimited" if drop.max_downloads is None else str(drop.max_downloads)
    return _head("teledrop: uploaded") + f"""</head>
<body>
<main>
<h1>Uploaded</h1>
<section class="result" aria-labelledby="file-name">
<p class="name" id="file-name">{escape(drop.filename)}</p>
<p class="link-row"><a class="link" href="{link}">{link}</a></p>
<dl>
<dt>Size</dt><dd>{describe_size(drop.size)}</dd>
<dt>Hash</dt><dd><code>{escape(drop.hash)}</code></dd>
<dt>Expires</dt><dd><time datetime="{iso(drop.expires_at)}">{_utc(drop.expires_at)}</time></dd>
<dt>Downloads</dt><dd>{escape(downloads)}</dd>
<dt>Delete token</dt><dd><code class="token">{token}</code></dd>
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
    drop's own URL (never into a query string) and receives the file."""
    return _head("teledrop: password") + f"""</head>
<body>
<main>
<h1>This file is protected</h1>
<form method="post" action="{escape(action)}">
<p role="alert">{escape(message)}</p>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password"
       required autofocus>
<p><button type="submit">Download</button></p>
</form>
</main>
</body>
</html>
"""


def _expiry_select(limits: LimitsSettings) -> str:
    options = "\n".join(
        f'<option value="{_duration(s)}"{" selected" if s == limits.default_expires else ""}>'
        f"{escape(_human_duration(s))}</option>"
        for s in expiry_choices(limits))
    return f'<select id="expires" name="expires">\n{options}\n</select>'


def _token_field(config: Config) -> str:
    if not config.auth.upload_tokens:
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


def index_html(config: Config) -> str:
    limits = config.limits
    max_size = escape(format_size(limits.max_upload_size))
    # The script puts the page's own address here; without it, the configured one.
    here = escape(config.server.base_url.rstrip("/") + "/" if config.server.base_url
                  else "this page's address")
    return _head("teledrop") + f"""<script src="static/page.js" defer></script>
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
<footer><p>From a terminal: <code>curl -T FILE <span id="here">{here}</span></code></p>
</footer>
</main>
</body>
</html>
"""
