"""The access lines teledrop logs (``teledrop.access``), collected as a test's fixture."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def access_lines() -> Iterator[list[dict[str, Any]]]:
    """Every access line logged while the test runs, as parsed JSON."""
    lines: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(record.getMessage()))

    handler = Collect()
    logger = logging.getLogger("teledrop.access")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)
