"""Re-hash stored blobs against their records."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .drop import Drop
from .errors import BlobMissing, NotFound
from .service import Teledrop

READ_SIZE = 1024 * 1024


@dataclass(frozen=True)
class Finding:
    slug: str
    status: str  # "ok", "corrupt", "missing"
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def verify(service: Teledrop, slug: str | None = None) -> Iterator[Finding]:
    if slug is not None:
        drop = service.metadata.get(slug)
        if drop is None:
            raise NotFound(f"no drop {slug!r}")
        drops: list[Drop] | Iterator[Drop] = [drop]
    else:
        drops = iter(service.metadata.iter_drops())
    for drop in drops:
        yield check_drop(service, drop)


def check_drop(service: Teledrop, drop: Drop) -> Finding:
    try:
        f = service.storage.open(drop.blob_id)
    except BlobMissing:
        return Finding(drop.slug, "missing", f"blob {drop.blob_id} not found")
    hasher = service.hook("teledrop_hasher")
    size = 0
    with f:
        while chunk := f.read(READ_SIZE):
            hasher.update(chunk)
            size += len(chunk)
    digest = f"{hasher.name}:{hasher.hexdigest()}"
    if drop.hash.split(":", 1)[0] != hasher.name:
        return Finding(drop.slug, "corrupt", f"recorded with {drop.hash.split(':')[0]}, "
                                             f"the active hasher is {hasher.name}")
    if size != drop.size or digest != drop.hash:
        return Finding(drop.slug, "corrupt", f"size {size} / {digest} != recorded "
                                             f"{drop.size} / {drop.hash}")
    return Finding(drop.slug, "ok")
