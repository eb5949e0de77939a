"""teledrop's logs: application messages and one JSON access line per request, on stderr."""

from __future__ import annotations

import logging
import sys

_HANDLER_NAME = "teledrop-stderr"


def configure(level: str) -> None:
    """Set the ``teledrop`` loggers to ``level``, and route them to stderr unless the process
    already sends logs somewhere (an app that embeds teledrop, a test runner): there they
    go on propagating, as any library's records do. Idempotent (one app per worker, several
    in tests)."""
    logger = logging.getLogger("teledrop")
    logger.setLevel(level.upper())
    if logger.hasHandlers():
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
