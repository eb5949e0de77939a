"""``create_app``: one Flask app with its own plugin manager and backends."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from teledrop import composition, logs
from teledrop.composition import PluginTeledrop
from teledrop.core.config import Config, load_config
from teledrop.core.errors import RequestTimeout, TeledropError
from teledrop.hosts.body import SMALL_BODY_LIMIT
from teledrop.hosts.http import DEFAULT_HEADERS, SECURITY_HEADERS, http_error
from teledrop.metrics import Metrics

from . import observe
from .direct import direct_bp
from .responses import error_response
from .owner_routes import owner_bp
from .qr import qr_bp
from .routes import bp
from .tus import tus_bp

log = logging.getLogger(__name__)
EXTENSION = "teledrop"


def create_app(config: Config | None = None, plugins: Iterable[object] = (),
               entry_points: Iterable[str] | None = None) -> Flask:
    """Build the app. ``config`` defaults to :func:`load_config`'s result; ``plugins`` are
    registered after the installed ones (embedding, tests); ``entry_points`` names the
    only installed plugins to load (see :func:`teledrop.composition.load_plugins`).

    :raises StartupError: with a one-line message when config or plugins are wrong.
    """
    config = config or load_config()
    logs.configure(config.server.log_level)
    service = composition.start(config, plugins, entry_points)
    app = Flask(__name__, static_folder="static", static_url_path="/static")
    app.extensions[EXTENSION] = service
    observe.install(app, Metrics())
    # Every body but an upload's is small (a password form, an owner's JSON edit): werkzeug
    # refuses a larger one with 413 before parsing it into memory or a temporary file. The
    # upload views raise the limit for their own request (routes.allow_upload_body).
    app.config["MAX_CONTENT_LENGTH"] = SMALL_BODY_LIMIT
    app.register_blueprint(bp)
    app.register_blueprint(owner_bp)
    app.register_blueprint(tus_bp)
    app.register_blueprint(direct_bp)
    app.register_blueprint(qr_bp)
    app.register_error_handler(TeledropError, _teledrop_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _server_error)
    app.after_request(_security_headers)
    if config.server.proxy_hops:
        # Only the headers the documented proxy (conf/nginx.conf) sets, overwriting what the
        # client sent: a client's own X-Forwarded-Prefix or -Port would reach teledrop
        # untouched, and bend its links and Location (``//evil.example/SLUG``).
        hops = config.server.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops,  # type: ignore[method-assign]
                                x_port=0, x_prefix=0)
    return app


def service_of(app: Flask) -> PluginTeledrop:
    return app.extensions[EXTENSION]


def _teledrop_error(error: TeledropError) -> Response:
    observe.note_error(error.code)
    return error_response(request, error)


def _http_error(exc: HTTPException) -> Response:
    if isinstance(exc.__context__, TimeoutError):
        # werkzeug's body stream reports any failed read as a vanished client (400)
        return _body_timeout()
    return _teledrop_error(http_error(exc))


def _body_timeout() -> Response:
    """A small body (a form, an owner's JSON) that stalled past ``limits.idle_timeout``
    (the socket's timeout under teledrop's gunicorn worker): the client's fault, one line
    in the log."""
    log.info("%s %s: the request body sent nothing for too long", request.method, request.path)
    return _teledrop_error(RequestTimeout())


def _server_error(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _teledrop_error(TeledropError("internal server error"))


def _security_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    for name, value in DEFAULT_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
