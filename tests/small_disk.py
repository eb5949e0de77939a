"""A small real filesystem (tmpfs) to fill up, for the full-disk tests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILLER = "filler"


@contextmanager
def small_filesystem(path: Path, size: int) -> Iterator[bool]:
    """A tmpfs of ``size`` bytes mounted on ``path``; yields whether the mount worked
    (it needs root, or CAP_SYS_ADMIN). Unmounted on exit."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755",
                                  "tmpfs", str(path)], capture_output=True,
                                 check=False).returncode == 0
    except OSError:  # no mount command at all
        mounted = False
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def fill(path: Path) -> Path:
    """Fill the filesystem of ``path`` from outside teledrop, to the last byte: a file
    named FILLER there grows until the disk says ENOSPC."""
    filler = path / FILLER
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for piece in (1024 * 1024, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * piece)
            except OSError as exc:
                if exc.errno != 28:  # ENOSPC
                    raise
    finally:
        os.close(fd)
    assert free_bytes(path) == 0
    return filler
