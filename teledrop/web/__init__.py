"""The WSGI host: Flask routes that turn requests into core calls and results into responses."""

from .app import create_app

__all__ = ["create_app"]
