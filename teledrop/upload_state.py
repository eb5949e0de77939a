"""What ``teledrop upload`` remembers of an unfinished upload, so that running the same
command again after a crash, a Ctrl-C or a network that stayed down continues it.

One small JSON file per unfinished upload under ``$XDG_STATE_HOME/teledrop/uploads``
(``~/.local/state/teledrop/uploads`` by default), named by a hash of what identifies the
upload: the server, the file's absolute path, size and modification time, and the options
it was sent with. A file that changed since, or the same file sent with other options, is
a new upload. The record holds the tus upload URL, or a direct upload's id, part URLs and
the ETags of the parts already stored: capabilities for that upload, so the directory is
``0700`` and each file ``0600``. A record is removed when its upload succeeds or is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATE_HOME_ENV = "XDG_STATE_HOME"


def state_directory() -> Path:
    """``$XDG_STATE_HOME/teledrop/uploads``; XDG says a relative value is to be ignored."""
    home = os.environ.get(STATE_HOME_ENV, "")
    base = Path(home) if os.path.isabs(home) else Path.home() / ".local" / "state"
    return base / "teledrop" / "uploads"


@dataclass(frozen=True)
class UploadKey:
    """What makes a re-run the same upload."""

    server: str
    path: str
    size: int
    mtime_ns: int
    #: The options and filename as sent, so that another --slug is another upload.
    options: str

    @classmethod
    def of(cls, server: str, path: str, options: dict[str, str]) -> UploadKey:
        info = os.stat(path)
        return cls(server, os.path.abspath(path), info.st_size, info.st_mtime_ns,
                   json.dumps(options, sort_keys=True))

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


class StateFile:
    """The record of one upload, read and written whole (each write atomic)."""

    def __init__(self, key: UploadKey, directory: Path | None = None) -> None:
        self.key = key
        self.path = (directory or state_directory()) / f"{key.digest()[:32]}.json"

    def load(self) -> dict[str, Any] | None:
        """The record, or ``None`` when there is none (or it is unreadable, or it belongs
        to another key: then the upload simply starts afresh)."""
        try:
            record = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("key") != asdict(self.key):
            return None
        return record

    def save(self, record: dict[str, Any]) -> None:
        """Write ``record`` (with the key) atomically, readable by the user alone. A state
        directory that cannot be written costs only the resume across runs: the upload
        itself goes on."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump({**record, "key": asdict(self.key)}, out)
            os.replace(temporary, self.path)
        except OSError:
            pass

    def remove(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
