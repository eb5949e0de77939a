"""Faults against a real gunicorn: bodies over the size limit, clients that vanish
mid-body, a worker killed mid-upload, and ``teledrop gc`` cleaning up after it.

Proves the storage invariant under real sockets and processes: whatever the client or the
OS did, once the request is over the data dir holds no staging file, no file without its
record and no record without its file; the only exception (a SIGKILLed worker's staging
file) is removed by ``teledrop gc`` and by nothing else, and gc removes nothing more.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import (
    LAST_CHUNK,
    LiveServer,
    Snapshot,
    abort,
    chunk,
    connect,
    live_server,
    multipart,
    pid_alive,
    read_response,
    request_head,
    send_until_answered,
    wait_until,
)

pytestmark = pytest.mark.gunicorn

MiB = 1024 * 1024
LIMIT = MiB
JSON = {"Accept": "application/json"}
BOUNDARY = "live-boundary-7MA4YWxkTrZu0gW"
MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
#: More than one server read (1 MiB), so a multipart file part has reached staging.
PARTIAL = MiB + MiB // 2


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("live-limited"),
                     limits={"max_upload_size": "1MiB"}) as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("live-faults")) as running:
        yield running


def new_staging(server: LiveServer, before: frozenset[str]) -> list[Path]:
    return [p for p in server.data.staging_files() if p.name not in before]


def put_drop(server: LiveServer, content: bytes, query: str = "") -> dict[str, Any]:
    response = server.request("PUT", f"/keep.bin{query}", data=content, headers=JSON)
    assert response.status_code == 201, response.text
    return response.json()


def assert_intact(server: LiveServer, drop: dict[str, Any], content: bytes) -> None:
    record = server.data.record(drop["slug"])
    assert record is not None and record["size"] == len(content)
    assert server.data.blob_path(record["blob_id"]).read_bytes() == content
    response = server.request("GET", f"/{drop['slug']}")
    assert response.status_code == 200 and response.content == content


def assert_nothing_left(server: LiveServer, before: Snapshot) -> None:
    """No staging file, blob or record beyond ``before`` (a snapshot), once clean-up ran."""
    server.data.assert_consistent()
    after = server.data.snapshot()
    assert after.blobs == before.blobs
    assert after.records == before.records


# --- the size limit -----------------------------------------------------------------------

@pytest.mark.parametrize("method, path, content_type, length", [
    ("PUT", "/big.bin", "application/octet-stream", LIMIT + 1),
    # A form may add framing on top of the file; ten times the limit is over in any case.
    ("POST", "/", MULTIPART_TYPE, 10 * LIMIT),
])
def test_declared_length_over_the_limit_is_refused_before_any_body(
        limited: LiveServer, method: str, path: str, content_type: str, length: int) -> None:
    before = limited.data.snapshot()
    with connect(limited) as sock:
        sock.sendall(request_head(method, path, {"Content-Type": content_type,
                                                 "Content-Length": str(length),
                                                 "Accept": "application/json"}))
        # Not a byte of body is sent: only an up-front refusal can answer in time.
        status, _, body = read_response(sock, method, timeout=5)
    assert status == 413, body
    assert b'"too_large"' in body
    assert_nothing_left(limited, before)


def chunked_pieces(total: int, piece: int = 256 * 1024) -> list[bytes]:
    return [chunk(os.urandom(min(piece, total - sent))) for sent in range(0, total, piece)]


@pytest.mark.parametrize("form", [False, True], ids=["raw", "multipart"])
def test_chunked_body_growing_past_the_limit_is_413_and_leaves_nothing(
        limited: LiveServer, form: bool) -> None:
    before = limited.data.snapshot()
    headers = {"Transfer-Encoding": "chunked", "Accept": "application/json"}
    pieces = chunked_pieces(3 * LIMIT)
    if form:
        head, tail = multipart(BOUNDARY, "grow.bin")
        pieces = [chunk(head), *pieces, chunk(tail)]
        headers["Content-Type"] = MULTIPART_TYPE
    method, path = ("POST", "/") if form else ("PUT", "/grow.bin")
    with connect(limited) as sock:
        sock.sendall(request_head(method, path, headers))
        send_until_answered(sock, [*pieces, LAST_CHUNK])
        status, _, body = read_response(sock, method, timeout=10)
    assert status == 413, body
    assert b'"too_large"' in body
    assert_nothing_left(limited, before)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("form", [False, True], ids=["raw", "multipart"])
def test_upload_of_exactly_the_limit_is_accepted(limited: LiveServer, form: bool,
                                                 chunked: bool) -> None:
    content = os.urandom(LIMIT)
    if form:
        head, tail = multipart(BOUNDARY, "exact.bin")
        body, method, path = head + content + tail, "POST", "/"
        headers = {"Content-Type": MULTIPART_TYPE}
    else:
        body, method, path, headers = content, "PUT", "/exact.bin", {}
    headers["Accept"] = "application/json"
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
        payload = chunk(body) + LAST_CHUNK
    else:
        headers["Content-Length"] = str(len(body))
        payload = body
    with connect(limited) as sock:
        sock.sendall(request_head(method, path, headers) + payload)
        status, _, answer = read_response(sock, method)
    assert status == 201, answer
    drop = json.loads(answer)
    assert_intact(limited, drop, content)
    limited.data.assert_consistent()


# --- clients that vanish mid-body -------------------------------------------------------

def partial_request(kind: str) -> bytes:
    """Headers and part of a body that promises more than it sends."""
    content = os.urandom(PARTIAL)
    promised = 8 * MiB
    if kind == "raw":
        return request_head("PUT", "/cut.bin", {"Content-Length": str(promised)}) + content
    head, tail = multipart(BOUNDARY, "cut.bin")
    if kind == "multipart":
        return request_head("POST", "/", {"Content-Type": MULTIPART_TYPE,
                                          "Content-Length": str(len(head) + promised + len(tail))}
                            ) + head + content
    # Chunked: one whole chunk, then a chunk whose size line promises more than follows.
    cut = b"%x\r\n" % MiB + os.urandom(1000)
    if kind == "chunked raw":
        return request_head("PUT", "/cut.bin", {"Transfer-Encoding": "chunked"}) \
            + chunk(content) + cut
    assert kind == "chunked multipart"
    return request_head("POST", "/", {"Content-Type": MULTIPART_TYPE,
                                      "Transfer-Encoding": "chunked"}) \
        + chunk(head + content) + cut


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
@pytest.mark.parametrize("kind", ["raw", "multipart", "chunked raw", "chunked multipart"])
def test_client_vanishing_mid_body_leaves_nothing_behind(server: LiveServer, kind: str,
                                                         reset: bool) -> None:
    before = server.data.snapshot()
    log_start = len(server.log())
    sock = connect(server)
    try:
        sock.sendall(partial_request(kind))
        staged = wait_until(lambda: new_staging(server, before.staging), 5)
        assert staged, "the upload never reached staging: the test would prove nothing"
    finally:
        abort(sock, reset)
    assert wait_until(lambda: not new_staging(server, before.staging), 5), \
        f"staging file left after the client vanished: {server.data.staging_files()}"
    assert_nothing_left(server, before)
    assert server.healthy()
    # A vanished client is the client's failure, not a server error to log as one.
    assert "Traceback" not in server.log()[log_start:]


# --- a killed worker, and gc ------------------------------------------------------------

@pytest.fixture(scope="module")
def gc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("live-gc")) as running:
        yield running


def gc_removals(server: LiveServer, *args: str) -> list[str]:
    """Run ``teledrop gc``; the lines naming each removal (without the summary line)."""
    done = server.cli("gc", *args)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert lines and re.fullmatch(r"(would remove|removed) \d+ item\(s\)", lines[-1]), done.stdout
    assert lines[-1].split()[-2] == str(len(lines) - 1)
    return lines[:-1]


def test_sigkilled_worker_leaves_staging_debris_that_gc_alone_removes(
        gc_server: LiveServer) -> None:
    server = gc_server
    survivor_content = os.urandom(300_000)
    survivor = put_drop(server, survivor_content)
    before = server.data.snapshot()

    sock = connect(server)
    try:
        sock.sendall(request_head("PUT", "/slow.bin", {"Content-Length": str(64 * MiB)})
                     + os.urandom(PARTIAL))
        staged = wait_until(lambda: new_staging(server, before.staging), 5)
        assert len(staged) == 1
        debris = staged[0]
        worker = wait_until(lambda: server.worker_holding(debris), 5)
        assert worker in server.worker_pids() and worker != server.master_pid
        os.kill(worker, signal.SIGKILL)
        assert wait_until(lambda: not pid_alive(worker), 5)
    finally:
        sock.close()
    # Nothing ran in the killed worker: its staging file stays until gc.
    assert debris.exists()
    assert wait_until(server.healthy, 10), "the master did not replace the killed worker"
    assert server.data.staging_files() == [debris]
    assert server.data.snapshot().records == before.records

    dry = gc_removals(server, "--staging-older-than", "0s", "--dry-run")
    assert len(dry) == 1 and dry[0].startswith(f"would remove staging {debris.name} ")
    assert debris.exists(), "--dry-run removed something"

    removals = gc_removals(server, "--staging-older-than", "0s")
    assert len(removals) == 1 and removals[0].startswith(f"removed staging {debris.name} ")
    assert not debris.exists()
    after = server.data.snapshot()
    assert after.blobs == before.blobs and after.records == before.records
    assert_intact(server, survivor, survivor_content)
    server.data.assert_consistent()


def test_gc_keeps_an_upload_in_flight_younger_than_its_age_limit(gc_server: LiveServer) -> None:
    server = gc_server
    before = server.data.snapshot()
    content = os.urandom(PARTIAL + MiB)
    with connect(server) as sock:
        sock.sendall(request_head("PUT", "/inflight.bin", {"Content-Length": str(len(content)),
                                                           "Accept": "application/json"})
                     + content[:PARTIAL])
        assert wait_until(lambda: new_staging(server, before.staging), 5)
        assert gc_removals(server) == []  # default age: 1h
        assert new_staging(server, before.staging)
        sock.sendall(content[PARTIAL:])
        status, _, body = read_response(sock, "PUT")
    assert status == 201, body
    assert_intact(server, json.loads(body), content)
    server.data.assert_consistent()


@pytest.mark.parametrize("reason", ["expired", "exhausted"])
def test_gc_removes_a_gone_drop_and_nothing_else(gc_server: LiveServer, reason: str) -> None:
    server = gc_server
    survivor_content = os.urandom(100_000)
    survivor = put_drop(server, survivor_content)
    content = os.urandom(200_000)
    if reason == "expired":
        drop = put_drop(server, content, "?expires=1")
    else:
        drop = put_drop(server, content, "?max_downloads=1")
        assert server.request("GET", f"/{drop['slug']}").content == content
    slug = drop["slug"]
    assert wait_until(lambda: server.request("GET", f"/{slug}").status_code == 410, 5)
    record = server.data.record(slug)
    assert record is not None, "a gone drop stays until gc"
    blob = server.data.blob_path(record["blob_id"])
    assert blob.exists()

    assert gc_removals(server) == [f"removed drop {slug} ({reason})"]
    assert server.data.record(slug) is None
    assert not blob.exists()
    assert server.request("GET", f"/{slug}").status_code == 404
    assert_intact(server, survivor, survivor_content)
    server.data.assert_consistent()
