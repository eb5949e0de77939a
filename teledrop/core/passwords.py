"""Drop passwords: stored only as argon2id hashes, wrong guesses rate-limited per drop."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import InvalidOption

#: OWASP's argon2id minimum (19 MiB, 2 passes): a verification costs tens of ms and
#: 19 MiB, so a worker's threads can check passwords at once without a memory spike.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
MAX_PASSWORD_BYTES = 1024
#: Wrong passwords allowed per drop within ATTEMPT_WINDOW seconds.
MAX_ATTEMPTS = 5
ATTEMPT_WINDOW = 60


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
