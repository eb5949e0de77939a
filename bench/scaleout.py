"""teledrop on S3 and PostgreSQL next to boto3 on the same servers, in one run.

    .venv/bin/python bench/scaleout.py [--size 256MiB] [--part-size 16MiB] [--reps 3] [--json F]

It starts SeaweedFS and a throwaway PostgreSQL on loopback ports, as the tests do
(``tests/services``), then a teledrop host (``teledrop serve``, one worker of eight
threads) on them, and measures, the median of ``--reps`` runs each, teledrop and its
baseline interleaved:

1. a multipart-form upload (``curl -F``) and a raw ``PUT`` (``curl -T``) of one file of
   random bytes, next to boto3's own ``upload_file`` of it with the same part size (its
   default ten threads, and one: teledrop has one part in flight while the next fills;
   and ten threads sending ``UNSIGNED-PAYLOAD`` bodies, as teledrop does, where boto3's
   default over plain http hashes each part into its signature); the worker's RSS idle,
   its peak during each upload (``VmHWM``, reset before it) and its RSS after them;
2. a proxied download (``curl``) next to boto3's ``download_fileobj`` of the object;
3. 1 KiB uploads/s and downloads/s from eight concurrent clients, on three hosts of two
   workers of eight threads: ``s3_storage`` + ``postgres_meta``, ``s3_storage`` +
   ``sqlite_meta``, and the single-machine default ``local_storage`` + ``sqlite_meta``.

Ratios (teledrop / boto3) are the headline: the machine is shared and noisy. Everything it
starts and stores goes at the end. See ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# The repository is on the path now.
import requests  # noqa: E402
from boto3.s3.transfer import TransferConfig  # noqa: E402

from bench.clients import curl  # noqa: E402
from bench.common import RESULTS  # noqa: E402
from bench.procfs import proc_status, reset_peak  # noqa: E402
from teledrop.core.units import format_size, parse_size  # noqa: E402
from tests.live_server import LiveServer, live_server  # noqa: E402
from tests.services.postgres import ThrowawayPostgres, find_bin_dir  # noqa: E402
from tests.services.seaweedfs import SeaweedFS  # noqa: E402
from tests.support.entry_points import entry_points_env  # noqa: E402
from tests.support.hosts import BACKEND_ENTRY_POINTS, SharedBackends, host, \
    shared_backends  # noqa: E402

MiB = 1 << 20
#: 1 KiB operations per configuration, and the clients sending them at once.
SMALL_COUNT = 400
SMALL_CLIENTS = 8
JSON = {"Accept": "application/json"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def interleaved(reps: int, runs: dict[str, Callable[[], float]]) -> dict[str, float]:
    """The median seconds of each run, the runs taking turns rep by rep so that the load
    of one minute on this shared machine falls on all of them alike."""
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for rep in range(reps):
        for name, run in runs.items():
            log(f"  {name} ({rep + 1}/{reps})")
            seconds[name].append(run())
    return {name: statistics.median(times) for name, times in seconds.items()}


def random_file(path: Path, size: int) -> Path:
    with open("/dev/urandom", "rb") as source, open(path, "wb") as sink:
        left = size
        while left:
            left -= sink.write(source.read(min(left, 4 * MiB)))
    return path


# --- big files --------------------------------------------------------------------------

class BigFiles:
    """Uploads and downloads of one file through a teledrop host and through boto3."""

    def __init__(self, server: LiveServer, backends: SharedBackends, path: Path,
                 part_size: int) -> None:
        self.server = server
        self.backends = backends
        self.path = path
        self.size = path.stat().st_size
        (self.worker,) = server.worker_pids()
        self.client = backends.endpoint.client()
        self.unsigned = backends.endpoint.client()
        self.unsigned.meta.config.s3 = {**self.unsigned.meta.config.s3,
                                        "payload_signing_enabled": False}
        self.transfer = TransferConfig(multipart_threshold=part_size,
                                       multipart_chunksize=part_size)
        self.one_thread = TransferConfig(multipart_threshold=part_size,
                                         multipart_chunksize=part_size, max_concurrency=1,
                                         use_threads=False)
        self.peaks: dict[str, list[int]] = {"multipart": [], "put": []}
        self.slug = self.token = ""

    def teledrop_upload(self, kind: str) -> float:
        args = (["-F", f"file=@{self.path}"] if kind == "multipart"
                else ["-T", str(self.path)])
        reset_peak(self.worker)
        reply = curl([*args, "-H", "Accept: application/json", self.server.url("/")])
        self.peaks[kind].append(proc_status(self.worker, "VmHWM") * 1024)
        if reply.status != 201:
            raise RuntimeError(f"upload failed ({reply.status}): {reply.body[:300]!r}")
        drop = json.loads(reply.body)
        if drop["size"] != self.size:
            raise RuntimeError(f"stored {drop['size']} bytes of {self.size}")
        if self.slug:
            self.delete(self.slug, self.token)
        self.slug, self.token = drop["slug"], drop["delete_token"]
        return reply.seconds

    def delete(self, slug: str, token: str) -> None:
        self.server.request("DELETE", f"/{slug}", headers={"X-Delete-Token": token})

    def boto3_upload(self, config: TransferConfig, unsigned: bool = False) -> float:
        client = self.unsigned if unsigned else self.client
        start = time.perf_counter()
        client.upload_file(str(self.path), self.backends.bucket, "bench/boto3", Config=config)
        return time.perf_counter() - start

    def teledrop_download(self) -> float:
        reply = curl([self.server.url(f"/{self.slug}")], keep_body=False)
        if reply.status != 200:
            raise RuntimeError(f"download failed ({reply.status})")
        return reply.seconds

    def boto3_download(self, config: TransferConfig) -> float:
        sink = Discard()
        start = time.perf_counter()
        self.client.download_fileobj(self.backends.bucket, "bench/boto3", sink, Config=config)
        seconds = time.perf_counter() - start
        if sink.written != self.size:
            raise RuntimeError(f"boto3 read {sink.written} bytes of {self.size}")
        return seconds

    def close(self) -> None:
        if self.slug:
            self.delete(self.slug, self.token)
        self.client.delete_object(Bucket=self.backends.bucket, Key="bench/boto3")
        self.client.close()
        self.unsigned.close()

    def rss_mib(self) -> float:
        return proc_status(self.worker, "VmRSS") / 1024


class Discard:
    """A seekable sink that counts bytes: boto3 writes each range it fetched at its offset
    (from one I/O thread)."""

    def __init__(self) -> None:
        self.written = 0
        self._position = 0

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0:
            raise ValueError("only absolute seeks")
        self._position = offset
        return offset

    def tell(self) -> int:
        return self._position

    def write(self, data: bytes) -> int:
        self.written += len(data)
        self._position += len(data)
        return len(data)


def big_files(bench: BigFiles, reps: int) -> dict[str, Any]:
    rate = bench.size / MiB
    results: dict[str, Any] = {"idle worker RSS MiB": bench.rss_mib()}
    log(f"uploads of {format_size(bench.size)}")
    uploads = interleaved(reps, {
        "upload multipart": lambda: bench.teledrop_upload("multipart"),
        "boto3 upload_file": lambda: bench.boto3_upload(bench.transfer),
        "upload put": lambda: bench.teledrop_upload("put"),
        "boto3 upload_file, 1 thread": lambda: bench.boto3_upload(bench.one_thread),
        "boto3 upload_file, unsigned payload": lambda: bench.boto3_upload(bench.transfer,
                                                                          unsigned=True)})
    results["worker RSS after uploads MiB"] = bench.rss_mib()
    log("downloads")
    downloads = interleaved(reps, {
        "download": bench.teledrop_download,
        "boto3 download_fileobj": lambda: bench.boto3_download(bench.transfer),
        "boto3 download_fileobj, 1 thread": lambda: bench.boto3_download(bench.one_thread)})
    results.update({name: rate / seconds for name, seconds in {**uploads, **downloads}.items()})
    results["peak worker RSS MiB"] = {kind: max(peaks) / MiB
                                      for kind, peaks in bench.peaks.items()}
    return results


# --- small files ------------------------------------------------------------------------

def small_files(server: LiveServer) -> dict[str, float]:
    """1 KiB uploads/s, then downloads/s of them, from concurrent keep-alive clients."""
    content = b"k" * 1024
    sessions = threading.local()

    def session() -> requests.Session:
        if not hasattr(sessions, "s"):
            sessions.s = requests.Session()
            sessions.s.trust_env = False
        return sessions.s

    def upload(_: int) -> str:
        response = session().put(server.url("/small.bin"), data=content, headers=JSON,
                                 timeout=30)
        if response.status_code != 201:
            raise RuntimeError(f"upload failed ({response.status_code}): {response.text}")
        return response.json()["slug"]

    def download(slug: str) -> None:
        response = session().get(server.url(f"/{slug}"), timeout=30)
        if response.content != content:
            raise RuntimeError(f"download of {slug} failed ({response.status_code})")

    with ThreadPoolExecutor(SMALL_CLIENTS) as pool:
        list(pool.map(upload, range(SMALL_CLIENTS * 4)))  # warm up every worker and pool
        start = time.perf_counter()
        slugs = list(pool.map(upload, range(SMALL_COUNT)))
        uploads = SMALL_COUNT / (time.perf_counter() - start)
        start = time.perf_counter()
        list(pool.map(download, slugs))
        downloads = SMALL_COUNT / (time.perf_counter() - start)
    return {"uploads/s": uploads, "downloads/s": downloads}


# --- the run ----------------------------------------------------------------------------

@contextmanager
def servers(work: Path) -> Iterator[tuple[SeaweedFS, ThrowawayPostgres]]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("no PostgreSQL binaries: install Debian's postgresql")
    seaweedfs = SeaweedFS(work / "seaweedfs")
    seaweedfs.start()
    try:
        postgres = ThrowawayPostgres.launch(bin_dir)
        try:
            yield seaweedfs, postgres
        finally:
            postgres.remove()
    finally:
        seaweedfs.stop()


def run(size: int, part_size: int, reps: int) -> dict[str, Any]:
    RESULTS.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="scaleout-", dir=RESULTS))
    (work / "local").mkdir()
    many = {"server": {"workers": 2, "threads": 8}}
    try:
        with ExitStack() as stack:
            seaweedfs, postgres = stack.enter_context(servers(work))
            backends = stack.enter_context(shared_backends(
                seaweedfs.endpoint, postgres, format_size(part_size).replace(" ", "")))
            path = random_file(work / "big.bin", size)
            big = stack.enter_context(host(backends, work / "big",
                                           server={"workers": 1, "threads": 8}))
            bench = BigFiles(big, backends, path, part_size)
            stack.callback(bench.close)
            results: dict[str, Any] = {"size": size, "part_size": part_size, "reps": reps,
                                       "MiB/s": big_files(bench, reps)}
            path.unlink()
            log("1 KiB files")
            s3_sqlite = {**many, "metadata": {"plugin": "sqlite_meta"}}
            small = {}
            for name, server in (
                    ("s3_storage + postgres_meta", host(backends, work / "pg", **many)),
                    ("s3_storage + sqlite_meta", host(backends, work / "sq", **s3_sqlite)),
                    ("local_storage + sqlite_meta", live_server(
                        work / "local", command="serve", env=entry_points_env(
                            *BACKEND_ENTRY_POINTS), **many))):
                log(f"  {name}")
                with server as running:
                    small[name] = small_files(running)
            results["1 KiB"] = small
            return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(results: dict[str, Any]) -> str:
    rates = results["MiB/s"]
    lines = [f"file {format_size(results['size'])}, part size "
             f"{format_size(results['part_size'])}, median of {results['reps']}",
             "", "| transfer | MiB/s | teledrop / boto3 (10 threads) | / boto3 (1 thread) |",
             "| --- | ---: | ---: | ---: |"]
    for name, base in (("upload multipart", "upload_file"), ("upload put", "upload_file"),
                       ("download", "download_fileobj")):
        lines.append(f"| {name} | {rates[name]:.0f} | {rates[name] / rates['boto3 ' + base]:.2f} "
                     f"| {rates[name] / rates['boto3 ' + base + ', 1 thread']:.2f} |")
    unsigned = rates["boto3 upload_file, unsigned payload"]
    for name in ("upload multipart", "upload put"):
        lines.append(f"| {name} / boto3 unsigned payload | | {rates[name] / unsigned:.2f} | |")
    for name in ("boto3 upload_file", "boto3 upload_file, 1 thread",
                 "boto3 upload_file, unsigned payload", "boto3 download_fileobj",
                 "boto3 download_fileobj, 1 thread"):
        lines.append(f"| {name} | {rates[name]:.0f} | | |")
    peaks = rates["peak worker RSS MiB"]
    lines += ["", f"worker RSS idle {rates['idle worker RSS MiB']:.0f} MiB, after the uploads "
              f"{rates['worker RSS after uploads MiB']:.0f} MiB; peak during the upload: "
              + ", ".join(f"{kind} {mib:.0f} MiB" for kind, mib in peaks.items()),
              "", "| 1 KiB files | uploads/s | downloads/s |", "| --- | ---: | ---: |"]
    for name, figures in results["1 KiB"].items():
        lines.append(f"| {name} | {figures['uploads/s']:.0f} | {figures['downloads/s']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("256MiB"),
                        help="the big file (default 256MiB; the figures in docs: 1GiB)")
    parser.add_argument("--part-size", type=parse_size, default=parse_size("16MiB"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    results = run(args.size, args.part_size, args.reps)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
