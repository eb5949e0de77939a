"""Owners: an upload token identifies who uploaded a drop.

A token is either listed in ``[auth] upload_tokens`` (its owner is named after the token's
hash, so the config never needs names) or kept in the token store that ``teledrop token``
manages (its owner is the token's name). Either way only hashes are compared and stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .drop import now
from .errors import InvalidOption, NotFound, Unauthorized
from .interfaces import TokenRecord
from .service import Teledrop
from .tokens import hash_token, new_token, token_in

TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
CONFIG_OWNER_PREFIX = "token:"


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer`` header, ``None`` when there is none."""
    scheme, _, token = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def config_owner(token: str) -> str:
    return CONFIG_OWNER_PREFIX + hash_token(token)[:16]


def identify(service: Teledrop, headers: Mapping[str, str]) -> str | None:
    """The owner a request's bearer token names; ``None`` for a request without one.

    :raises Unauthorized: for a token that is neither configured nor in the store.
    """
    token = bearer_token(headers)
    if token is None:
        return None
    if token_in(token, service.config.auth.upload_tokens):
        return config_owner(token)
    name = service.metadata.token_owner(hash_token(token))
    if name is None:
        raise Unauthorized("the token is not valid")
    return name


def require_owner(service: Teledrop, headers: Mapping[str, str]) -> str:
    owner = identify(service, headers)
    if owner is None:
        raise Unauthorized("this needs your upload token: Authorization: Bearer <token>")
    return owner


def create_token(service: Teledrop, name: str) -> str:
    """A new token for ``name``, returned once; the store keeps its hash."""
    if not TOKEN_NAME.fullmatch(name):
        raise InvalidOption("a token name is 1-64 of A-Z a-z 0-9 . _ - and starts with a "
                            "letter or digit")
    token = new_token()
    service.metadata.add_token(TokenRecord(name, hash_token(token), now()))
    return token


def revoke_token(service: Teledrop, name: str) -> None:
    if not service.metadata.revoke_token(name):
        raise NotFound(f"no token named {name!r}")
