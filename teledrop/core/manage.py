"""An owner's view of their drops: list, edit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .drop import Drop, now
from .errors import InvalidOption, NotFound
from .interfaces import SORT_KEYS, DropQuery
from .options import clean_description, clean_title, parse_bool, parse_expires, \
    parse_max_downloads
from .passwords import hash_password
from .service import Teledrop

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
DEFAULT_SORT = "created_at"
ORDERS = ("desc", "asc")
#: The list's yes/no filters; a filter left out matches both.
FILTERS = ("private", "has_password", "expired")
EDITABLE = ("title", "description", "expires", "max_downloads", "private", "password")


@dataclass(frozen=True)
class Page:
    total: int
    page: int
    page_size: int
    drops: list[Drop]


def list_drops(service: Teledrop, owner: str, params: Mapping[str, str]) -> Page:
    """One page of ``owner``'s drops; ``params`` as a query string gives them."""
    page = _int_param(params, "page", 1, 1, 10**9)
    page_size = _int_param(params, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    sort = params.get("sort", DEFAULT_SORT)
    if sort not in SORT_KEYS:
        raise InvalidOption(f"sort must be one of {', '.join(SORT_KEYS)}")
    order = params.get("order", ORDERS[0])
    if order not in ORDERS:
        raise InvalidOption("order must be asc or desc")
    filters = {name: parse_bool(name, params[name]) if name in params else None
               for name in FILTERS}
    query = DropQuery(owner=owner, at=now(), page=page, page_size=page_size, sort=sort,
                      order=order, search=params.get("q") or None, **filters)  # type: ignore[arg-type]
    total, drops = service.metadata.list_owned(query)
    return Page(total, page, page_size, drops)


def update_drop(service: Teledrop, owner: str, slug: str, changes: Mapping[str, Any]) -> Drop:
    """Apply an owner's edit (a JSON object). Each value is checked; nothing is changed
    unless every one is valid.

    :raises NotFound: no such drop, or not the owner's (never confirm it exists).
    """
    drop = service.metadata.get(slug)
    if drop is None or drop.owner != owner:
        raise NotFound()
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidOption(f"cannot change {', '.join(unknown)} (editable: {', '.join(EDITABLE)})")
    fields: dict[str, Any] = {}
    for name, value in changes.items():
        fields.update(_field(service, name, value))
    updated = service.metadata.update(slug, fields, drop.blob_id)  # the drop that was checked
    if updated is None:
        raise NotFound()
    return updated


def _field(service: Teledrop, name: str, value: Any) -> dict[str, Any]:
    if name in ("title", "description"):
        if not isinstance(value, str):
            raise InvalidOption(f"{name} must be a string")
        return {name: clean_title(value) if name == "title" else clean_description(value)}
    if name == "expires":
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise InvalidOption("expires must be seconds or a duration such as \"2d\"")
        seconds = parse_expires(str(value), service.config.limits.max_expires)
        return {"expires_at": now() + seconds}
    if name == "max_downloads":
        if value is None:
            return {"max_downloads": None}
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidOption("max_downloads must be an integer >= 1, or null for no limit")
        return {"max_downloads": parse_max_downloads(str(value))}
    if name == "private":
        if not isinstance(value, bool):
            raise InvalidOption("private must be true or false")
        return {"private": value}
    # password: a string sets it, null or "" clears it
    if value is None or value == "":
        return {"password_hash": None}
    if not isinstance(value, str):
        raise InvalidOption("password must be a string, or null to clear it")
    return {"password_hash": hash_password(value)}


def _int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise InvalidOption(f"{name} must be an integer from {low} to {high}")
    return int(raw)
