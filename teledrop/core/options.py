"""Option values a client sends at upload (form field or query) and in a PATCH."""

from __future__ import annotations

import re

from .errors import InvalidOption
from .units import parse_duration

MAX_TITLE = 200
MAX_DESCRIPTION = 1000
MAX_DOWNLOADS = 2**62
#: Bidirectional controls let ``invoice<RLO>fdp.exe`` display as ``invoiceexe.pdf``.
BIDI_CONTROLS = "\u200e\u200f\u202a-\u202e\u2066-\u2069"
#: Control characters, line separators and bidi controls: never in a name or title.
UNSAFE_IN_NAMES = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029{BIDI_CONTROLS}]")
#: A description may hold line breaks and tabs, no other control character.
_DESCRIPTION_FORBIDDEN = re.compile(
    f"[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f{BIDI_CONTROLS}]")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def parse_expires(value: str, max_expires: int) -> int:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise InvalidOption(f"expires: {exc}") from None
    if not 1 <= seconds <= max_expires:
        raise InvalidOption(f"expires must be between 1s and {max_expires}s")
    return seconds


def parse_max_downloads(value: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise InvalidOption(f"max_downloads must be an integer >= 1, got {value[:40]!r}")
    # Checked before int(): past 4,300 digits Python refuses to convert a string at all.
    if len(value.lstrip("0")) > len(str(MAX_DOWNLOADS)) or int(value) > MAX_DOWNLOADS:
        raise InvalidOption("max_downloads is too large")
    if int(value) < 1:
        raise InvalidOption(f"max_downloads must be an integer >= 1, got {value!r}")
    return int(value)


def parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidOption(f"{name} must be true or false, got {value!r}")


def _utf8(name: str, value: str) -> str:
    """JSON can carry lone surrogates (\\ud800), which no UTF-8 store can hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidOption(f"{name} is not valid Unicode text") from None
    return value


def _clean_text(what: str, value: str, longest: int, forbidden: re.Pattern[str],
                allowed: str) -> str:
    value = _utf8(what, value).strip()
    if len(value) > longest:
        raise InvalidOption(f"{what} is at most {longest} characters")
    if forbidden.search(value):
        raise InvalidOption(f"{what} cannot contain control characters{allowed}")
    return value


def clean_title(value: str) -> str:
    return _clean_text("a title", value, MAX_TITLE, UNSAFE_IN_NAMES, " or line breaks")


def clean_description(value: str) -> str:
    return _clean_text("a description", value, MAX_DESCRIPTION, _DESCRIPTION_FORBIDDEN, "")
