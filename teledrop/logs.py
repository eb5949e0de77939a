"""teledrop's logs: application messages and one JSON access line per request, on stderr."""

from __future__ import annotations

import logging
import sys

_HANDLER_NAME = "teledrop-stderr"


def configure(level: str) -> None:
    """Route the ``teledrop`` loggers to stderr at ``level``. Idempotent (one app per worker,
    several in tests)."""
    logger = logging.getLogger("teledrop")
    logger.setLevel(level.upper())
    if any(h.get_name() == _HANDLER_NAME for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
