"""teledrop-webhook: POST a signed JSON event to a URL when a drop is created or deleted.

Configured in teledrop's config (or ``TELEDROP_PLUGINS__WEBHOOK__<KEY>``)::

    [plugins.webhook]
    url = "https://hooks.example.com/teledrop"  # empty (the default): send nothing
    timeout = 2.0                                 # seconds per connect / read, at most 10
    secret = "long random string"                 # signs every body (X-Teledrop-Signature)

Each event is one ``POST`` with ``Content-Type: application/json``::

    {"event": "created", "drop": {...}}
    {"event": "deleted", "reason": "deleted" | "expired" | "exhausted", "drop": {...}}

``drop`` is the drop as ``GET /api/drops/{slug}`` shows it; its ``url`` is present only
when ``[server] base_url`` is set (otherwise teledrop learns its address from each request,
and an event has no request). The delete token never leaves teledrop.

With ``secret`` set, ``X-Teledrop-Signature: sha256=<hex>`` is the HMAC-SHA256 of the exact
body bytes keyed with the secret; a receiver recomputes it and compares with
``hmac.compare_digest`` (see :func:`signature`).

The POST runs in the thread that handled the request, after the drop is committed: a slow
or unreachable receiver delays that response by about ``timeout`` (applied to each socket
operation; name resolution is not bounded by it), and a failure is logged as one warning,
never raised — the drop is already stored and an event cannot undo it. Redirects are not
followed, so a signed body only ever goes to the configured URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from teledrop import hookimpl
from teledrop.core.config import Config
from teledrop.core.drop import Drop

log = logging.getLogger(__name__)

#: The plugin's name whether it comes from its entry point or from
#: ``create_app(config, plugins=[teledrop_webhook])``: ``[plugins.webhook]`` configures it,
#: ``[plugins] disabled = ["webhook"]`` turns it off.
teledrop_plugin_name = "webhook"
NAME = teledrop_plugin_name

SIGNATURE_HEADER = "X-Teledrop-Signature"
EVENT_HEADER = "X-Teledrop-Event"
USER_AGENT = "teledrop-webhook/0.1.0"
#: A longer wait would hold an upload's response (and a server thread) hostage to the receiver.
MAX_TIMEOUT = 10.0


@dataclass(frozen=True)
class WebhookSettings:
    """``[plugins.webhook]``. Every field has a default: teledrop builds the settings even
    when the table is absent, and an empty ``url`` leaves the plugin idle."""

    url: str = ""
    timeout: float = 2.0
    secret: str = ""

    def check(self) -> dict[str, str]:
        """Problems by key; teledrop stops start-up naming ``plugins.webhook.<key>``."""
        problems = {}
        if self.url:
            problem = url_problem(self.url)
            if problem:
                problems["url"] = problem
        if not 0 < self.timeout <= MAX_TIMEOUT:
            problems["timeout"] = f"must be more than 0 and at most {MAX_TIMEOUT:g} seconds"
        return problems


def url_problem(url: str) -> str | None:
    # The URL itself stays out of the message: it may carry a token.
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return f"must be an http:// or https:// URL (got scheme {parts.scheme or 'none'!r})"
    if not parts.hostname:
        return "has no host"
    return None


@hookimpl
def teledrop_config_schema() -> dict[str, type]:
    return {NAME: WebhookSettings}


@hookimpl
def teledrop_drop_created(drop: Drop, config: Config, settings: Mapping[str, Any]) -> None:
    send(settings[NAME], {"event": "created", "drop": drop_json(drop, config)})


@hookimpl
def teledrop_drop_deleted(drop: Drop, reason: str, config: Config,
                          settings: Mapping[str, Any]) -> None:
    send(settings[NAME], {"event": "deleted", "reason": reason, "drop": drop_json(drop, config)})


def drop_json(drop: Drop, config: Config) -> dict[str, Any]:
    """The drop as the API shows it, never with its delete token."""
    base = config.server.base_url.rstrip("/")
    data = drop.to_json(f"{base}/{drop.slug}", with_delete_token=False)
    if not base:
        del data["url"]
    return data


def signature(secret: str, body: bytes) -> str:
    """The ``X-Teledrop-Signature`` value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError for the 3xx


_opener = urllib.request.build_opener(_NoRedirects)


def send(settings: WebhookSettings, payload: dict[str, Any]) -> None:
    """POST ``payload``; log a failure instead of raising it."""
    if not settings.url:
        return
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               EVENT_HEADER: payload["event"]}
    if settings.secret:
        headers[SIGNATURE_HEADER] = signature(settings.secret, body)
    request = urllib.request.Request(settings.url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=settings.timeout):
            pass
    except Exception as exc:  # noqa: BLE001 - an event must never fail the request
        log.warning("webhook: %s event for %s not delivered to %s: %s", payload["event"],
                    payload["drop"]["slug"], origin(settings.url), exc)


def origin(url: str) -> str:
    """Scheme, host and port: what a log may show of a URL whose path or query may hold a
    token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
