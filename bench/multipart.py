"""Multipart upload against raw PUT and a plain Python receive-hash-write server, one run.

    .venv/bin/python bench/multipart.py [--size-mib 1024] [--reps 3] [--rss-gib 4] [--dir D]

All three receive the same bytes over loopback, sent with ``sendfile`` (the client costs
next to nothing): teledrop's ``POST /`` with the file as one multipart part, teledrop's
``PUT``, and ``bench/baselines.py receive --hash`` (``recv_into``, blake3, ``os.write``,
``fsync``) at the write size that was fastest (by wall time) in a sweep of one upload
each from 64 KiB to 1 MiB, run first. Each figure is the best of ``--reps`` runs, the
three subjects interleaved, so that teledrop and the baseline get as many draws of this
machine's noise (the best of every size's runs would pit one best of 15 against two
best of 3): MiB/s from the client's clock, and the server's CPU seconds per GiB (user +
system, and user alone, from ``/proc``), the figures this shared machine moves least. Then
the peak RSS of the worker that served one multipart upload of ``--rss-gib``.

First, in this process and without the network or the disk, the CPU that teledrop's body
receivers spend per GiB read from memory in 256 KiB reads into blake3: the raw receiver,
the multipart receiver, and the multipart receiver on werkzeug's decoder alone (what the
fast path saves); then both receivers into teledrop's own writer (``IngestWriter``, a
storage that drops the bytes) with no inspector installed and with one that does nothing
(what ``teledrop_inspect_upload`` costs). ``--receivers-only`` stops there. See
``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import blake3
from werkzeug.sansio.multipart import MultipartDecoder

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# The repository is on the path now.
from bench.clients import Reply, send_body, send_multipart  # noqa: E402
from bench.common import GiB, HOST, KiB, MiB, RESULTS, log  # noqa: E402
from bench.measures import Plan  # noqa: E402
from bench.procfs import watching  # noqa: E402
from bench.scenarios import BASELINE_BUFFERS, Bench  # noqa: E402
from bench.servers import Server  # noqa: E402
from teledrop.core.inspection import Digest, Inspection  # noqa: E402
from teledrop.core.upload import IngestWriter  # noqa: E402
from teledrop.hosts.body import READ_SIZE, multipart_receiver, raw_receiver  # noqa: E402

PIECE = 64 * MiB


class MemoryBody:
    """A body read from memory into the receiver's buffer, as from a socket."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.at = 0

    def readinto(self, buffer: bytearray) -> int:
        n = min(len(buffer), len(self.data) - self.at)
        buffer[:n] = self.data[self.at:self.at + n]
        self.at += n
        return n


class HashSink:
    """The upload and writer in one: fields dropped, file bytes into blake3."""

    def __init__(self) -> None:
        self.hasher = blake3.blake3()
        self.size = 0

    def open_file(self, filename: str | None, content_type: str | None) -> HashSink:
        return self

    def set_field(self, name: str, value: str) -> None:
        pass

    def write(self, data: bytes | memoryview) -> int:
        self.size += len(data)
        self.hasher.update(data)
        return len(data)


class DroppedBlob:
    """A staged blob that keeps nothing: the writer's own cost, without the disk's."""

    blob_id = "bench"

    def write(self, data: bytes | memoryview) -> int:
        return len(data)


class Unbounded:
    """Room for any upload (no space limits configured)."""

    def written(self, size: int) -> None:
        pass


class NoOpInspector:
    def update(self, chunk: memoryview) -> None:
        pass

    def finish(self) -> None:
        pass


class IngestSink:
    """teledrop's writer as the upload's file, its digest as core builds it: no inspector
    (no plugin implements the hook) or ``inspectors``."""

    def __init__(self, inspectors: list[Any]) -> None:
        digest = Digest(blake3.blake3(), Inspection(inspectors))
        self.writer = IngestWriter(DroppedBlob(), digest, 1 << 62, Unbounded())  # type: ignore[arg-type]

    @property
    def size(self) -> int:
        return self.writer.size

    def open_file(self, filename: str | None, content_type: str | None) -> IngestWriter:
        return self.writer

    def set_field(self, name: str, value: str) -> None:
        pass


