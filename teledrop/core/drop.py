"""The drop: one uploaded file, its record and how it is shown to clients."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


def now() -> int:
    """Whole seconds since the epoch: records and expiry use whole seconds."""
    return int(time.time())


def iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Drop:
    """A drop's record. ``delete_token`` is set only on the request that created it;
    the metadata store keeps ``delete_token_hash`` alone."""

    slug: str
    blob_id: str
    filename: str
    size: int
    content_type: str
    hash: str
    created_at: int
    expires_at: int
    max_downloads: int | None = None
    downloads: int = 0
    delete_token_hash: str = ""
    custom_slug: bool = False
    #: who uploaded it with a token (see :mod:`teledrop.core.owners`); ``None``: anonymous.
    owner: str | None = None
    title: str = ""
    description: str = ""
    #: readable only with the owner's token; others get 404.
    private: bool = False
    #: argon2 hash of the password readers must give; ``None``: no password.
    password_hash: str | None = field(default=None, repr=False)
    delete_token: str | None = field(default=None, repr=False, compare=False)

    def is_expired(self, at: int | None = None) -> bool:
        return (now() if at is None else at) >= self.expires_at

    def is_exhausted(self) -> bool:
        return self.max_downloads is not None and self.downloads >= self.max_downloads

    def downloads_left(self) -> int | None:
        """How many downloads remain; ``None``: no limit."""
        return None if self.max_downloads is None else max(0, self.max_downloads - self.downloads)

    def is_gone(self, at: int | None = None) -> bool:
        """Expired or out of downloads: what gc removes and migrate leaves behind."""
        return self.is_expired(at) or self.is_exhausted()

    def to_json(self, url: str, with_delete_token: bool = False) -> dict[str, Any]:
        """The drop as the API shows it: :data:`JSON_FIELDS`, and the delete token when
        ``with_delete_token`` (only the upload's own answer carries it)."""
        data: dict[str, Any] = {
            "slug": self.slug,
            "url": url,
            "filename": self.filename,
            "size": self.size,
            "content_type": self.content_type,
            "hash": self.hash,
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "max_downloads": self.max_downloads,
            "downloads": self.downloads,
            "title": self.title,
            "description": self.description,
            "private": self.private,
            "has_password": self.password_hash is not None,
        }
        if with_delete_token and self.delete_token is not None:
            data["delete_token"] = self.delete_token
        return data


#: The fields of a drop as JSON, in order (:meth:`Drop.to_json`).
JSON_FIELDS = tuple(Drop(slug="", blob_id="", filename="", size=0, content_type="", hash="",
                         created_at=0, expires_at=0).to_json(""))
