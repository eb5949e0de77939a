"""Drop passwords: stored only as argon2id hashes, wrong guesses rate-limited per drop."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import InvalidOption

#: OWASP's argon2id minimum (19 MiB, 2 passes): a verification costs tens of ms and
#: 19 MiB, so a worker's threads can check passwords at once without a memory spike.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
MAX_PASSWORD_BYTES = 1024
#: The header a password travels in, at upload and to read a drop.
PASSWORD_HEADER = "X-Drop-Password"
#: Wrong passwords allowed per drop within ATTEMPT_WINDOW seconds.
MAX_ATTEMPTS = 5
ATTEMPT_WINDOW = 60


def refuse_in_query(query: Mapping[str, str], name: str, instead: str) -> None:
    """:raises InvalidOption: when the query string carries ``name``, a secret: query
    strings land in access logs."""
    if name in query:
        raise InvalidOption(f"never send a {name} in the query string (it lands in logs): "
                            f"use {instead}")


def reader_password(query: Mapping[str, str], headers: Mapping[str, str],
                    basic: str | None = None,
                    form: Callable[[], str | None] = lambda: None) -> str | None:
    """The password a reader gives for a drop: the ``X-Drop-Password`` header, else HTTP
    Basic's (``basic``, with any user name), else the page's form field (``form`` reads it,
    only when needed); never the query string.

    :raises InvalidOption: when the query string carries a password.
    """
    refuse_in_query(query, "password", f"the {PASSWORD_HEADER} header or HTTP Basic")
    header = headers.get(PASSWORD_HEADER)
    if header is not None:
        return header_password(header)
    return basic if basic is not None else form()


def header_password(raw: str) -> str:
    """A password from an HTTP header. WSGI hands header bytes over as latin-1; clients
    (curl, browsers) send UTF-8, which the form and HTTP Basic already decode as such."""
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:  # not UTF-8 (or not latin-1 bytes at all): take it as it came
        return raw


def hash_password(password: str) -> str:
    if not password:
        raise InvalidOption("a password cannot be empty")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidOption("a password must be valid Unicode text") from None
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise InvalidOption(f"a password is at most {MAX_PASSWORD_BYTES} bytes")
    return _HASHER.hash(password)


def password_matches(password: str, stored_hash: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False
