"""Running teledrop under gunicorn: settings from the teledrop config, one-line start-up
errors, and the ``teledrop serve`` application."""

from __future__ import annotations

import sys
from typing import Any

from teledrop.core.config import Config, load_config
from teledrop.core.errors import ConfigError, StartupError
from teledrop.core.service import plugin_settings
from teledrop.plugins.manager import make_plugin_manager


def fail(error: StartupError) -> None:
    """Print a start-up error as one line and exit (no traceback)."""
    print(f"teledrop: {error}", file=sys.stderr)
    raise SystemExit(1)


def check_startup(config: Config) -> None:
    """Validate config, plugins and plugin settings without opening backends (the master
    process must not hold connections that forked workers would share)."""
    pm = make_plugin_manager(config.plugins.disabled, source=config.source_of("plugins.disabled"))
    plugin_settings(pm, config)
    for kind, hook in (("storage", pm.hook.teledrop_storage_backends),
                       ("metadata", pm.hook.teledrop_metadata_backends)):
        names = {name for offer in hook() for name in offer}
        chosen = getattr(config, kind).plugin
        if chosen not in names:
            raise ConfigError(config.source_of(f"{kind}.plugin"), f"{kind}.plugin",
                              f"{kind} plugin {chosen!r} is not installed "
                              f"(available: {', '.join(sorted(names)) or 'none'})")


def gunicorn_settings(config: Config) -> dict[str, Any]:
    """gunicorn settings from ``[server]``: the gthread worker, so a slow upload holds a
    thread, not a process."""
    return {
        "bind": [config.server.bind],
        "workers": config.server.workers,
        "threads": config.server.threads,
        "worker_class": "gthread",
        # A gthread worker's timeout is its heartbeat, not a request limit: long uploads
        # keep running.
        "timeout": 60,
        "graceful_timeout": 30,
        "keepalive": 5,
        "accesslog": "-",
        "errorlog": "-",
        # X-Forwarded-* is trusted only through [server] proxy_hops (werkzeug's ProxyFix);
        # gunicorn's own default would trust it from loopback.
        "forwarded_allow_ips": "",
    }


def load_or_fail(path: str | None = None) -> Config:
    try:
        config = load_config(path)
        check_startup(config)
    except StartupError as exc:
        fail(exc)
    return config


def serve(path: str | None = None) -> None:
    """``teledrop serve``: gunicorn with the config's server settings."""
    from gunicorn.app.base import BaseApplication

    config = load_or_fail(path)

    class TeledropServer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in gunicorn_settings(config).items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from teledrop.web import create_app
            try:
                return create_app(config)
            except StartupError as exc:
                fail(exc)

    TeledropServer().run()
