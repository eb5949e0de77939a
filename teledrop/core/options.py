"""Option values a client sends at upload (form field or query) and in a PATCH."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from .errors import InvalidOption
from .units import parse_duration

MAX_TITLE = 200
MAX_DESCRIPTION = 1000
MAX_DOWNLOADS = 2**62
#: The two joiners are format characters with a visible effect: emoji sequences and
#: Persian spelling need them.
_JOINERS = frozenset("\u200c\u200d")
#: Line breaks and tabs, the control characters a description may hold.
_DESCRIPTION_CONTROLS = frozenset("\t\n\r")


def _invisible(char: str) -> bool:
    """A control character, or a format character (Unicode category Cf) other than a joiner.
    Format characters are invisible: bidi controls let ``invoice<RLO>fdp.exe`` display as
    ``invoiceexe.pdf`` (U+061C, U+200E, U+202A-U+202E, U+2066-U+2069), and zero-width
    spaces, word joiners, U+FEFF, U+180E and tag characters make two names that look
    alike differ."""
    category = unicodedata.category(char)
    return category == "Cc" or (category == "Cf" and char not in _JOINERS)


def unsafe_in_name(text: str) -> bool:
    """Whether ``text`` holds what a filename or title never may: a control, format or
    line-separating character."""
    return any(_invisible(c) or unicodedata.category(c) in ("Zl", "Zp") for c in text)


def _unsafe_in_description(text: str) -> bool:
    return any(_invisible(c) and c not in _DESCRIPTION_CONTROLS for c in text)


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


def _clean_text(what: str, value: str, longest: int, unsafe: Callable[[str], bool],
                allowed: str) -> str:
    value = _utf8(what, value).strip()
    if len(value) > longest:
        raise InvalidOption(f"{what} is at most {longest} characters")
    if unsafe(value):
        raise InvalidOption(f"{what} cannot contain control or invisible formatting "
                            f"characters{allowed}")
    return value


def clean_title(value: str) -> str:
    return _clean_text("a title", value, MAX_TITLE, unsafe_in_name, " or line breaks")


def clean_description(value: str) -> str:
    return _clean_text("a description", value, MAX_DESCRIPTION, _unsafe_in_description, "")
