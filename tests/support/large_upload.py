"""A large file's round trip through teledrop as a Lambda function: ``teledrop upload`` (the
installed command) sends it by direct upload, then it comes back through the download's
redirect, compared by blake3 and sha256 as it streams. The file is generated in the test's
tmp and removed whatever happens; nothing of it is held whole in the test process.

The API is reached through whatever the caller names: an ``HttpApi`` of ministack's or
an ``HttpFront`` before the emulator, both with ``request(method, target, **kwargs)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import requests
from blake3 import blake3

from tests.support.command import teledrop
from tests.support.hosts import SharedBackends

JSON = {"Accept": "application/json"}
MiB = 1 << 20
#: Several hundred MiB: 61 parts of 5 MiB.
LARGE = 300 * MiB + 12345
#: Bytes per write and per read.
CHUNK = 4 * MiB


class Api(Protocol):
    def request(self, method: str, target: str, **kwargs: Any) -> requests.Response: ...


@dataclass(frozen=True)
class RoundTrip:
    drop: dict[str, Any]
    upload_seconds: float
    download_seconds: float

    @property
    def seconds(self) -> float:
        return self.upload_seconds + self.download_seconds


def random_file(path: Path, size: int) -> tuple[str, str]:
    """``size`` random bytes at ``path``; their blake3 and sha256."""
    b3, sha = blake3(), hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(CHUNK, left))
            b3.update(chunk)
            sha.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return b3.hexdigest(), sha.hexdigest()


def streamed_hashes(url: str) -> tuple[int, str, str]:
    """The length, blake3 and sha256 of what ``url`` answers, read in chunks."""
    b3, sha, size = blake3(), hashlib.sha256(), 0
    with requests.get(url, stream=True, timeout=120) as got:
        assert got.status_code == 200, got.text[:500]
        for chunk in got.iter_content(CHUNK):
            b3.update(chunk)
            sha.update(chunk)
            size += len(chunk)
    return size, b3.hexdigest(), sha.hexdigest()


def upload_and_download(api: Api, server: str, backends: SharedBackends, tmp_path: Path,
                        env: Mapping[str, str] | None = None, size: int = LARGE) -> RoundTrip:
    """``teledrop upload --server SERVER`` of ``size`` random bytes (four parts at once),
    ``GET /{slug}`` through ``api`` and the redirect followed to the bucket, then the drop
    deleted with its token. ``env`` is the command's, on top of a state directory of its
    own. Checks the drop's size and hash, the bytes that come back, the download counted
    once and no multipart upload left behind."""
    path = tmp_path / "large.bin"
    try:
        b3, sha = random_file(path, size)
        started = time.monotonic()
        out = teledrop("process", "upload", str(path), "--json", "--parallel", "4",
                       "--server", server,
                       env={"XDG_STATE_HOME": str(tmp_path / "state"), **(env or {})})
        uploaded = time.monotonic()
    finally:
        path.unlink(missing_ok=True)  # the bucket's copy is the only one kept
    assert out.code == 0, out.stderr
    drop = json.loads(out.stdout)
    assert drop["size"] == size and drop["hash"] == f"blake3:{b3}"
    assert backends.multipart_uploads() == []  # completed, nothing left behind
    answer = api.request("GET", f"/{drop['slug']}")
    assert answer.status_code == 302, answer.text[:500]
    assert streamed_hashes(answer.headers["Location"]) == (size, b3, sha)
    info = api.request("GET", f"/api/drops/{drop['slug']}", headers=JSON).json()
    assert info["downloads"] == 1
    done = time.monotonic()
    print(f"{size / MiB:.0f} MiB: upload {uploaded - started:.1f} s, "
          f"download {done - uploaded:.1f} s")
    gone = api.request("DELETE", f"/{drop['slug']}",
                       headers={"X-Delete-Token": drop["delete_token"]})
    assert gone.status_code == 204
    return RoundTrip(drop, uploaded - started, done - uploaded)