def receiver_cpu(reps: int, size: int = 256 * MiB) -> dict[str, float]:
    """Best-of-``reps`` process CPU s/GiB of each receiver over the same body in memory."""
    payload = os.urandom(size)
    boundary = b"------------------------" + uuid.uuid4().hex[:16].encode()
    form = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; '
            b'filename="a.bin"\r\n\r\n' + payload + b"\r\n--" + boundary + b"--\r\n")
    Receiver = Callable[[Any], Callable[[Any], None]]
    raw: Receiver = lambda body: raw_receiver(body, None, None, size)  # noqa: E731
    multipart: Receiver = lambda body: multipart_receiver(body, boundary)  # noqa: E731
    receivers: dict[str, tuple[bytes, Receiver, Callable[[], Any]]] = {
        "raw": (payload, raw, HashSink),
        "multipart": (form, multipart, HashSink),
        "multipart, werkzeug alone": (
            form, lambda body: multipart_receiver(body, boundary, MultipartDecoder), HashSink),
        "raw, no inspector": (payload, raw, lambda: IngestSink([])),
        "raw, no-op inspector": (payload, raw, lambda: IngestSink([NoOpInspector()])),
        "multipart, no inspector": (form, multipart, lambda: IngestSink([])),
        "multipart, no-op inspector": (form, multipart, lambda: IngestSink([NoOpInspector()])),
    }
    best: dict[str, float] = {}
    for _ in range(reps):
        for name, (data, receiver, make_sink) in receivers.items():
            sink = make_sink()
            start = time.process_time()
            receiver(MemoryBody(data))(sink)
            seconds = time.process_time() - start
            if sink.size != size:
                raise RuntimeError(f"{name}: {sink.size} bytes, not {size}")
            best[name] = min(best.get(name, seconds * GiB / size), seconds * GiB / size)
    return best


def multipart(port: int, path: Path, repeat: int) -> Reply:
    # curl's boundary shape: the length of the boundary is what the fast path's search costs
    return send_multipart(port, path, repeat, boundary="-" * 24 + uuid.uuid4().hex[:16])


def put(port: int, path: Path, repeat: int) -> Reply:
    return send_body(port, "PUT", "/big.bin", {"Accept": "application/json"}, path, repeat)


