"""``GET /``: the upload page for browsers and usage text for curl."""

from __future__ import annotations

from html import escape

from teledrop.core.config import Config, LimitsSettings
from teledrop.core.drop import Drop
from teledrop.core.units import format_size


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


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


def result_html(drop: Drop, url: str) -> str:
    """The answer to the page's form when it is posted without JavaScript."""
    link = escape(url)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>teledrop: uploaded</title></head>
<body><h1>Uploaded</h1>
<p>Link: <a href="{link}">{link}</a></p>
<p>Delete token: <code>{escape(drop.delete_token or "")}</code></p>
<p><a href="./">Upload another file</a></p></body></html>
"""


def index_html(config: Config) -> str:
    limits = config.limits
    max_size = escape(format_size(limits.max_upload_size))
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>teledrop</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; }}
label {{ display: block; margin: .6rem 0 .2rem; }}
output {{ display: block; margin-top: 1rem; white-space: pre-wrap; }}
</style>
</head>
<body>
<h1>teledrop</h1>
<p>Upload a file (up to {max_size}) and share the link.</p>
<form id="upload" method="post" action="./" enctype="multipart/form-data">
  <label for="file">File</label>
  <input id="file" name="file" type="file" required>
  <label for="expires">Expires after (e.g. 1h, 7d)</label>
  <input id="expires" name="expires" placeholder="{escape(_duration(limits.default_expires))}">
  <label for="max_downloads">Maximum downloads</label>
  <input id="max_downloads" name="max_downloads" inputmode="numeric">
  <label for="slug">Custom link name</label>
  <input id="slug" name="slug" pattern="[A-Za-z0-9_][A-Za-z0-9._\\-]{{2,63}}">
  <p><button type="submit">Upload</button></p>
</form>
<output id="result" aria-live="polite"></output>
<script>
document.getElementById("upload").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const out = document.getElementById("result");
  const form = new FormData(event.target);
  for (const [key, value] of [...form.entries()]) if (value === "") form.delete(key);
  out.textContent = "Uploading…";
  const response = await fetch("./", {{method: "POST", body: form, headers: {{Accept: "application/json"}}}});
  const data = await response.json();
  out.textContent = response.ok
    ? `Link: ${{data.url}}\\nDelete token: ${{data.delete_token}}`
    : `Upload failed: ${{data.error.message}}`;
}});
</script>
</body>
</html>
"""
