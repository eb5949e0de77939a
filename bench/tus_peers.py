"""teledrop's tus endpoint beside another Python tus server, tuspyserver, one run.

    .venv/bin/python bench/tus_peers.py [--size-mib 1024] [--reps 3] [--chunk-mib 0]

The same file (``--size-mib`` of random bytes, a multiple of 64 MiB) is uploaded with the
tuspy client (``tusclient``) to teledrop's ``/api/uploads`` (one gunicorn, two workers,
local_storage, sqlite_meta) and to tuspyserver (its FastAPI router under uvicorn, one
process), with the same chunk size (``--chunk-mib``; 0, the default, sends the whole file
in one ``PATCH``). tuspyserver and uvicorn are installed at run time into their own
virtualenv under ``bench/results/``, next to the app module written there; its files go
under the run's directory, on the same filesystem as teledrop's storage.

Each figure is the best of ``--reps`` interleaved runs: MiB/s from the client's clock
(the ``POST`` counted), the server's CPU seconds per GiB (user + system, and user alone,
from ``/proc``) and its serving process's peak RSS. Every upload is checked: teledrop's
drop is downloaded and its blake3 hash compared, tuspyserver's file is hashed on disk;
then each is deleted. See ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import blake3
from tusclient import client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# The repository is on the path now.
from bench.clients import http_delete  # noqa: E402
from bench.common import (HOST, MiB, RESULTS, TRANSFER_TIMEOUT, free_port, log,  # noqa: E402
                          size_label)
from bench.measures import Plan  # noqa: E402
from bench.procfs import watching  # noqa: E402
from bench.scenarios import Bench  # noqa: E402
from bench.servers import Server  # noqa: E402
from bench.tus import PIECE, TUS, Figures, request  # noqa: E402

PEER_DIR = RESULTS / "tuspyserver"
PEER_PACKAGES = ("tuspyserver", "uvicorn")
PEER_APP = '''"""tuspyserver's router at /files, its files in $BENCH_TUS_FILES."""
import os

from fastapi import FastAPI
from tuspyserver import create_tus_router

app = FastAPI()
app.include_router(create_tus_router(prefix="files", files_dir=os.environ["BENCH_TUS_FILES"],
                                     max_size=1 << 40))
