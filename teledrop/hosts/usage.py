"""``GET /`` for curl: how to use teledrop, in plain text."""

from __future__ import annotations

from teledrop.core.config import LimitsSettings
from teledrop.core.options import MAX_DESCRIPTION, MAX_TITLE
from teledrop.core.slugs import CUSTOM_SLUG_MAX, CUSTOM_SLUG_MIN
from teledrop.core.units import format_duration, format_size


def usage_text(base: str, limits: LimitsSettings, request_limit: int | None = None) -> str:
    """What ``curl host/`` prints. ``request_limit``: the most a file sent in one request
    may have on this host (a serverless host's event limit); larger ones go as direct
    uploads."""
    return f"""teledrop - share a file with a short link

Upload (prints the link):
    curl -F file=@report.pdf {base}/
    curl -T report.pdf {base}/

Options (form fields with -F, or query parameters):
    slug=NAME          a custom link: {CUSTOM_SLUG_MIN}-{CUSTOM_SLUG_MAX} of A-Z a-z 0-9 . _ -
    expires=7d         seconds, or with s m h d (default {format_duration(limits.default_expires)}, \
max {format_duration(limits.max_expires)})
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
{_request_limit(request_limit)}"""


def _request_limit(size: int | None) -> str:
    if size is None:
        return ""
    return f"""Through this server, at most {format_size(size)} per request; a larger file goes
straight to storage as a direct upload (POST /api/direct-uploads): teledrop upload FILE
"""
