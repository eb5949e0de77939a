"""The WSGI entry point: ``gunicorn -c conf/gunicorn.conf.py wsgi:app``.

Imported in each worker after fork (no ``preload_app``), so every worker opens its own
database connections.
"""

from teledrop.core.errors import StartupError
from teledrop.server import GUNICORN_CONF, WORKER_BOOT_ERROR, fail
from teledrop.web import create_app

try:
    # the config the master checked (and, after a reload, accepted); read here otherwise
    app = create_app(GUNICORN_CONF.config)
except StartupError as exc:
    fail(exc, WORKER_BOOT_ERROR)
