"""Sizes (``10GiB``) and durations (``7d``): read as written in config files and options,
and written for messages, pages and a terminal."""

from __future__ import annotations

import math
import re

_SIZE_UNITS = {
    "": 1, "b": 1,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_NUMBER_UNIT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*")


def _quantity(value: int | str, units: dict[str, int], kind: str, hint: str,
              case_sensitive: bool) -> int:
    if isinstance(value, bool):
        raise ValueError(f"not a {kind}: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a {kind} cannot be negative: {value}")
        return value
    match = _NUMBER_UNIT.fullmatch(str(value))
    unit = match.group(2) if match else None
    if unit is not None and not case_sensitive:
        unit = unit.lower()
    if not match or unit not in units:
        raise ValueError(f"not a {kind}: {value!r} ({hint})")
    amount = float(match.group(1)) * units[unit]
    if not math.isfinite(amount):  # past 1.8e308 a float is infinite, and int() refuses it
        raise ValueError(f"too large a {kind}: {len(match.group(1))} digits")
    return int(amount)


def parse_size(value: int | str) -> int:
    """Bytes from an integer or a string such as ``"10GiB"`` or ``"500 MB"``.

    :raises ValueError: with a one-line reason.
    """
    return _quantity(value, _SIZE_UNITS, "size", "bytes, or a number with KiB MiB GiB KB MB GB",
                     case_sensitive=False)


def parse_optional_size(value: int | str) -> int | None:
    """A size, or ``None`` for an empty string (no limit).

    :raises ValueError: with a one-line reason.
    """
    return None if isinstance(value, str) and not value.strip() else parse_size(value)


def parse_duration(value: int | str) -> int:
    """Seconds from an integer or a string such as ``"90"``, ``"15m"`` or ``"7d"``.

    :raises ValueError: with a one-line reason.
    """
    # Case matters: "m" is minutes, and "M" would read as months to some.
    return _quantity(value, _DURATION_UNITS, "duration", "seconds, or a number with s m h d",
                     case_sensitive=True)


#: Binary units, largest first.
_BINARY_UNITS = (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))
#: Units of a written duration, largest first: short (``7d``) and in words (``7 days``).
_DURATION_WORDS = (("d", "day", 86400), ("h", "hour", 3600), ("m", "minute", 60))


def binary_unit(n: float) -> tuple[str, int]:
    """The largest binary unit not above ``n`` (``("B", 1)`` below a KiB), and its factor."""
    return next(((unit, factor) for unit, factor in _BINARY_UNITS if n >= factor), ("B", 1))


def format_size(n: int) -> str:
    """A human-readable size for messages: ``10 GiB``, ``512 B``."""
    unit, factor = binary_unit(n)
    return f"{n} B" if factor == 1 else f"{n / factor:g} {unit}"


def describe_size(n: int) -> str:
    """``4.0 MiB (4,194,304 bytes)``, as the upload page's script writes it."""
    if n < 1024:
        return "1 byte" if n == 1 else f"{n} bytes"
    unit, factor = binary_unit(n)
    value = n / factor
    return f"{value:.{1 if value < 10 else 0}f} {unit} ({n:,} bytes)"


def format_progress_size(n: float) -> str:
    """One decimal always, so that a progress line does not jitter: ``12.0 MiB``."""
    unit, factor = binary_unit(n)
    return f"{n:.0f} B" if factor == 1 else f"{n / factor:.1f} {unit}"


def format_duration(seconds: int) -> str:
    """``7d``, ``90m``, ``45s``: the largest unit that divides it, as options take it."""
    for short, _, size in _DURATION_WORDS:
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{short}"
    return f"{seconds}s"


def describe_duration(seconds: int) -> str:
    """``7 days``, ``1 hour``, ``90 minutes``: :func:`format_duration` in words."""
    for _, word, size in _DURATION_WORDS:
        if seconds % size == 0 and seconds >= size:
            count = seconds // size
            return f"{count} {word}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


#: The steps of :func:`relative_time`, largest first.
_RELATIVE_UNITS = (("year", 365 * 86400), ("month", 30 * 86400), ("day", 86400),
                   ("hour", 3600), ("minute", 60))


def relative_time(seconds: int) -> str:
    """``in 6 days``, ``in 1 hour``, ``3 minutes ago``: ``seconds`` from now in the largest
    unit that fits, rounded to the nearest; under a minute is ``in less than a minute``."""
    span = abs(seconds)
    for word, size in _RELATIVE_UNITS:
        if span >= size:
            count = round(span / size)
            amount = f"{count} {word}{'' if count == 1 else 's'}"
            return f"in {amount}" if seconds > 0 else f"{amount} ago"
    return "in less than a minute" if seconds > 0 else "just now"


def format_eta(seconds: float) -> str:
    """Time left in at most 6 characters: ``4:09``, ``59:59``, ``2h05m``, ``99h59m``, ``>99h``."""
    whole = math.ceil(seconds)
    if whole < 3600:
        return f"{whole // 60}:{whole % 60:02d}"
    if whole < 100 * 3600:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return ">99h"
