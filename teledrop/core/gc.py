"""Garbage collection: gone drops, expired resumable and direct uploads, staging debris
and record-less blobs.

Safe while the server runs: a drop is removed only if the store still finds it gone at
removal time, and files are judged by age, so a live upload (young staging file, or a
blob published a moment before its record) is never touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .drop import now
from .direct import collect_expired_direct
from .drops import remove
from .resumable import collect_expired, unrecorded_resumable
from .service import Teledrop

DEFAULT_STAGING_AGE = 3600


@dataclass(frozen=True)
class Removal:
    kind: str  # "drop", "upload", "staging", "orphan"
    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name} ({self.reason})"


def collect(service: Teledrop, older_than: int = DEFAULT_STAGING_AGE,
            dry_run: bool = False) -> Iterator[Removal]:
    """Remove (or, with ``dry_run``, only name) what gc may remove, yielding each."""
    at = now()
    for drop in service.metadata.list_gone(at):
        reason = "expired" if drop.is_expired(at) else "exhausted"
        if not dry_run:
            removed = remove(service, drop,
                             lambda: service.metadata.delete_if_gone(drop.slug, at))
            if removed is None:
                continue
            service.notify("teledrop_drop_deleted", drop=removed, reason=reason)
        yield Removal("drop", drop.slug, reason)
    for upload in collect_expired(service, at, dry_run):
        yield Removal("upload", upload.id, "expired")
    for blob_id in unrecorded_resumable(service, older_than, dry_run):
        yield Removal("staging", blob_id, "a resumable blob no upload names")
    for upload in collect_expired_direct(service, at, dry_run):
        yield Removal("upload", upload.id, "expired")
    # Storage is listed before the records are read: a blob published after the listing
    # is not seen, and one whose record lands after the read is younger than the limit.
    # A recorded direct upload stays staging until it expires, however old.
    old_staging = [item for item in service.storage.list_staging() if item.age >= older_than]
    known = service.metadata.blob_ids() if old_staging else set()
    for item in old_staging:
        if item.blob_id is None or item.blob_id not in known:
            if not dry_run:
                service.storage.remove_staging(item.name)
            yield Removal("staging", item.name, f"unpublished for {int(item.age)}s")
    old_blobs = [item for item in service.storage.list_blobs() if item.age >= older_than]
    known = service.metadata.blob_ids()
    for item in old_blobs:
        if item.name not in known:
            if not dry_run:
                service.storage.delete(item.name)
            yield Removal("orphan", item.name, "no record")
