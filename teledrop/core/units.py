"""Sizes (``10GiB``) and durations (``7d``) as written in config files and options."""

from __future__ import annotations

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
    return int(float(match.group(1)) * units[unit])


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


def format_size(n: int) -> str:
    """A human-readable size for messages: ``10 GiB``, ``512 B``."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= factor:
            return f"{n / factor:g} {unit}"
    return f"{n} B"
