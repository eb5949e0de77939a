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


def hash_password(password: str) -> str:
    if not password:
        raise InvalidOption("a password cannot be empty")
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        raise InvalidOption(f"a password is at most {MAX_PASSWORD_BYTES} bytes")
    return _HASHER.hash(password)


def password_matches(password: str, stored_hash: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False
