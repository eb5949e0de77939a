"""The part of a read-only, seekable binary file that both kinds of body share."""

from __future__ import annotations

import io


class SeekableReader(io.RawIOBase):
    """A read-only file of ``size`` bytes whose position moves only by reading or seeking;
    subclasses read. No ``fileno()``: there is no descriptor behind it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos
