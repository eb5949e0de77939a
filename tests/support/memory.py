"""Large uploads sent to a live server without holding them: one file of random bytes sent
again and again with ``sendfile`` as a form, a raw PUT or a chunked PUT, each checked stored
whole, and a worker's peak resident memory."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import blake3
import pytest

from tests.live_server import LiveServer, connect, multipart, read_response

MiB = 1024 * 1024
#: The file sent again and again.
UNIT = 64 * MiB
#: How much more a 1 GiB upload may take than a 64 MiB one: a per-upload buffer, not a
#: per-byte cost.
GROWTH_LIMIT = 8 * MiB
#: A 1 GiB upload on a loaded 2-core machine, then its fsync.
UPLOAD_TIMEOUT = 120.0
#: The size of one chunk of a chunked PUT.
CHUNK = MiB


def peak_rss(pid: int) -> int:
    """The process's peak resident memory since it started, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


def send_file(sock: socket.socket, path: Path, repeat: int) -> None:
    with open(path, "rb") as f:
        for _ in range(repeat):
            sock.sendfile(f, 0, UNIT)


def send_chunked(sock: socket.socket, path: Path, repeat: int) -> None:
    """1 MiB chunks, as a streaming client sends them (curl sends smaller ones)."""
    with open(path, "rb") as f:
        for _ in range(repeat):
            for offset in range(0, UNIT, CHUNK):
                sock.sendall(b"%x\r\n" % CHUNK)
                sock.sendfile(f, offset, CHUNK)
                sock.sendall(b"\r\n")
    sock.sendall(b"0\r\n\r\n")


Sender = Callable[[LiveServer, Path, int], tuple[int, bytes]]


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Accept: application/json",
             "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def upload_multipart(server: LiveServer, path: Path, repeat: int) -> tuple[int, bytes]:
    boundary = uuid.uuid4().hex
    part_head, tail = multipart(boundary, "big.bin")
    length = len(part_head) + UNIT * repeat + len(tail)
    with connect(server, timeout=UPLOAD_TIMEOUT) as sock:
        sock.sendall(head("POST", "/", {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(length)}) + part_head)
        send_file(sock, path, repeat)
        sock.sendall(tail)
        status, _, body = read_response(sock, "POST", timeout=UPLOAD_TIMEOUT)
    return status, body


def upload_put(server: LiveServer, path: Path, repeat: int) -> tuple[int, bytes]:
    with connect(server, timeout=UPLOAD_TIMEOUT) as sock:
        sock.sendall(head("PUT", "/big.bin", {"Content-Length": str(UNIT * repeat)}))
        send_file(sock, path, repeat)
        status, _, body = read_response(sock, "PUT", timeout=UPLOAD_TIMEOUT)
    return status, body


def upload_chunked(server: LiveServer, path: Path, repeat: int) -> tuple[int, bytes]:
    with connect(server, timeout=UPLOAD_TIMEOUT) as sock:
        sock.sendall(head("PUT", "/big.bin", {"Transfer-Encoding": "chunked"}))
        send_chunked(sock, path, repeat)
        status, _, body = read_response(sock, "PUT", timeout=UPLOAD_TIMEOUT)
    return status, body


@pytest.fixture(scope="module")
def unit_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """64 MiB of random bytes on disk, and its blake3 repeated 1 and 16 times."""
    path = tmp_path_factory.mktemp("memory") / "unit.bin"
    with open(path, "wb") as f:
        for _ in range(UNIT // (4 * MiB)):
            f.write(os.urandom(4 * MiB))
    yield path
    path.unlink(missing_ok=True)


def expected_hash(path: Path, repeat: int) -> str:
    hasher = blake3.blake3()
    for _ in range(repeat):
        hasher.update_mmap(str(path))
    return "blake3:" + hasher.hexdigest()


def stored(server: LiveServer, sender: Sender, path: Path, repeat: int) -> None:
    """Upload, check the record matches what was sent, delete it (1 GiB must not stay)."""
    status, body = sender(server, path, repeat)
    assert status == 201, body[:500]
    drop = json.loads(body)
    assert drop["size"] == UNIT * repeat
    assert drop["hash"] == expected_hash(path, repeat)
    response = server.request("DELETE", f"/{drop['slug']}",
                              headers={"X-Delete-Token": drop["delete_token"]})
    assert response.status_code == 204
