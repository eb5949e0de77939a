"""Slug rules. A slug is the capability to read a drop: generated ones are unguessable."""

from __future__ import annotations

import math
import re
import secrets
import string

from .errors import InvalidSlug

#: Words a custom slug may not take: the app's own routes and well-known files.
RESERVED = frozenset(
    {"api", "static", "healthz", "metrics", "openapi.json", "favicon.ico", "robots.txt"}
)
CUSTOM_SLUG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{2,63}")
URL_SAFE = string.ascii_letters + string.digits + "-_"
#: A leading "-" would read as an option on a command line (``teledrop info -x``).
FIRST_CHARS = URL_SAFE.replace("-", "")
GENERATED_SLUG_LENGTH = 9
#: log2(63) + 8 * log2(64) ≈ 53.98 bits: above the 48 a link must carry.
GENERATED_SLUG_BITS = math.log2(len(FIRST_CHARS)) + \
    (GENERATED_SLUG_LENGTH - 1) * math.log2(len(URL_SAFE))


def generate_slug() -> str:
    return secrets.choice(FIRST_CHARS) + "".join(
        secrets.choice(URL_SAFE) for _ in range(GENERATED_SLUG_LENGTH - 1))


def check_custom_slug(slug: str) -> None:
    """:raises InvalidSlug: when ``slug`` breaks the custom-slug syntax."""
    if not CUSTOM_SLUG.fullmatch(slug):
        raise InvalidSlug(
            "a custom slug is 3-64 characters of A-Z a-z 0-9 . _ - and does not start "
            "with . or -"
        )


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
