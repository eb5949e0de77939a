"""The benchmark's clients: curl (one, several at once, ``--parallel``) and bodies sent
with ``sendfile`` so that the client costs next to nothing."""

from __future__ import annotations

import http.client
import os
import random
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import HOST, RESULTS, TRANSFER_TIMEOUT


@dataclass
class Reply:
    status: int
    seconds: float
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def curl(args: list[str], timeout: float = TRANSFER_TIMEOUT, keep_body: bool = True) -> Reply:
    """One curl transfer; its own timing (``time_total``), not process start-up. A body
    not kept goes to /dev/null, so that a download is not slowed by the client's disk."""
    with tempfile.NamedTemporaryFile(dir=RESULTS, prefix="curl-", delete=False) as body_file:
        body_path = body_file.name
    try:
        done = subprocess.run(["curl", "-sS", "--noproxy", "*", "--max-time", str(int(timeout)),
                               "-o", body_path if keep_body else os.devnull,
                               "-w", "%{http_code} %{time_total}", *args],
                              capture_output=True, text=True, timeout=timeout + 10, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"curl {' '.join(args)} failed: {done.stderr.strip()}")
        status, seconds = done.stdout.split()
        return Reply(int(status), float(seconds), Path(body_path).read_bytes())
    finally:
        os.unlink(body_path)


def curl_many(args: list[str], timeout: float = TRANSFER_TIMEOUT) -> tuple[list[str], float]:
    """``curl --parallel`` over many URLs: stdout lines and the wall time."""
    start = time.perf_counter()
    done = subprocess.run(["curl", "-sS", "--noproxy", "*", "--no-progress-meter", "-Z",
                           "--parallel-max", "8", "--max-time", str(int(timeout)), *args],
                          capture_output=True, text=True, timeout=timeout + 10, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"curl --parallel failed: {done.stderr.strip()[:500]}")
    return done.stdout.splitlines(), seconds


def concurrent_curls(argv_list: list[list[str]], timeout: float = TRANSFER_TIMEOUT,
                     ) -> tuple[list[Reply], float]:
    """Several curl processes at once; their replies and the wall time of them all."""
    paths = [RESULTS / f"curl-{uuid.uuid4().hex}" for _ in argv_list]
    start = time.perf_counter()
    procs = [subprocess.Popen(["curl", "-sS", "--noproxy", "*", "--max-time", str(int(timeout)),
                               "-o", str(path), "-w", "%{http_code} %{time_total}", *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for args, path in zip(argv_list, paths)]
    try:
        outputs = [p.communicate(timeout=timeout + 10) for p in procs]
        seconds = time.perf_counter() - start
        replies = []
        for proc, (out, err), path in zip(procs, outputs, paths):
            if proc.returncode != 0:
                raise RuntimeError(f"curl failed: {err.strip()}")
            status, took = out.split()
            replies.append(Reply(int(status), float(took), path.read_bytes()))
        return replies, seconds
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for path in paths:
            path.unlink(missing_ok=True)


def send_body(port: int, method: str, target: str, headers: dict[str, str], path: Path,
              repeat: int, head: bytes = b"", tail: bytes = b"",
              timeout: float = TRANSFER_TIMEOUT) -> Reply:
    """One request whose body is ``head``, ``path`` repeated ``repeat`` times, then
    ``tail``, sent with ``sendfile``: sizes past the payload files on disk, no client-side
    copy."""
    file_size = path.stat().st_size
    length = len(head) + file_size * repeat + len(tail)
    request = (f"{method} {target} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
               + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
               + f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode()
    start = time.perf_counter()
    with socket.create_connection((HOST, port), timeout=timeout) as sock, open(path, "rb") as f:
        sock.sendall(request + head)
        for _ in range(repeat):
            sock.sendfile(f, 0, file_size)
        sock.sendall(tail)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
    return Reply(response.status, time.perf_counter() - start, body, dict(response.getheaders()))


def send_multipart(port: int, path: Path, repeat: int, timeout: float = TRANSFER_TIMEOUT,
                   boundary: str | None = None) -> Reply:
    """``POST /`` a multipart body whose file part is ``path`` repeated ``repeat`` times."""
    boundary = boundary or uuid.uuid4().hex
    part_head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                 f"filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                 ).encode()
    return send_body(port, "POST", "/", {"Accept": "application/json", "Content-Type":
                                         f"multipart/form-data; boundary={boundary}"},
                     path, repeat, part_head, f"\r\n--{boundary}--\r\n".encode(), timeout)


def range_reads(port: int, path: str, size: int, count: int, span: int, check: Path) -> float:
    """``count`` random ``span``-byte ranges on one keep-alive connection; seconds taken.
    The first range is compared with the same bytes of ``check``."""
    rng = random.Random(4)
    buffer = bytearray(span)
    view = memoryview(buffer)
    conn = http.client.HTTPConnection(HOST, port, timeout=TRANSFER_TIMEOUT)
    try:
        start = time.perf_counter()
        for i in range(count):
            first = rng.randrange(0, size - span + 1)
            conn.request("GET", path, headers={"Range": f"bytes={first}-{first + span - 1}"})
            response = conn.getresponse()
            got = 0
            while got < span and (n := response.readinto(view[got:])):
                got += n
            if response.status != 206 or got != span or response.read():
                raise RuntimeError(f"range {first}: status {response.status}, {got} bytes")
            if i == 0:
                with open(check, "rb") as f:
                    f.seek(first)
                    if f.read(span) != buffer:
                        raise RuntimeError("a ranged download returned the wrong bytes")
        return time.perf_counter() - start
    finally:
        conn.close()


def http_delete(port: int, slug: str, token: str) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        conn.request("DELETE", f"/{slug}", headers={"X-Delete-Token": token})
        response = conn.getresponse()
        response.read()
        if response.status != 204:
            raise RuntimeError(f"DELETE /{slug}: {response.status}")
    finally:
        conn.close()
