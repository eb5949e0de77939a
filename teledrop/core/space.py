"""Room for uploads: ``limits.min_free_space`` and ``limits.max_total_size``.

An upload of known size (a raw body's Content-Length, or a multipart body's as an upper
bound) is refused before its body is read when it would leave less free space than
``min_free_space`` or take all drops together past ``max_total_size``. Every upload is
also held to both while it streams, so one of unknown size (chunked) is refused as soon
as it crosses either: the total is tracked from the bytes written, the free space is read
again every :data:`FREE_SPACE_CHECK_INTERVAL` bytes (one ``statvfs`` per MiB, not per
read). The space the upload already wrote is in the storage's free space, so while
streaming it is the free space itself that must stay above the minimum.
"""

from __future__ import annotations

from .errors import StorageFull
from .service import Teledrop
from .units import format_size

FREE_SPACE_CHECK_INTERVAL = 1024 * 1024


def free_space_shortfall(service: Teledrop, needed: int = 0) -> str | None:
    """Why ``needed`` more bytes would take the storage below ``limits.min_free_space``;
    ``None`` when they fit, the check is off, or the storage cannot tell its free space."""
    minimum = service.config.limits.min_free_space
    if not minimum:
        return None
    free = service.storage.free_space()
    if free is None or free - needed >= minimum:
        return None
    return (f"the storage has {format_size(free)} free, and keeps at least "
            f"{format_size(minimum)} (limits.min_free_space)")


class Room:
    """What one upload may still take. The total of all drops is read once, when first
    needed: each upload is held to the total as it was when it began."""

    def __init__(self, service: Teledrop) -> None:
        self.service = service
        self.max_total = service.config.limits.max_total_size
        self._total_before: int | None = None
        self._next_free_check = FREE_SPACE_CHECK_INTERVAL

    def reserve(self, size: int) -> None:
        """Before the body: :raises StorageFull: when ``size`` bytes do not fit."""
        self._check_total(size)
        shortfall = free_space_shortfall(self.service, size)
        if shortfall:
            raise StorageFull(f"the upload does not fit: {shortfall}")

    def written(self, size: int) -> None:
        """While streaming, after each write (``size`` written so far). Cheap: the free
        space is read only every FREE_SPACE_CHECK_INTERVAL bytes.

        :raises StorageFull: once the upload crosses either limit."""
        self._check_total(size)
        if size >= self._next_free_check:
            self._next_free_check = size + FREE_SPACE_CHECK_INTERVAL
            shortfall = free_space_shortfall(self.service)
            if shortfall:
                raise StorageFull(f"the upload was stopped: {shortfall}")

    def _check_total(self, size: int) -> None:
        if self.max_total is None:
            return
        if self._total_before is None:
            self._total_before = self.service.metadata.total_size()
        if self._total_before + size > self.max_total:
            raise StorageFull(f"all drops together may not pass {format_size(self.max_total)} "
                              "(limits.max_total_size)")
