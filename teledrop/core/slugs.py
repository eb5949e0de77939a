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
#: log2(63) + 8 * log2(64) ≈ 53.98 bits: above the 48 a link must carry.
GENERATED_SLUG_LENGTH = 9


def generate_slug() -> str:
    return secrets.choice(FIRST_CHARS) + "".join(
        secrets.choice(URL_SAFE) for _ in range(GENERATED_SLUG_LENGTH - 1))


def check_custom_slug(slug: str) -> None:
    """:raises InvalidSlug: when ``slug`` breaks the custom-slug syntax."""
    if not CUSTOM_SLUG.fullmatch(slug):
        raise InvalidSlug(f"a custom slug is {CUSTOM_SLUG_RULE}")


def check_not_reserved(slug: str) -> None:
    """:raises InvalidSlug: when ``slug`` names one of the app's own paths."""
    if slug.lower() in RESERVED:
        raise InvalidSlug(f"{slug!r} is reserved")
