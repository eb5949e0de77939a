"""Slug rules. A slug is the capability to read a drop: generated ones are unguessable."""

from __future__ import annotations

import re
import secrets
import string

from .errors import InvalidSlug

#: Words a custom slug may not take: the app's own routes and well-known files.
RESERVED = frozenset(
    {"api", "static", "healthz", "metrics", "openapi.json", "favicon.ico", "robots.txt"}
)
CUSTOM_SLUG_MIN, CUSTOM_SLUG_MAX = 3, 64
#: The custom slug syntax. Written so that it also serves as an HTML ``pattern`` (Chromium
#: compiles those with the ``v`` flag, where ``-`` in a class must be escaped).
CUSTOM_SLUG_PATTERN = rf"[A-Za-z0-9_][A-Za-z0-9._\-]{{{CUSTOM_SLUG_MIN - 1},{CUSTOM_SLUG_MAX - 1}}}"
CUSTOM_SLUG = re.compile(CUSTOM_SLUG_PATTERN)
#: The syntax in words, for error messages and help.
CUSTOM_SLUG_RULE = (f"{CUSTOM_SLUG_MIN}-{CUSTOM_SLUG_MAX} characters of A-Z a-z 0-9 . _ - "
                    "and does not start with . or -")
URL_SAFE = string.ascii_letters + string.digits + "-_"
#: A leading "-" would read as an option on a command line (``teledrop info -x``).
FIRST_CHARS = URL_SAFE.replace("-", "")
#: The randomness every generated slug must carry: a link is the capability to read a file.
MIN_GENERATED_BITS = 48
#: log2(63) + 8 * log2(64) ≈ 53.98 bits: above the 48 a link must carry.
GENERATED_SLUG_LENGTH = 9
#: A generated slug's syntax, whoever generates it: URL-safe characters (a leading "-" is
#: allowed; teledrop's own never has one), at least as many as 48 bits need at 6 bits each,
#: and no longer than any slug.
GENERATED_SLUG_MIN = -(-MIN_GENERATED_BITS // 6)
GENERATED_SLUG = re.compile(rf"[A-Za-z0-9_-]{{{GENERATED_SLUG_MIN},{CUSTOM_SLUG_MAX}}}")
GENERATED_SLUG_RULE = (f"{GENERATED_SLUG_MIN}-{CUSTOM_SLUG_MAX} characters of A-Z a-z 0-9 - _ "
                       f"(at least {MIN_GENERATED_BITS} random bits need "
                       f"{GENERATED_SLUG_MIN} of them)")


def generate_slug() -> str:
    return secrets.choice(FIRST_CHARS) + "".join(
        secrets.choice(URL_SAFE) for _ in range(GENERATED_SLUG_LENGTH - 1))


def check_generated_slug(slug: object) -> None:
    """:raises InvalidSlug: when a generated ``slug`` is not one teledrop can serve as a
    link (its randomness cannot be seen in one slug: that is the generator's promise)."""
    if not isinstance(slug, str):
        raise InvalidSlug(f"a generated slug must be a string, not {type(slug).__name__}")
    if not GENERATED_SLUG.fullmatch(slug):
        raise InvalidSlug(f"a generated slug is {GENERATED_SLUG_RULE}")
    check_not_reserved(slug)


def check_custom_slug(slug: str) -> None:
    """:raises InvalidSlug: when ``slug`` breaks the custom-slug syntax."""
    if not CUSTOM_SLUG.fullmatch(slug):
        raise InvalidSlug(f"a custom slug is {CUSTOM_SLUG_RULE}")


def check_not_reserved(slug: str) -> None:
    """:raises InvalidSlug: when ``slug`` names one of the app's own paths."""
    if slug.lower() in RESERVED:
        raise InvalidSlug(f"{slug!r} is reserved")


#: Anything that could be a slug, generated (older ones may start with "-") or custom.
_SLUGLIKE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")


def could_be_slug(text: str) -> bool:
    """Whether ``text`` could name a drop: what is not is no drop, without a lookup (a
    reserved word never is: custom slugs cannot be one)."""
    return bool(_SLUGLIKE.fullmatch(text)) and text.lower() not in RESERVED
