"""A drop's published bytes as a plugin inside the compensation chain reads them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from .interfaces import Storage

#: Bytes per piece of :meth:`BlobContent.chunks`.
CHUNK_SIZE = 256 * 1024


class BlobContent:
    """The file of the drop being committed, readable by any ``teledrop_commit_drop``
    wrapper (its ``content`` argument) whatever the storage: the blob is published before
    the first wrapper runs, and stays so unless something inside the chain fails."""

    def __init__(self, storage: Storage, blob_id: str) -> None:
        self._storage = storage
        self.blob_id = blob_id

    def open(self) -> BinaryIO:
        """The file from its first byte, for reading; close it (``with``).

        :raises BlobMissing: when the storage no longer has it."""
        return self._storage.open(self.blob_id)

    def chunks(self, size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The file in pieces of up to ``size`` bytes."""
        with self.open() as f:
            while chunk := f.read(size):
                yield chunk
