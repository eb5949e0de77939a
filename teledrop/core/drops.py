"""Reading and deleting drops: plain functions over a :class:`Teledrop`."""

from __future__ import annotations

from typing import BinaryIO

from .drop import Drop, now
from .errors import Forbidden, Gone, NotFound
from .service import Teledrop
from .tokens import token_matches


def find_drop(service: Teledrop, slug: str) -> Drop:
    """The drop under ``slug``. :raises NotFound: unknown; :raises Gone: expired or out of
    downloads (until gc removes it)."""
    drop = service.metadata.get(slug)
    if drop is None:
        raise NotFound()
    if drop.is_expired():
        raise Gone("this drop has expired")
    if drop.is_exhausted():
        raise Gone("this drop has no downloads left")
    return drop


def open_blob(service: Teledrop, drop: Drop) -> BinaryIO:
    return service.storage.open(drop.blob_id)


def claim_download(service: Teledrop, drop: Drop) -> Drop:
    """Count one download, atomically; only one client can take the last one.

    :raises Gone: when the drop ran out (or expired) since it was looked up.
    """
    claimed = service.metadata.claim_download(drop.slug, now())
    if claimed is None:
        find_drop(service, drop.slug)  # raises the precise reason
        raise Gone()
    return claimed


def delete_drop(service: Teledrop, slug: str, token: str | None) -> Drop:
    """Remove a drop (record first, then file) with its delete token.

    A failure between the two leaves only a record-less file, which gc removes; the
    reverse order could leave a record without its file.
    """
    drop = service.metadata.get(slug)
    if drop is None:
        raise NotFound()
    if not token or not token_matches(token, drop.delete_token_hash):
        raise Forbidden("wrong or missing delete token (X-Delete-Token)")
    removed = service.metadata.delete(slug)
    if removed is None:  # deleted concurrently
        raise NotFound()
    service.storage.delete(removed.blob_id)
    service.notify("teledrop_drop_deleted", drop=removed, reason="deleted")
    return removed


def health(service: Teledrop) -> None:
    """:raises Unavailable: when storage or metadata cannot be reached."""
    service.storage.check()
    service.metadata.check()
