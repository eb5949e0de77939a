"""Watching a publish reach the disk: the fsync and rename calls, in order."""

from __future__ import annotations

import os
import stat
from typing import Any

import pytest

#: ("fsync file" | "fsync dir" | "rename", inode); tests add steps of their own.
Step = tuple[str, Any]


def record_publish_steps(monkeypatch: pytest.MonkeyPatch) -> list[Step]:
    """Record every ``os.fsync`` and ``os.rename`` from now on (they still happen), by
    inode: a file's fsync and its rename name the same inode."""
    steps: list[Step] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        steps.append(("fsync dir" if stat.S_ISDIR(info.st_mode) else "fsync file", info.st_ino))
        real_fsync(fd)

    def rename(src: str, dst: str) -> None:
        steps.append(("rename", os.stat(src).st_ino))
        real_rename(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    return steps
