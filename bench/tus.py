"""tus uploads against teledrop's raw PUT of the same file, one run, on local storage.

    .venv/bin/python bench/tus.py [--size-mib 1024] [--reps 3] [--cuts 5] [--seed 1]

Both send the same file over loopback with ``sendfile`` (the client costs next to
nothing) to one gunicorn teledrop (two workers, local_storage, sqlite_meta):

1. one tus ``PATCH`` of the whole file (after its ``POST /api/uploads``) against one
   ``PUT`` of it: MiB/s from the client's clock, the server's CPU seconds per GiB (user +
   system, and user alone, from ``/proc``) and the serving worker's peak RSS;
2. the same upload cut ``--cuts`` times at random offsets (each cut a ``PATCH`` whose
   client half-closes its connection after sending that far: every byte sent is kept), each
   followed by a ``HEAD`` and a ``PATCH`` from the offset it gives, against one
   uninterrupted ``PATCH``. A resumed ``PATCH`` that reaches the other worker rebuilds the
   hash by reading the staged bytes once: that read is in the figures.

The subjects are interleaved, each figure the best of ``--reps``; each drop is checked
(size, blake3 hash) and deleted. See ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import blake3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# The repository is on the path now.
from bench.clients import Reply, http_delete, send_body  # noqa: E402
from bench.common import GiB, HOST, KiB, MiB, RESULTS, log  # noqa: E402
from bench.measures import Plan  # noqa: E402
from bench.procfs import watching  # noqa: E402
from bench.scenarios import Bench  # noqa: E402
from bench.servers import Server  # noqa: E402

PIECE = 64 * MiB
TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_STREAM = {**TUS, "Content-Type": "application/offset+octet-stream"}


def request(port: int, method: str, target: str, headers: dict[str, str]) -> Reply:
    """A request without a body."""
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        start = time.perf_counter()
        conn.request(method, target, headers=headers)
        response = conn.getresponse()
        body = response.read()
        return Reply(response.status, time.perf_counter() - start, body,
                     dict(response.getheaders()))
    finally:
        conn.close()


def create(port: int, size: int) -> str:
    """A new upload of ``size`` bytes: its path."""
    reply = request(port, "POST", "/api/uploads", {**TUS, "Upload-Length": str(size)})
    if reply.status != 201:
        raise RuntimeError(f"POST /api/uploads: {reply.status} {reply.body[:200]!r}")
    return "/" + reply.headers["Location"].split("/", 3)[3]


def offset_of(port: int, path: str) -> int:
    return int(request(port, "HEAD", path, TUS).headers["Upload-Offset"])


def patch_head(port: int, path: str, payload: Path, offset: int) -> bytes:
    """The head of a PATCH that announces the rest of ``payload`` from ``offset``."""
    rest = payload.stat().st_size - offset
    return (f"PATCH {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in OFFSET_STREAM.items())
            + f"Upload-Offset: {offset}\r\nContent-Length: {rest}\r\n"
            "Connection: close\r\n\r\n").encode()


def cut_patch(port: int, path: str, payload: Path, offset: int, end: int) -> None:
    """A PATCH announcing the rest of the file whose client sends up to ``end`` and then
    half-closes its connection; returns once the server has answered or closed."""
    with socket.create_connection((HOST, port), timeout=120) as sock, open(payload, "rb") as f:
        sock.sendall(patch_head(port, path, payload, offset))
        sock.sendfile(f, offset, end - offset)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(64 * KiB):
            pass


def finish(port: int, path: str, payload: Path, offset: int) -> Reply:
    """The PATCH that sends the rest from ``offset``: 204 with the drop's headers."""
    start = time.perf_counter()
    with socket.create_connection((HOST, port), timeout=300) as sock, open(payload, "rb") as f:
        sock.sendall(patch_head(port, path, payload, offset))
        sock.sendfile(f, offset, payload.stat().st_size - offset)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
    return Reply(response.status, time.perf_counter() - start, body, dict(response.getheaders()))


def check_and_delete(server: Server, path: str, reply: Reply, size: int, digest: str) -> None:
    if reply.status != 204 or "X-Delete-Token" not in reply.headers:
        raise RuntimeError(f"PATCH {path}: {reply.status} {reply.body[:200]!r}")
    drop = json.loads(request(server.port, "GET", path, TUS).body)
    if (drop["size"], drop["hash"]) != (size, digest):
        raise RuntimeError(f"{path} became {drop['size']} bytes, {drop['hash']}")
    http_delete(server.port, drop["slug"], reply.headers["X-Delete-Token"])


