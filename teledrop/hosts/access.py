"""The access log: one JSON line per request on the ``teledrop.access`` logger, the same
from every host, so one query reads the logs of gunicorn workers and Lambda functions."""

from __future__ import annotations

import json
import logging

from teledrop.core.drop import Drop

access_log = logging.getLogger("teledrop.access")


def log_access(method: str, path: str, status: int, elapsed: float, drop: Drop | None,
               bytes_sent: int | None, error: str | None, remote: str | None,
               request_id: str | None = None) -> None:
    """One request's line. ``drop`` is the drop the request dealt with, ``error`` the code
    of the error it answered, ``request_id`` the platform's id of the request where it has
    one (a Lambda invocation's), so a line leads to the rest of that request's log."""
    access_log.info(json.dumps({
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(elapsed * 1000, 1),
        "slug": drop.slug if drop else None,
        "size": drop.size if drop else None,
        "bytes_sent": bytes_sent if method != "HEAD" else 0,
        "error": error,
        "remote": remote,
        "request_id": request_id,
    }, separators=(",", ":")))
