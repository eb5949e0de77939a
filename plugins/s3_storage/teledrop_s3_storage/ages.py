"""How old an object store's timestamps are."""

from __future__ import annotations

import time
from datetime import datetime, timezone


def age(when: datetime) -> float:
    """Seconds since ``when`` (naive: UTC), never below 0."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, time.time() - when.timestamp())
