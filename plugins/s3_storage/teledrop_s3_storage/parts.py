"""Multipart part sizes: S3 takes at most 10,000 parts of 5 MiB to 5 GiB (the last one may
be smaller), and parts need not all be the same size.

A writer starts with the configured size, grown so that the size it was told to expect
fits in 10,000 parts. Past that (no size was known, or the body outgrew it) the parts
double every :data:`GROWTH_STEP` parts from part :data:`GROWTH_START` on, so memory grows
only for files that would otherwise hit the cap.
"""

from __future__ import annotations

MIB = 1024**2
MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 * 1024**3
MAX_PARTS = 10_000
GROWTH_START = 9_000
GROWTH_STEP = 100


def initial_part_size(configured: int, size_hint: int | None, max_parts: int = MAX_PARTS) -> int:
    """The part size for a file expected to be at most ``size_hint`` bytes: ``configured``,
    or more (whole MiB) when the file would not fit in ``max_parts`` of them."""
    if size_hint is None:
        return configured
    needed = -(-size_hint // max_parts)
    needed = -(-needed // MIB) * MIB
    return min(MAX_PART_SIZE, max(configured, needed))


def part_size(base: int, number: int) -> int:
    """The size of part ``number`` (from 1) of a writer that started with ``base``."""
    if number <= GROWTH_START:
        return base
    doublings = (number - GROWTH_START - 1) // GROWTH_STEP + 1
    return min(MAX_PART_SIZE, base << doublings)


def capacity(base: int) -> int:
    """The largest file a writer that started with ``base`` can store."""
    return sum(part_size(base, number) for number in range(1, MAX_PARTS + 1))
