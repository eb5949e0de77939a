"""A full disk under a real gunicorn: ``limits.min_free_space`` and ``limits.max_total_size``
refuse uploads (507) before their body where the size is known and as soon as they cross
otherwise; on a disk filled from outside, reads answer 507 in one line, a delete with the
right token and ``teledrop gc`` free space, and ``/healthz`` says ``full``.

The storage root and the SQLite file are both on a small real tmpfs (mounting one needs
root, as in CI).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import (
    LAST_CHUNK,
    LiveServer,
    chunk,
    connect,
    live_server,
    multipart,
    read_response,
    request_head,
    send_until_answered,
)
from tests.small_disk import fill, free_bytes, small_filesystem

pytestmark = pytest.mark.gunicorn

MiB = 1024 * 1024
DISK = 8 * MiB
MIN_FREE = 2 * MiB
MAX_TOTAL = 3 * MiB
JSON = {"Accept": "application/json"}
BOUNDARY = "full-disk-boundary-k2Jd8"
PIECE = 256 * 1024


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    """A server whose storage and database live on an 8 MiB tmpfs, keeping 2 MiB free."""
    base = tmp_path_factory.mktemp("full-disk")
    data = base / "data"
    with small_filesystem(data, DISK) as mounted:
        if not mounted:
            pytest.fail("mounting a tmpfs failed: the suite runs as root (make test)")
        with live_server(base, server={"workers": 1, "threads": 4},
                         limits={"min_free_space": "2MiB"}) as running:
            yield running, data


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("capped"), server={"workers": 1, "threads": 4},
                     limits={"max_total_size": "3MiB", "min_free_space": "0"}) as running:
        yield running


def put(server: LiveServer, content: bytes, query: str = "") -> dict[str, Any]:
    response = server.request("PUT", f"/f.bin{query}", data=content, headers=JSON)
    assert response.status_code == 201, response.text
    return response.json()


def refused_head_only(server: LiveServer, kind: str, size: int) -> dict[str, Any]:
    """Send only the head of an upload announcing ``size`` bytes: the answer must come
    without a byte of the body."""
    if kind == "put":
        head = request_head("PUT", "/big.bin", {**JSON, "Content-Length": str(size)})
    else:
        head = request_head("POST", "/", {
            **JSON, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Content-Length": str(size)})
    with connect(server) as sock:
        sock.sendall(head)
        status, _, body = read_response(sock, "PUT" if kind == "put" else "POST", timeout=5)
    assert status == 507, body
    return read_error(body)


def refused_mid_stream(server: LiveServer, kind: str, size: int) -> dict[str, Any]:
    """Stream ``size`` bytes in chunks, with no size announced, until the server answers."""
    if kind == "chunked put":
        head = request_head("PUT", "/big.bin", {**JSON, "Transfer-Encoding": "chunked"})
        start, tail = b"", b""
    else:
        head = request_head("POST", "/", {
            **JSON, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Transfer-Encoding": "chunked"})
        start, tail = multipart(BOUNDARY, "big.bin")
    pieces = [chunk(start)] if start else []
    pieces += [chunk(os.urandom(PIECE)) for _ in range(size // PIECE)]
    pieces += [chunk(tail)] if tail else []
    pieces.append(LAST_CHUNK)
    with connect(server) as sock:
        sock.sendall(head)
        send_until_answered(sock, pieces)
        status, _, body = read_response(sock, "POST", timeout=10)
    assert status == 507, body
    return read_error(body)


def read_error(body: bytes) -> dict[str, Any]:
    error = json.loads(body)["error"]
    assert error["code"] == "storage_full"
    return error


def assert_clean(server: LiveServer) -> None:
    server.data.assert_consistent()
    assert "Traceback" not in server.log()


# --- limits.min_free_space ---------------------------------------------------------------

@pytest.mark.parametrize("kind", ["put", "multipart"])
def test_an_upload_that_would_leave_less_than_min_free_space_is_507_before_its_body(
        disk: tuple[LiveServer, Path], kind: str) -> None:
    server, data = disk
    before = server.data.snapshot()
    too_big = free_bytes(data) - MIN_FREE + PIECE
    error = refused_head_only(server, kind, too_big)
    assert "limits.min_free_space" in error["message"]
    assert server.data.snapshot() == before
    # One that leaves the minimum free is taken.
    fits = os.urandom(free_bytes(data) - MIN_FREE - 4 * PIECE)
    drop = put(server, fits)
    assert server.request("GET", f"/{drop['slug']}").content == fits
    assert server.request("DELETE", f"/{drop['slug']}",
                          headers={"X-Delete-Token": drop["delete_token"]}).status_code == 204
    assert_clean(server)


@pytest.mark.parametrize("kind", ["chunked put", "chunked multipart"])
def test_an_upload_of_unknown_size_is_507_as_soon_as_it_crosses_min_free_space(
        disk: tuple[LiveServer, Path], kind: str) -> None:
    server, data = disk
    before = server.data.snapshot()
    free = free_bytes(data)
    error = refused_mid_stream(server, kind, free + MiB)
    # Stopped by the margin, not by the disk running out (ENOSPC says "writing").
    assert "stopped" in error["message"] and "limits.min_free_space" in error["message"]
    assert server.data.snapshot() == before
    assert free_bytes(data) >= free - PIECE
    assert_clean(server)


def test_a_disk_filled_from_outside_still_reads_deletes_and_collects(
        disk: tuple[LiveServer, Path]) -> None:
    server, data = disk
    kept = put(server, os.urandom(MiB))
    exhausted = put(server, os.urandom(MiB), "?max_downloads=1")
    assert server.request("GET", f"/{exhausted['slug']}").status_code == 200
    log_start = len(server.log())
    filler = fill(data)
    try:
        health = server.request("GET", "/healthz")
        assert health.status_code == 507
        assert health.json()["status"] == "full"
        # A download is counted, which the full database cannot write: 507, one line.
        response = server.request("GET", f"/{kept['slug']}")
        assert response.status_code == 507
        assert response.text.count("\n") == 1 and "full" in response.text
        assert server.request("GET", f"/{kept['slug']}", headers=JSON).json()["error"]["code"] \
            == "metadata_full"
        assert server.request("PUT", "/tiny.txt", data=b"tiny").status_code == 507
        # The delete makes room by removing the file first, then the record.
        response = server.request("DELETE", f"/{kept['slug']}",
                                  headers={"X-Delete-Token": kept["delete_token"]})
        assert response.status_code == 204, response.text
        assert "removing its file first" in server.log()[log_start:]
        assert server.data.record(kept["slug"]) is None
        assert free_bytes(data) > MiB - 4 * PIECE  # the file, less what SQLite wrote
        assert server.request("GET", f"/{kept['slug']}").status_code == 404
        # Full again: gc removes the exhausted drop all the same.
        fill(data)
        result = server.cli("gc")
        assert result.returncode == 0, result.stderr
        assert exhausted["slug"] in result.stdout
        assert server.data.record(exhausted["slug"]) is None
    finally:
        filler.unlink()
    assert server.request("GET", "/healthz").json() == {"status": "ok"}
    assert_clean(server)


# --- limits.max_total_size ----------------------------------------------------------------

def test_max_total_size_caps_all_drops_together_until_gc_removes_the_gone(
        capped: LiveServer) -> None:
    server = capped
    first = put(server, os.urandom(MiB), "?max_downloads=1")
    before = server.data.snapshot()
    for kind in ("put", "multipart"):
        error = refused_head_only(server, kind, 2 * MiB + PIECE)
        assert "limits.max_total_size" in error["message"]
    for kind in ("chunked put", "chunked multipart"):
        error = refused_mid_stream(server, kind, 3 * MiB)
        assert "limits.max_total_size" in error["message"]
    assert server.data.snapshot() == before
    second = put(server, os.urandom(2 * MiB - PIECE))
    # A drop out of downloads still counts until gc removes it.
    assert server.request("GET", f"/{first['slug']}").status_code == 200
    assert server.request("PUT", "/more.bin", data=os.urandom(MiB)).status_code == 507
    assert server.cli("gc").returncode == 0
    put(server, os.urandom(MiB))
    assert server.request("GET", f"/{second['slug']}").status_code == 200
    assert_clean(server)
