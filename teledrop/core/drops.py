"""Reading and deleting drops: plain functions over a :class:`Teledrop`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from .drop import Drop, now
from .errors import Forbidden, Gone, NotFound, PasswordRequired, StorageFull, TooManyAttempts
from .passwords import ATTEMPT_WINDOW, MAX_ATTEMPTS, password_matches
from .service import Teledrop
from .space import free_space_shortfall
from .tokens import token_matches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reader:
    """Who asks for a drop: the owner their token names, the password they gave."""

    owner: str | None = None
    password: str | None = None

    def owns(self, drop: Drop) -> bool:
        return drop.owner is not None and self.owner == drop.owner


ANONYMOUS = Reader()


def find_drop(service: Teledrop, slug: str, reader: Reader = ANONYMOUS) -> Drop:
    """The drop under ``slug``, if ``reader`` may read it.

    :raises NotFound: unknown, or private and not the reader's (never confirm it exists);
    :raises Gone: expired or out of downloads (until gc removes it);
    :raises PasswordRequired: its password is missing or wrong (the owner needs none);
    :raises TooManyAttempts: too many wrong passwords lately.
    """
    drop = service.metadata.get(slug)
    if drop is None or (drop.private and not reader.owns(drop)):
        raise NotFound()
    raise_if_gone(drop)
    if drop.password_hash is not None and not reader.owns(drop):
        check_password(service, drop, reader.password)
    return drop


def raise_if_gone(drop: Drop) -> None:
    if drop.is_expired():
        raise Gone("this drop has expired")
    if drop.is_exhausted():
        raise Gone("this drop has no downloads left")


def check_password(service: Teledrop, drop: Drop, password: str | None) -> None:
    """Verify a reader's password; wrong ones are counted per drop, in the metadata store,
    so the limit holds across workers and hosts."""
    if password is None:
        raise PasswordRequired()
    # Count the attempt before checking it: guesses in flight at once cannot all pass a
    # count that none of them has added to yet. A right password gives its attempt back.
    if service.metadata.note_password_failure(drop.slug, now(), ATTEMPT_WINDOW) > MAX_ATTEMPTS:
        raise TooManyAttempts(retry_after=ATTEMPT_WINDOW)
    assert drop.password_hash is not None
    if not password_matches(password, drop.password_hash):
        raise PasswordRequired("wrong password")
    service.metadata.forgive_password_failure(drop.slug)


def open_blob(service: Teledrop, drop: Drop) -> BinaryIO:
    return service.storage.open(drop.blob_id)


def claim_download(service: Teledrop, drop: Drop) -> Drop:
    """Count one download, atomically; only one client can take the last one.

    :raises Gone: when the drop ran out (or expired) since it was looked up.
    """
    claimed = service.metadata.claim_download(drop.slug, now())
    if claimed is None:
        current = service.metadata.get(drop.slug)
        if current is None:
            raise NotFound()
        raise_if_gone(current)
        raise Gone()
    return claimed


def delete_drop(service: Teledrop, slug: str, token: str | None,
                reader: Reader = ANONYMOUS) -> Drop:
    """Remove a drop (record first, then file: see :func:`remove`) with its delete token,
    or as its owner."""
    drop = service.metadata.get(slug)
    if drop is None:
        raise NotFound()
    allowed = reader.owns(drop) or bool(token and token_matches(token, drop.delete_token_hash))
    if not allowed:
        if drop.private:
            raise NotFound()
        raise Forbidden("wrong or missing delete token (X-Delete-Token)")
    # Only the drop that was checked: the slug may have been freed and taken meanwhile.
    removed = remove(service, drop, lambda: service.metadata.delete(slug, drop.blob_id))
    if removed is None:  # deleted concurrently
        raise NotFound()
    service.notify("teledrop_drop_deleted", drop=removed, reason="deleted")
    return removed


def remove(service: Teledrop, drop: Drop, remove_record: Callable[[], Drop | None]
           ) -> Drop | None:
    """Remove ``drop``'s record with ``remove_record``, then its file; the removed drop,
    or ``None`` when ``remove_record`` found nothing to remove.

    The record goes first: a failure between the two leaves only a record-less file,
    which gc removes, where the reverse order could leave a record without its file.

    Except on a full disk, where removing a record can itself fail for want of room (SQLite
    writes to its journal to delete). Then the file goes first, to make room, and the
    record is removed again. If that fails too (the file was too small to make room, or
    lives on another filesystem), the record is left without its file until a later
    delete or gc removes it: its downloads answer ``503 blob_missing`` meanwhile. (So would
    a gone drop that its owner revived between gc's two tries: gc then keeps its record.)
    """
    try:
        removed = remove_record()
    except StorageFull as exc:
        log.warning("the record of %s could not be removed (%s): removing its file first, "
                    "to make room", drop.slug, exc)
        service.storage.delete(drop.blob_id)
        removed = remove_record()
    if removed is not None:
        service.storage.delete(removed.blob_id)
    return removed


def health(service: Teledrop) -> None:
    """:raises Unavailable: when storage or metadata cannot be reached;
    :raises StorageFull: when the storage has less than ``limits.min_free_space`` free."""
    service.storage.check()
    service.metadata.check()
    shortfall = free_space_shortfall(service)
    if shortfall:
        raise StorageFull(shortfall)
