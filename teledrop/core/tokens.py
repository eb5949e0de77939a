"""Secrets: delete tokens are random, returned once, stored only as a hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented token with a stored hash."""
    return hmac.compare_digest(hash_token(token), stored_hash)


def token_in(token: str, allowed: list[str]) -> bool:
    """Whether ``token`` is one of ``allowed``, without an early exit on the first match."""
    presented = token.encode("utf-8", "surrogatepass")
    found = False
    for candidate in allowed:
        found |= hmac.compare_digest(presented, candidate.encode("utf-8"))
    return found
