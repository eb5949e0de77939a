"""Per-request observation: metrics and one structured access-log line per request."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from teledrop.core.drop import Drop
from teledrop.hosts.access import log_access
from teledrop.metrics import Metrics

EXTENSION = "teledrop.metrics"


def metrics_of(app: Flask) -> Metrics:
    return app.extensions[EXTENSION]


def note_drop(drop: Drop) -> None:
    """Name the drop a request dealt with, for its access-log line."""
    g.teledrop_drop = drop


def note_error(code: str) -> None:
    g.teledrop_error = code


def install(app: Flask, metrics: Metrics) -> None:
    app.extensions[EXTENSION] = metrics
    app.before_request(_start)
    app.after_request(lambda response: _finish(metrics, response))


def _start() -> None:
    g.teledrop_started = time.perf_counter()


def _finish(metrics: Metrics, response: Response) -> Response:
    started = g.get("teledrop_started", time.perf_counter())
    elapsed = time.perf_counter() - started
    drop: Drop | None = g.get("teledrop_drop")
    error: str | None = g.get("teledrop_error")
    status = response.status_code
    if error is not None:
        metrics.errors.labels(code=error).inc()
    elif drop is not None and status == 201:
        metrics.uploads.inc()
        metrics.bytes_in.inc(drop.size)
        metrics.upload_seconds.observe(elapsed)
    elif drop is not None and status in (200, 206) and request.method != "HEAD":
        # GET, or POST from a password-protected drop's form
        metrics.downloads.inc()
        metrics.bytes_out.inc(response.content_length or 0)
    elif drop is not None and status == 204:
        metrics.deletes.inc()
    log_access(request.method, request.path, status, elapsed, drop, response.content_length,
               error, request.remote_addr)
    return response