def measure(server: Server, action: str, path: Path, repeat: int
            ) -> tuple[float, float, float, float]:
    """MiB/s, server CPU s/GiB (all, and user), and the serving process's peak RSS (MiB)
    of one upload."""
    time.sleep(1.0)  # the previous run's deletion and writeback are over
    with watching(server) as usage:
        reply = (multipart if action == "multipart" else put)(server.port, path, repeat)
    if reply.status != 201:
        raise RuntimeError(f"{server.name} {action}: {reply.status} {reply.body[:200]!r}")
    size = path.stat().st_size * repeat
    if server.name == "teledrop":
        drop = json.loads(reply.body)
        conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
        conn.request("DELETE", f"/{drop['slug']}", headers={"X-Delete-Token": drop["delete_token"]})
        conn.getresponse().read()
        conn.close()
    return (size / MiB / reply.seconds, usage[0].total_cpu_s * GiB / size,
            usage[0].total_user_s * GiB / size, usage[0].serving_peak_mib)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="upload size (×64 MiB)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rss-gib", type=int, default=4, help="the RSS upload (0: none)")
    parser.add_argument("--dir", type=Path, default=RESULTS,
                        help="where the servers write (every subject on the same filesystem; "
                             "a tmpfs such as /dev/shm takes the disk's swings out)")
    parser.add_argument("--receivers-only", action="store_true",
                        help="only the in-memory receivers, no server")
    args = parser.parse_args(argv)
    print(f"receivers in memory, {READ_SIZE // KiB} KiB reads into blake3, CPU s/GiB "
          f"(best of {args.reps}):")
    for name, cpu in receiver_cpu(args.reps).items():
        print(f"  {name:<28}{cpu:.3f}")
    if args.receivers_only:
        return 0
    repeat = max(1, args.size_mib * MiB // PIECE)
    args.dir.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)  # the clients' reply files
    work = Path(tempfile.mkdtemp(prefix="multipart-", dir=args.dir))
    bench = Bench(Plan(big=repeat * PIECE, rss_sizes=[], reps=args.reps), work, {})
    results: dict[str, list[tuple[float, float, float, float]]] = {}
    try:
        bench.chunk_file.write_bytes(os.urandom(PIECE))
        bench.small.write_bytes(os.urandom(KiB))
        teledrop = bench.warm(bench.start(bench.teledrop_server()))
        sweep = {}
        for size in BASELINE_BUFFERS:
            server = bench.start(receive_hash(bench, size))
            sweep[size] = measure(server, "put", bench.chunk_file, repeat)
            bench.servers.pop(server.name).stop()
        log("baseline sweep: " + ", ".join(f"{size // KiB} KiB {run[0]:.0f} MiB/s"
                                           for size, run in sweep.items()))
        fastest_size = max(sweep, key=lambda size: sweep[size][0])
        baseline = bench.start(receive_hash(bench, fastest_size))
        subjects = [("multipart", teledrop, "multipart"), ("raw PUT", teledrop, "put"),
                    (f"baseline {fastest_size // KiB} KiB", baseline, "put")]
        for rep in range(args.reps):
            for name, server, action in (subjects if rep % 2 == 0 else subjects[::-1]):
                results.setdefault(name, []).append(
                    measure(server, action, bench.chunk_file, repeat))
                log(f"{name}: {results[name][-1][0]:.0f} MiB/s, "
                    f"{results[name][-1][1]:.2f} ({results[name][-1][2]:.2f}) CPU s/GiB")
        rss = None
        if args.rss_gib:
            rss = measure(bench.restart_teledrop(), "multipart", bench.chunk_file,
                          args.rss_gib * GiB // PIECE)
    finally:
        bench.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    best = {name: (max(r[0] for r in runs), min(r[1] for r in runs), min(r[2] for r in runs))
            for name, runs in results.items()}
    fastest = subjects[-1][0]
    base = best[fastest]
    print("baseline sweep, one upload each: " + ", ".join(
        f"{size // KiB} KiB {run[0]:.0f} MiB/s {run[1]:.2f} CPU s/GiB"
        for size, run in sweep.items()))
    print(f"{size_of(repeat)}, best of {args.reps}; ratios against the baseline at its "
          f"fastest write size in the sweep, {fastest.removeprefix('baseline ')}")
    print(f"{'subject':<20}{'MiB/s':>7}{'CPU s/GiB':>11}{'(user)':>8}"
          f"{'wall x':>8}{'CPU x':>7}{'user x':>8}")
    for name, (wall, cpu, user) in best.items():
        print(f"{name:<20}{wall:>7.0f}{cpu:>11.2f}{user:>8.2f}{ratio(wall, base[0]):>8}"
              f"{ratio(cpu, base[1]):>7}{ratio(user, base[2]):>8}")
    if rss is not None:
        print(f"peak RSS of the worker, one {args.rss_gib} GiB multipart upload: "
              f"{rss[3]:.1f} MiB ({rss[0]:.0f} MiB/s, {rss[1]:.2f} CPU s/GiB)")
    return 0


def receive_hash(bench: Bench, size: int) -> Server:
    """``baselines.py receive --hash`` writing ``size`` bytes at a time."""
    return bench.python_reference(f"receive-hash-{size // KiB}k", "receive", "--hash",
                                  "--buffer", str(size), "--dir", str(bench.scratch))


def ratio(value: float, base: float) -> str:
    """``value / base``, or "-" when the baseline took less than a clock tick."""
    return f"{value / base:.2f}" if base else "-"


def size_of(repeat: int) -> str:
    size = repeat * PIECE
    return f"{size // GiB} GiB" if size % GiB == 0 else f"{size // MiB} MiB"


if __name__ == "__main__":
    sys.exit(main())
