"""Running teledrop under gunicorn: settings from the teledrop config, one-line start-up
errors, and the ``teledrop serve`` application."""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping
from typing import Any

from gunicorn import util as gunicorn_util

from teledrop import composition, metrics
from teledrop.core.config import Config, load_config
from teledrop.core.errors import StartupError
from teledrop.worker import worker_class

#: gunicorn's WORKER_BOOT_ERROR: the master stops instead of respawning the worker.
WORKER_BOOT_ERROR = 3


def fail(error: StartupError, status: int = 1) -> None:
    """Print a start-up error as one line and exit (no traceback)."""
    print(f"teledrop: {error}", file=sys.stderr)
    raise SystemExit(status)


def check_startup(config: Config) -> None:
    """Validate config, plugins, plugin settings and backends once, in the master, before
    any worker forks. The backends are opened and closed again: workers open their own."""
    composition.start(config).close()


def gunicorn_settings(config: Config) -> dict[str, Any]:
    """gunicorn settings from ``[server]``: a gthread worker, so a slow upload holds a
    thread, not a process, and one that holds no thread past ``limits.idle_timeout``
    (:mod:`teledrop.worker`)."""
    return {
        "bind": [config.server.bind],
        "workers": config.server.workers,
        "threads": config.server.threads,
        "worker_class": worker_class(config),
        # A gthread worker's timeout is its heartbeat, not a request limit: long uploads
        # keep running.
        "timeout": 60,
        "graceful_timeout": 30,
        "keepalive": 5,
        # teledrop writes its own access line (JSON, with slug and size): see teledrop.logs.
        "accesslog": None,
        "errorlog": "-",
        "loglevel": config.server.log_level,
        "post_fork": _post_fork,
        # X-Forwarded-* is trusted only through [server] proxy_hops (werkzeug's ProxyFix);
        # gunicorn's own default would trust it from loopback.
        "forwarded_allow_ips": "",
        # Each teledrop gunicorn is managed by its own signals; a shared default control
        # socket (~/.gunicorn) would let one instance take over another's.
        "control_socket_disable": True,
    }


#: glibc's mallopt parameters (malloc.h), each with the environment variable glibc reads
#: for it and teledrop's value, measured with bench/run.py (docs/performance.md). Arenas:
#: each thread would otherwise get its own; 16 concurrent uploads took a worker to
#: 107-112 MiB, two arenas hold it near 45-82 MiB (with 256 KiB and 1 MiB reads). The mmap
#: and trim thresholds were measured too and are left to glibc: with 256 KiB reads they no
#: longer changed the CPU time.
MALLOC_TUNING = (
    (-8, "MALLOC_ARENA_MAX", 2),  # M_ARENA_MAX
)


def tune_malloc(environ: Mapping[str, str] = os.environ) -> list[str]:
    """Set glibc's allocator up for a worker, before its threads start; a parameter whose
    environment variable the operator set is left to it. The variables of the parameters
    set; none where glibc is not the allocator."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return []
    return [name for param, name, value in MALLOC_TUNING
            if name not in environ and mallopt(param, value) == 1]


#: Longest reason teledrop repeats from a request gunicorn could not parse.
MAX_FRAMING_REASON = 200


def write_plain_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's answer to a request it could not parse (a malformed request line, two
    Content-Lengths, headers past its limits), in teledrop's error form: one plain-text
    line instead of gunicorn's HTML page. Control characters from the request are not
    repeated, and the connection is closed, as gunicorn does."""
    text = f"{reason.lower()}: {mesg}" if mesg else reason.lower()
    line = "".join(c if c.isprintable() else "?" for c in text)[:MAX_FRAMING_REASON]
    body = f"{line}\n".encode("utf-8", "replace")
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
    gunicorn_util.write_nonblock(sock, head + body)


def _post_fork(server: Any, worker: Any) -> None:
    tune_malloc()
    # gunicorn's workers answer framing errors through util.write_error (and only there).
    gunicorn_util.write_error = write_plain_error


class AcceptedConfig:
    """The config a gunicorn master started with, or accepted last on a reload (SIGHUP).

    At start a config that does not check stops the server with one line. On a reload it is
    refused instead: the line is logged and the running config stays, so a typo cannot take
    a running server down; the metrics carry on across the reload. Workers fork from the
    master and build their app from :attr:`config` rather than read the file again, so a
    worker started after a refused reload runs what the others run."""

    def __init__(self) -> None:
        self.config: Config | None = None

    def load(self, path: str | None = None) -> Config:
        """The config to run: the file's, once checked, or the running one."""
        try:
            config = load_config(path)
            check_startup(config)
        except StartupError as exc:
            if self.config is None:
                fail(exc)
            print(f"teledrop: reload refused, the running config stays: {exc}",
                  file=sys.stderr)
            return self.config
        if self.config is None:
            metrics.prepare_dir(config)
        self.config = config
        return config


#: The master's accepted config for ``gunicorn -c conf/gunicorn.conf.py wsgi:app``, read by
#: ``wsgi.py`` in each worker. gunicorn runs its config file again, in a fresh namespace,
#: on every reload, and builds a worker's app by importing ``wsgi.py``: a module is the one
#: place both reach. ``teledrop serve`` keeps its own (:func:`serve`).
GUNICORN_CONF = AcceptedConfig()


def serve(path: str | None = None) -> None:
    """``teledrop serve``: gunicorn with the config's server settings."""
    from gunicorn.app.base import BaseApplication

    class TeledropServer(BaseApplication):  # type: ignore[misc]
        def __init__(self) -> None:
            self.accepted = AcceptedConfig()
            super().__init__()

        def load_config(self) -> None:  # at start, and again on each reload (SIGHUP)
            for key, value in gunicorn_settings(self.accepted.load(path)).items():
                self.cfg.set(key, value)

        def load(self) -> Any:  # in each worker, forked from this object
            from teledrop.web import create_app
            try:
                return create_app(self.accepted.config)
            except StartupError as exc:
                fail(exc, WORKER_BOOT_ERROR)

    TeledropServer().run()
