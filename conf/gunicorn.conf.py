"""gunicorn settings from the teledrop config.

    TELEDROP_CONFIG=conf/teledrop.toml gunicorn -c conf/gunicorn.conf.py wsgi:app

Bind address, workers and threads come from ``[server]``; a config or plugin error stops
start-up here, in the master, with one line.
"""

from teledrop.server import GUNICORN_CONF, gunicorn_settings

globals().update(gunicorn_settings(GUNICORN_CONF.load()))