class Figures:
    """Best-of figures per subject: MiB/s (max), CPU s/GiB and user s/GiB (min), and
    the largest peak RSS seen."""

    def __init__(self) -> None:
        self.best: dict[str, list[float]] = {}

    def add(self, name: str, size: int, seconds: float, cpu: float, user: float,
            rss: float) -> None:
        row = [size / MiB / seconds, cpu * GiB / size, user * GiB / size, rss]
        log(f"{name}: {row[0]:.0f} MiB/s, {row[1]:.2f} ({row[2]:.2f}) CPU s/GiB, "
            f"{row[3]:.1f} MiB RSS")
        old = self.best.get(name)
        self.best[name] = row if old is None else [
            max(old[0], row[0]), min(old[1], row[1]), min(old[2], row[2]), max(old[3], row[3])]

    def table(self, base: str, names: list[str]) -> None:
        ref = self.best[base]
        print(f"{'subject':<24}{'MiB/s':>7}{'CPU s/GiB':>11}{'(user)':>8}{'RSS MiB':>9}"
              f"{'wall x':>8}{'CPU x':>7}")
        for name in names:
            wall, cpu, user, rss = self.best[name]
            print(f"{name:<24}{wall:>7.0f}{cpu:>11.2f}{user:>8.2f}{rss:>9.1f}"
                  f"{ref[0] / wall:>8.2f}{cpu / ref[1] if ref[1] else 0:>7.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="upload size (×64 MiB)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--cuts", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    repeat = max(1, args.size_mib * MiB // PIECE)
    size = repeat * PIECE
    rng = random.Random(args.seed)
    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tus-", dir=RESULTS))
    bench = Bench(Plan(big=size, rss_sizes=[], reps=args.reps), work, {})
    figures = Figures()
    try:
        bench.make_payloads()
        hasher = blake3.blake3()
        hasher.update_mmap(str(bench.payload))
        digest = f"blake3:{hasher.hexdigest()}"
        server = bench.warm(bench.start(bench.teledrop_server()))

        def put() -> None:
            bench.settle()
            with watching(server) as usage:
                reply = send_body(server.port, "PUT", "/big.bin",
                                  {"Accept": "application/json"}, bench.payload, 1)
            bench.delete_reply(reply)
            figures.add("raw PUT", size, reply.seconds, usage[0].total_cpu_s,
                        usage[0].total_user_s, usage[0].serving_peak_mib)

        def one_patch() -> None:
            bench.settle()
            with watching(server) as usage:
                start = time.perf_counter()
                path = create(server.port, size)
                reply = finish(server.port, path, bench.payload, 0)
                seconds = time.perf_counter() - start
            check_and_delete(server, path, reply, size, digest)
            figures.add("tus, one PATCH", size, seconds, usage[0].total_cpu_s,
                        usage[0].total_user_s, usage[0].serving_peak_mib)

        def cut() -> None:
            ends = sorted(rng.sample(range(1, size), args.cuts))
            bench.settle()
            with watching(server) as usage:
                start = time.perf_counter()
                path, offset = create(server.port, size), 0
                for end in ends:
                    cut_patch(server.port, path, bench.payload, offset, end)
                    offset = offset_of(server.port, path)
                    if offset != end:
                        raise RuntimeError(f"cut at {end}, the server kept {offset}")
                reply = finish(server.port, path, bench.payload, offset)
                seconds = time.perf_counter() - start
            check_and_delete(server, path, reply, size, digest)
            figures.add(f"tus, {args.cuts} cuts resumed", size, seconds, usage[0].total_cpu_s,
                        usage[0].total_user_s, usage[0].serving_peak_mib)

        subjects = [put, one_patch, cut]
        for rep in range(args.reps):
            for run in (subjects if rep % 2 == 0 else subjects[::-1]):
                run()
    finally:
        bench.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    label = f"{size // GiB} GiB" if size % GiB == 0 else f"{size // MiB} MiB"
    print(f"{label}, best of {args.reps}; wall x = time / raw PUT's, CPU x = CPU / raw PUT's")
    figures.table("raw PUT", ["raw PUT", "tus, one PATCH", f"tus, {args.cuts} cuts resumed"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
