"""Memory per upload does not grow with the file's size (the streaming upload
holds one read buffer, never the body), tus uploads included.

A real gunicorn with one worker receives a 64 MiB upload, then a 1 GiB one, as a multipart
form, a raw PUT with Content-Length and a chunked PUT. The test never holds the body: it
sends one 64 MiB file of random bytes again and again with ``sendfile``. The worker's peak
resident memory (``VmHWM``, which never goes down) must stay within 64 MiB, and grow by less
than 8 MiB from the 64 MiB upload to the 1 GiB one: a per-upload buffer, not a per-byte
cost. Each upload must also be stored whole (size and blake3 of the record), so that a
body the server gave up on early cannot pass for a flat one.

A tus upload of 4 GiB in one PATCH, and one cut after 1 GiB and resumed on a fresh worker
(its hash rebuilt from the staged bytes), keep the worker within the same 64 MiB (a soak
test: ``pytest -m soak``).

The worker runs one thread: glibc gives each thread that allocates a buffer an arena of its
own, so a request served by a thread that never served one before adds a few MiB (+7 MiB
measured with 4 threads) whatever its size. That is a per-thread constant, bounded by
``[server] threads``; the benchmark (``bench/run.py``, scenario 5) reports it under
concurrency. What is asserted here is what depends on the file's size.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.live_server import (
    LiveServer,
    connect,
    live_server,
    read_response,
    wait_until,
)
from tests.support.memory import (  # noqa: F401 (unit_file is a fixture)
    GROWTH_LIMIT,
    UNIT,
    UPLOAD_TIMEOUT,
    MiB,
    Sender,
    expected_hash,
    head,
    peak_rss,
    send_file,
    stored,
    unit_file,
    upload_chunked,
    upload_multipart,
    upload_put,
)

pytestmark = pytest.mark.gunicorn

#: The promise: peak RSS per worker at most 64 MiB during a large upload, growing by < 8 MiB.
PEAK_LIMIT = 64 * MiB
TUS = {"Tus-Resumable": "1.0.0"}






















@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path, server={"workers": 1, "threads": 1}) as live:
        yield live




@pytest.mark.parametrize("sender", [upload_multipart, upload_put, upload_chunked],
                         ids=["multipart", "put", "chunked"])
def test_worker_memory_stays_flat_from_64_mib_to_1_gib(server: LiveServer, unit_file: Path,
                                                       sender: Sender) -> None:
    (worker,) = server.worker_pids()
    stored(server, sender, unit_file, 1)
    after_small = peak_rss(worker)
    stored(server, sender, unit_file, 16)
    after_big = peak_rss(worker)
    assert server.worker_pids() == [worker], "the worker was replaced during the uploads"
    growth = after_big - after_small
    assert after_big <= PEAK_LIMIT, (
        f"peak worker RSS {after_big / MiB:.1f} MiB > {PEAK_LIMIT / MiB:.0f} MiB "
        f"(after 64 MiB: {after_small / MiB:.1f} MiB)")
    assert growth < GROWTH_LIMIT, (
        f"peak worker RSS grew by {growth / MiB:.1f} MiB from a 64 MiB to a 1 GiB upload "
        f"({after_small / MiB:.1f} -> {after_big / MiB:.1f} MiB)")
    server.data.assert_consistent()


def patch_tus(server: LiveServer, target: str, path: Path, offset: int, repeat: int,
              send: int | None = None) -> tuple[int, dict[str, str]]:
    """A PATCH at ``offset`` announcing ``path`` repeated ``repeat`` times from there (a
    whole number of its repetitions); with ``send``, its client half-closes after that
    many of them."""
    with connect(server, timeout=4 * UPLOAD_TIMEOUT) as sock:
        sock.sendall(head("PATCH", target, {
            **TUS, "Upload-Offset": str(offset), "Content-Length": str(UNIT * repeat),
            "Content-Type": "application/offset+octet-stream"}))
        send_file(sock, path, repeat if send is None else send)
        if send is not None:
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(UPLOAD_TIMEOUT)
            while sock.recv(65536):  # whatever the server answers a cut PATCH
                pass
            return 0, {}
        status, headers, _ = read_response(sock, "PATCH", timeout=4 * UPLOAD_TIMEOUT)
    return status, headers


@pytest.mark.soak  # 8 GiB through one worker: about three minutes on this machine
def test_worker_memory_stays_flat_through_a_4_gib_tus_upload(server: LiveServer,
                                                              unit_file: Path) -> None:
    """4 GiB in one PATCH, then 4 GiB cut after 1 GiB and resumed on a fresh worker (which
    has no hasher and reads the staged GiB back once): the peak stays within 64 MiB."""
    repeat = 4 * 1024 * MiB // UNIT
    for cut in (None, 16):
        created = server.request("POST", "/api/uploads",
                                 headers={**TUS, "Upload-Length": str(UNIT * repeat)})
        assert created.status_code == 201, created.text
        target = urlsplit(created.headers["Location"]).path
        offset = 0
        if cut is not None:
            patch_tus(server, target, unit_file, 0, repeat, send=cut)
            offset = cut * UNIT
            assert int(server.request("HEAD", target, headers=TUS)
                       .headers["Upload-Offset"]) == offset
            (old,) = server.worker_pids()
            os.kill(old, signal.SIGTERM)  # the next PATCH reaches a worker without its hasher
            assert wait_until(lambda: server.worker_pids() not in ([], [old]), 30)
        (worker,) = server.worker_pids()
        status, headers = patch_tus(server, target, unit_file, offset, repeat - offset // UNIT)
        assert status == 204, headers
        peak = peak_rss(worker)
        assert server.worker_pids() == [worker], "the worker was replaced during the upload"
        drop = server.request("GET", target).json()
        assert (drop["size"], drop["hash"]) == (UNIT * repeat, expected_hash(unit_file, repeat))
        assert server.request("DELETE", f"/{drop['slug']}", headers={
            "X-Delete-Token": headers["x-delete-token"]}).status_code == 204
        assert peak <= PEAK_LIMIT, (f"peak worker RSS {peak / MiB:.1f} MiB > "
                                    f"{PEAK_LIMIT / MiB:.0f} MiB through a 4 GiB tus upload")
    server.data.assert_consistent()