'''
TELEDROP, PEER = "teledrop", "tuspyserver"


def peer_python() -> Path:
    """tuspyserver's own virtualenv, made (or brought up to date) now: its interpreter."""
    python = PEER_DIR / "venv" / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_DIR / "venv")], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    *PEER_PACKAGES], check=True)
    (PEER_DIR / "tus_app.py").write_text(PEER_APP)
    versions = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"],
                              capture_output=True, text=True, check=True).stdout.split()
    log("peer: " + ", ".join(v for v in versions
                             if v.split("==")[0].lower() in (*PEER_PACKAGES, "fastapi")))
    return python


def peer_server(bench: Bench, python: Path, files: Path) -> Server:
    port = free_port()
    return Server(PEER, [str(python), "-m", "uvicorn", "tus_app:app", "--host", HOST,
                         "--port", str(port), "--log-level", "warning"],
                  port, bench.work / f"{PEER}.log",
                  bench.base_env(PEER, BENCH_TUS_FILES=str(files)), cwd=PEER_DIR)


def tus_upload(server: Server, endpoint: str, payload: Path, chunk: int) -> client.Uploader:
    """One tuspy upload of ``payload`` in ``chunk``-byte PATCHes (its POST included)."""
    uploader = client.TusClient(server.url(endpoint)).uploader(
        file_path=str(payload), chunk_size=chunk, retries=0)
    uploader.upload()
    return uploader


def file_digest(path: Path) -> str:
    hasher = blake3.blake3()
    hasher.update_mmap(str(path))
    return f"blake3:{hasher.hexdigest()}"


def download_digest(port: int, slug: str) -> str:
    """The blake3 hash of a drop's bytes as teledrop serves them."""
    conn = http.client.HTTPConnection(HOST, port, timeout=TRANSFER_TIMEOUT)
    try:
        conn.request("GET", f"/{slug}")
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"GET /{slug}: {response.status}")
        hasher = blake3.blake3()
        while block := response.read(MiB):
            hasher.update(block)
        return f"blake3:{hasher.hexdigest()}"
    finally:
        conn.close()


def check_teledrop(server: Server, uploader: client.Uploader, digest: str) -> None:
    """Download the drop, compare its hash, delete it."""
    path = "/" + uploader.url.split("/", 3)[3]
    drop = json.loads(request(server.port, "GET", path, TUS).body)
    got = download_digest(server.port, drop["slug"])
    if got != digest:
        raise RuntimeError(f"teledrop served {got} for {path}, sent {digest}")
    http_delete(server.port, drop["slug"], uploader.request.response_headers["x-delete-token"])


def check_peer(server: Server, uploader: client.Uploader, files: Path, digest: str) -> None:
    """Hash the stored file, then end the upload (tus termination)."""
    stored = files / uploader.url.rstrip("/").rsplit("/", 1)[1]
    if (got := file_digest(stored)) != digest:
        raise RuntimeError(f"tuspyserver stored {got} in {stored}, sent {digest}")
    path = "/" + uploader.url.split("/", 3)[3]
    if (status := request(server.port, "DELETE", path, TUS).status) != 204:
        raise RuntimeError(f"DELETE {path} on tuspyserver: {status}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="upload size (×64 MiB)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--chunk-mib", type=int, default=0,
                        help="PATCH size for both servers; 0: the whole file in one")
    args = parser.parse_args(argv)
    size = max(1, args.size_mib * MiB // PIECE) * PIECE
    chunk = args.chunk_mib * MiB or size
    RESULTS.mkdir(parents=True, exist_ok=True)
    PEER_DIR.mkdir(exist_ok=True)
    python = peer_python()
    work = Path(tempfile.mkdtemp(prefix="tus-peers-", dir=RESULTS))
    files = work / "data" / "tuspyserver"  # beside teledrop's storage: same filesystem
    bench = Bench(Plan(big=size, rss_sizes=[], reps=args.reps), work, {})
    figures = Figures()
    try:
        bench.make_payloads()
        digest = file_digest(bench.payload)
        teledrop = bench.warm(bench.start(bench.teledrop_server()))
        peer = bench.start(peer_server(bench, python, files))

        def subject(name: str, server: Server, endpoint: str,
                    check: Callable[[client.Uploader, str], None]) -> Callable[[], None]:
            # one small upload first: imports and first connections are not measured
            check(tus_upload(server, endpoint, bench.small, chunk), file_digest(bench.small))

            def run() -> None:
                bench.settle()
                with watching(server) as usage:
                    start = time.perf_counter()
                    uploader = tus_upload(server, endpoint, bench.payload, chunk)
                    seconds = time.perf_counter() - start
                check(uploader, digest)
                figures.add(name, size, seconds, usage[0].total_cpu_s, usage[0].total_user_s,
                            usage[0].serving_peak_mib)
            return run

        bench.interleaved({
            TELEDROP: subject(TELEDROP, teledrop, "/api/uploads",
                              lambda up, want: check_teledrop(teledrop, up, want)),
            PEER: subject(PEER, peer, "/files",
                          lambda up, want: check_peer(peer, up, files, want)),
        })
    finally:
        bench.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    teledrop_row, peer_row = figures.best[TELEDROP], figures.best[PEER]
    patches = "one PATCH" if chunk >= size else f"PATCHes of {size_label(chunk)}"
    print(f"{size_label(size)} with tuspy in {patches}, best of {args.reps}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"teledrop / tuspyserver: {teledrop_row[0] / peer_row[0]:.2f} x the MiB/s, "
          f"{teledrop_row[1] / peer_row[1]:.2f} x the CPU s/GiB")
    print("wall x = time / tuspyserver's, CPU x = CPU / tuspyserver's")
    figures.table(PEER, [TELEDROP, PEER])
    return 0


if __name__ == "__main__":
    sys.exit(main())
