"""The fault matrix of docs/reliability.md that tests/test_live_*.py and the chain tests do
not already cover: each fault is driven for real (a gunicorn on a loopback port, a locked
SQLite file, a full tmpfs, SIGKILL of the whole server, a stalled socket) or injected by a
plugin (tests/plugins/failing_storage.py), and each ends with the same proof: the outcome
the client sees, then no staging file, no file without its record, no record without its
file, and the service still answering.

- a client vanishing at 60 seeded offsets (multipart, chunked multipart, chunked PUT),
  inside the part headers, the chunk framing and the closing boundary included;
- a metadata commit failing on a locked database → 503 and no file;
- storage failing mid-write (ENOSPC → 507, EIO → 503) and a real full filesystem;
- the whole server SIGKILLed mid-upload → restart, ``verify`` and ``gc`` on the same data;
- one custom slug wanted by 50 clients, the last downloads wanted by many;
- delete during a download, gc during uploads;
- the publish order fsync(file) → rename → fsync(dir) before the record insert;
- a stalled upload dropped after ``limits.idle_timeout`` while other uploads go on.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import math
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from teledrop import hookimpl
from teledrop.core.config import Config
from teledrop.core.drop import Drop
from teledrop.core.interfaces import BlobWriter
from teledrop.web import create_app
from teledrop.web.app import service_of
from teledrop.hosts.body import READ_SIZE
from tests.live_server import (
    LAST_CHUNK,
    DataDir,
    LiveServer,
    Snapshot,
    abort,
    chunk,
    connect,
    install_plugins,
    live_server,
    multipart,
    read_response,
    request_head,
    send_until_answered,
    wait_until,
)
from tests.http_helpers import blake3_hash
from tests.plugins import failing_storage
from tests.plugins.failing_storage import FAULT_LINE, FAULTS, Fault
from tests.small_disk import small_filesystem
from tests.support.durability import Step, record_publish_steps
from tests.support.live import assert_served, assert_stored, run_concurrently

live = pytest.mark.gunicorn

MiB = 1024 * 1024
JSON = {"Accept": "application/json"}
BOUNDARY = "reliability-b0undary-Zq81"
MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
FAILING_STORAGE = {"failing_storage": "tests.plugins.failing_storage"}


# --- shared helpers -----------------------------------------------------------------------

def upload_request(kind: str, content: bytes, path: str = "/f.bin") -> bytes:
    """A complete upload: ``put`` (Content-Length), ``chunked put``, ``multipart``."""
    if kind == "put":
        return request_head("PUT", path, {"Content-Length": str(len(content)), **JSON}) + content
    if kind == "chunked put":
        return request_head("PUT", path, {"Transfer-Encoding": "chunked", **JSON}) \
            + chunk(content) + LAST_CHUNK
    assert kind == "multipart"
    head, tail = multipart(BOUNDARY, path.lstrip("/"))
    body = head + content + tail
    return request_head("POST", "/", {"Content-Type": MULTIPART_TYPE,
                                      "Content-Length": str(len(body)), **JSON}) + body


def send_upload(server: LiveServer, kind: str, content: bytes) -> tuple[int, dict[str, Any]]:
    """Upload over a raw socket, stopping when the server answers early (a refusal need
    not read the rest); the status and the JSON answer."""
    data = upload_request(kind, content)
    with connect(server) as sock:
        send_until_answered(sock, [data[i:i + 256 * 1024] for i in range(0, len(data), 256 * 1024)])
        status, _, body = read_response(sock, "PUT" if "put" in kind else "POST", timeout=20)
    return status, json.loads(body)


def assert_unchanged(server: LiveServer, before: Snapshot) -> None:
    """Once clean-up ran: no staging file, and the same blobs and records as ``before``."""
    server.data.assert_consistent()
    after = server.data.snapshot()
    assert after.blobs == before.blobs
    assert after.records == before.records


def new_staging(server: LiveServer, before: frozenset[str]) -> list[Path]:
    return [p for p in server.data.staging_files() if p.name not in before]


def log_since(server: LiveServer, start: int) -> str:
    return server.log()[start:]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("reliability")) as running:
        yield running


# --- 1. a client vanishing at random offsets ---------------------------------------------

SEED = 20261126
CASES_PER_KIND = 20
#: The file in each cut request: over one server read, so most cuts find it staged.
CUT_CONTENT = READ_SIZE + READ_SIZE // 4


@dataclass(frozen=True)
class Region:
    name: str
    start: int
    end: int


class CutRequest:
    """An upload as labelled byte ranges, so a cut can be aimed inside any of them."""

    def __init__(self, kind: str, segments: list[tuple[str, bytes]]) -> None:
        self.kind = kind
        self.data = b"".join(data for _, data in segments)
        self.regions: list[Region] = []
        offset = 0
        for name, data in segments:
            self.regions.append(Region(name, offset, offset + len(data)))
            offset += len(data)

    def region_at(self, cut: int) -> str:
        """The region of the first byte not sent."""
        return next(r.name for r in self.regions if r.start <= cut < r.end)

    def payload_sent(self, cut: int) -> int:
        """Body bytes (not HTTP head, not chunk framing) the server can read before the cut."""
        framing = {"request head", "chunk size line", "chunk terminator", "last chunk"}
        return sum(max(0, min(cut, r.end) - r.start) for r in self.regions
                   if r.name not in framing)

    def stages_before_eof(self, cut: int) -> bool:
        """Whether the server has a staging file while the client still holds the socket:
        a raw body is staged once the head is in; a form once one read (1 MiB) is."""
        head_end = self.regions[0].end
        if self.kind == "chunked put":
            return cut >= head_end
        return self.payload_sent(cut) >= READ_SIZE

    def cuts(self, rng: random.Random, aimed: list[str], total: int,
             never: frozenset[str] = frozenset()) -> list[int]:
        """One cut inside each region named in ``aimed`` (a name may repeat), then random
        cuts anywhere but in ``never``, ``total`` in all."""
        chosen = []
        for name in aimed:
            region = rng.choice([r for r in self.regions if r.name == name])
            chosen.append(rng.randrange(region.start, region.end))
        while len(chosen) < total:
            cut = rng.randrange(1, len(self.data))
            if self.region_at(cut) not in never:
                chosen.append(cut)
        return chosen


def chunked(segments: list[tuple[str, bytes]], rng: random.Random) -> list[tuple[str, bytes]]:
    """``segments`` as a chunked body of seeded, uneven chunk sizes, each byte keeping its
    region, the framing labelled as such."""
    flat: list[tuple[str, bytes]] = []
    pending = [(name, memoryview(data)) for name, data in segments if data]
    while pending:
        size = rng.randint(1, 200 * 1024)
        pieces: list[tuple[str, bytes]] = []
        taken = 0
        while pending and taken < size:
            name, data = pending[0]
            piece = data[:size - taken]
            pieces.append((name, bytes(piece)))
            taken += len(piece)
            if len(piece) == len(data):
                pending.pop(0)
            else:
                pending[0] = (name, data[len(piece):])
        flat.append(("chunk size line", b"%x\r\n" % taken))
        flat.extend(pieces)
        flat.append(("chunk terminator", b"\r\n"))
    flat.append(("last chunk", LAST_CHUNK))
    return flat


def multipart_segments(content: bytes) -> list[tuple[str, bytes]]:
    head, tail = multipart(BOUNDARY, "cut.bin")
    closing_delimiter = tail[:-2]  # "\r\n--BOUNDARY--"; the CRLF after it is optional
    return [("part headers", head), ("file", content), ("closing boundary", closing_delimiter),
            ("epilogue", tail[-2:])]


def cut_request(kind: str, rng: random.Random) -> CutRequest:
    content = rng.randbytes(CUT_CONTENT)
    if kind == "multipart":
        body = multipart_segments(content)
        length = sum(len(data) for _, data in body)
        head = request_head("POST", "/", {"Content-Type": MULTIPART_TYPE,
                                          "Content-Length": str(length)})
        return CutRequest(kind, [("request head", head), *body])
    if kind == "chunked multipart":
        head = request_head("POST", "/", {"Content-Type": MULTIPART_TYPE,
                                          "Transfer-Encoding": "chunked"})
        return CutRequest(kind, [("request head", head),
                                 *chunked(multipart_segments(content), rng)])
    assert kind == "chunked put"
    head = request_head("PUT", "/cut.bin", {"Transfer-Encoding": "chunked"})
    return CutRequest(kind, [("request head", head), *chunked([("file", content)], rng)])


#: Regions each kind's cuts are aimed at before the random ones.
AIMED = {
    "multipart": ["request head", "part headers", "part headers", "part headers",
                  "closing boundary", "closing boundary", "closing boundary",
                  "closing boundary"],
    "chunked multipart": ["request head", "part headers", "part headers",
                          "closing boundary", "closing boundary", "closing boundary",
                          "chunk size line", "chunk size line", "chunk terminator",
                          "chunk terminator", "last chunk", "last chunk", "epilogue"],
    "chunked put": ["request head", "chunk size line", "chunk size line", "chunk size line",
                    "chunk terminator", "chunk terminator", "last chunk", "last chunk",
                    "last chunk"],
}
#: A form whose close-delimiter arrived is complete (RFC 2046: the CRLF after it is
#: optional), so a cut there is a finished upload, not a vanished client.
NEVER = {"multipart": frozenset({"epilogue"})}


def vanish_at(server: LiveServer, request: CutRequest, cut: int, reset: bool) -> list[str]:
    """Send ``request`` up to ``cut``, vanish (FIN or RST), wait for the clean-up; every
    way the outcome breaks the invariants."""
    before = server.data.snapshot()
    answered = len(server.access_lines())
    problems = []
    sock = connect(server)
    try:
        sock.sendall(request.data[:cut])
        if request.stages_before_eof(cut) and \
                not wait_until(lambda: new_staging(server, before.staging), 5, 0.01):
            problems.append("the upload never reached staging")
    finally:
        abort(sock, reset)
    if not wait_until(lambda: not server.data.staging_files(), 5, 0.01):
        problems.append(f"staging left: {server.data.staging_files()}")
    if cut >= request.regions[0].end:  # the head was complete: the app must answer
        lines = wait_until(lambda: server.access_lines()[answered:], 5, 0.01)
        statuses = [line["status"] for line in lines]
        if len(statuses) != 1 or not 400 <= statuses[0] < 500:
            problems.append(f"answered {statuses}, expected one 4xx")
    after = server.data.snapshot()
    if after.blobs != before.blobs or after.records != before.records:
        problems.append("a blob or record changed")
    return problems


@live
@pytest.mark.parametrize("kind", list(AIMED))
def test_client_vanishing_at_seeded_offsets_leaves_nothing(server: LiveServer,
                                                           kind: str) -> None:
    rng = random.Random(f"{SEED}-{kind}")
    request = cut_request(kind, rng)
    cuts = request.cuts(rng, AIMED[kind], CASES_PER_KIND, NEVER.get(kind, frozenset()))
    log_start = len(server.log())
    failures = []
    for i, cut in enumerate(cuts):
        problems = vanish_at(server, request, cut, reset=bool(i % 2))
        failures += [f"cut at {cut} ({request.region_at(cut)}, {'rst' if i % 2 else 'fin'}): "
                     f"{p}" for p in problems]
    log = log_since(server, log_start)
    assert failures == [], "\n".join(failures)
    assert "Traceback" not in log, log
    assert server.healthy()
    server.data.assert_consistent()


# --- 2. the metadata commit failing on a locked database ---------------------------------

#: Short, so a locked database answers 503 quickly instead of after the 5 s default.
BUSY_TIMEOUT_MS = 300


@pytest.fixture(scope="module")
def lockable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # One worker: once /healthz answers, no worker is still opening the database (see
    # test_a_worker_booting_while_the_database_is_locked_keeps_the_server_up).
    with live_server(tmp_path_factory.mktemp("locked-db"), server={"workers": 1},
                     plugins={"sqlite_meta": {"busy_timeout": BUSY_TIMEOUT_MS}}) as running:
        yield running


@contextmanager
def database_locked(db_path: Path) -> Iterator[None]:
    """Another process's write transaction on the database, held until the block ends:
    every writer waits ``busy_timeout``, then gets SQLite's "database is locked". (Readers
    go on: WAL.) Unlike chmod, this stops root too."""
    holder = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        holder.close()  # rolls the empty transaction back


@live
@pytest.mark.parametrize("kind", ["multipart", "put"])
def test_upload_on_a_locked_database_is_503_and_leaves_no_file(lockable: LiveServer,
                                                               kind: str) -> None:
    server = lockable
    content = os.urandom(2 * MiB)
    before = server.data.snapshot()
    with database_locked(server.data.db_path):
        status, body = send_upload(server, kind, content)
        assert status == 503, body
        assert body["error"]["code"] == "metadata_unavailable"
        assert "locked" in body["error"]["message"]
        assert_unchanged(server, before)  # the published blob was removed again
        assert server.healthy()  # reads still work: the service is up
    status, body = send_upload(server, kind, content)
    assert status == 201, body
    assert_served(server, body["slug"], content)
    server.data.assert_consistent()


@live
def test_download_and_delete_on_a_locked_database_are_503_and_change_nothing(
        lockable: LiveServer) -> None:
    server = lockable
    content = os.urandom(300_000)
    drop = server.request("PUT", "/kept.bin", data=content, headers=JSON).json()
    slug, token = drop["slug"], drop["delete_token"]
    once = server.request("PUT", "/once.bin?max_downloads=1", data=content,
                          headers=JSON).json()["slug"]
    before = server.data.snapshot()
    with database_locked(server.data.db_path):
        # Counting a download is a write: refused, and not counted.
        assert server.request("GET", f"/{once}").status_code == 503
        deleted = server.request("DELETE", f"/{slug}", headers={"X-Delete-Token": token, **JSON})
        assert deleted.status_code == 503, deleted.text
        assert deleted.json()["error"]["code"] == "metadata_unavailable"
    assert server.data.snapshot() == before
    assert server.data.record(once)["downloads"] == 0
    assert_served(server, once, content)
    assert server.request("GET", f"/{once}").status_code == 410
    assert server.request("DELETE", f"/{slug}", headers={"X-Delete-Token": token}).status_code == 204
    server.data.assert_consistent()


@live
def test_a_worker_booting_while_the_database_is_locked_keeps_the_server_up(
        tmp_path: Path) -> None:
    # A worker replaced (after a crash, an OOM kill, max_requests) while a backup or a gc
    # holds the database must not take the whole server down with it.
    with live_server(tmp_path, plugins={"sqlite_meta": {"busy_timeout": BUSY_TIMEOUT_MS}}) \
            as server:
        # healthy means one worker answers; the other may still be forking
        assert wait_until(lambda: len(server.worker_pids()) == 2, 10), server.log()[-1500:]
        workers = server.worker_pids()
        with database_locked(server.data.db_path):
            os.kill(workers[0], signal.SIGKILL)
            replaced = wait_until(lambda: set(server.worker_pids()) - set(workers), 10)
            assert replaced, "the master did not replace the killed worker"
            # Long enough for the new worker to load the app and wait out busy_timeout.
            time.sleep(2 + BUSY_TIMEOUT_MS / 1000)
            assert server.proc.poll() is None, \
                f"the server shut down while the database was locked:\n{server.log()[-1500:]}"
        assert wait_until(server.healthy, 10)
        # the replacement may still be loading the app once the other worker answers
        assert wait_until(lambda: len(server.worker_pids()) == 2, 10), server.log()[-1500:]
        response = server.request("PUT", "/after.bin", data=b"after the lock", headers=JSON)
        assert response.status_code == 201, response.text


# --- 3. storage failing mid-write ---------------------------------------------------------

#: Bytes a faulty upload writes before the disk fails: more than one read, less than the file.
FAULT_AFTER = READ_SIZE + 12_345
STORAGE_FAULTS = [("ENOSPC", 507, "storage_full"), ("EIO", 503, "storage_unavailable")]


@pytest.fixture
def failing_app(make_config: Callable[..., Config], tmp_path: Path,
                data_dir: Path) -> Iterator[tuple[Flask, Path]]:
    """An app on the failing_storage plugin (local_storage underneath) and its control file."""
    control = tmp_path / "fault.json"
    config = make_config(storage={"plugin": "failing_storage"},
                         plugins={"failing_storage": {"root": str(data_dir / "files"),
                                                      "control": str(control)}})
    app = create_app(config, [failing_storage])
    app.testing = True
    FAULTS.clear()
    yield app, control
    service_of(app).close()


def stored_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "files").rglob("*") if p.is_file())


@pytest.mark.parametrize("error, status, code", STORAGE_FAULTS)
@pytest.mark.parametrize("kind", ["multipart", "put"])
def test_storage_failing_mid_write_removes_the_partial_file(
        failing_app: tuple[Flask, Path], data_dir: Path, kind: str, error: str, status: int,
        code: str) -> None:
    app, control = failing_app
    client = app.test_client()
    kept = client.put("/kept.bin", data=b"kept", headers=JSON).get_json()
    kept_files = stored_files(data_dir)
    Fault(error, FAULT_AFTER).write(control)
    content = os.urandom(3 * MiB)
    if kind == "put":
        response = client.put("/f.bin", data=content, headers=JSON)
    else:
        response = client.post("/", data={"file": (io.BytesIO(content), "f.bin")}, headers=JSON)
    assert response.status_code == status, response.data
    assert response.get_json()["error"]["code"] == code
    (fault,) = FAULTS
    # The partial bytes were really on disk when the write failed, and are gone now.
    assert fault.error == error and fault.written == fault.size_on_disk == FAULT_AFTER
    assert not os.path.exists(fault.staging_path)
    assert stored_files(data_dir) == kept_files
    assert [d.slug for d in service_of(app).metadata.iter_drops()] == [kept["slug"]]
    control.unlink()  # the disk recovers: so does the service
    response = client.put("/after.bin", data=content, headers=JSON)
    assert response.status_code == 201
    assert client.get(f"/{response.get_json()['slug']}").data == content


@pytest.mark.parametrize("after", [0, 1, READ_SIZE - 1, READ_SIZE])
def test_storage_full_at_any_byte_count_is_507(failing_app: tuple[Flask, Path],
                                               data_dir: Path, after: int) -> None:
    app, control = failing_app
    Fault("ENOSPC", after).write(control)
    response = app.test_client().put("/f.bin", data=os.urandom(READ_SIZE + 1), headers=JSON)
    assert response.status_code == 507, response.data
    assert FAULTS[-1].size_on_disk == after
    assert stored_files(data_dir) == []
    assert list(service_of(app).metadata.iter_drops()) == []


@pytest.fixture(scope="module")
def failing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    base = tmp_path_factory.mktemp("failing-storage")
    control = base / "fault.json"
    env = install_plugins(base / "site", FAILING_STORAGE)
    with live_server(base, env=env, storage={"plugin": "failing_storage"},
                     plugins={"failing_storage": {"root": str(base / "data" / "files"),
                                                  "control": str(control)}}) as running:
        yield running, control


@live
@pytest.mark.parametrize("error, status, code", STORAGE_FAULTS)
@pytest.mark.parametrize("kind", ["multipart", "put", "chunked put"])
def test_storage_failing_mid_write_under_gunicorn(failing_server: tuple[LiveServer, Path],
                                                  kind: str, error: str, status: int,
                                                  code: str) -> None:
    server, control = failing_server
    before = server.data.snapshot()
    log_start = len(server.log())
    Fault(error, FAULT_AFTER).write(control)
    try:
        answer, body = send_upload(server, kind, os.urandom(4 * MiB))
    finally:
        control.unlink()
    assert answer == status, body
    assert body["error"]["code"] == code
    line = re.search(FAULT_LINE.format(error=error, written=FAULT_AFTER,
                                       name=r"([0-9a-f]{32}\.part)"), log_since(server, log_start))
    assert line, "the fault never fired: the test would prove nothing"
    assert not (server.data.files / "staging" / line.group(1)).exists()
    assert_unchanged(server, before)
    status, body = send_upload(server, kind, b"after the fault")
    assert status == 201, body
    assert "Traceback" not in log_since(server, log_start)


def files_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


@live
def test_full_filesystem_is_507_and_keeps_nothing_of_the_upload(tmp_path: Path) -> None:
    disk = 4 * MiB
    files = tmp_path / "data" / "files"
    with ExitStack() as stack:
        mounted = stack.enter_context(small_filesystem(files, disk))
        sections: dict[str, Any] = {}
        env = None
        if not mounted:  # no tmpfs here: the same disk size, enforced by a capped backend
            env = install_plugins(tmp_path / "site", FAILING_STORAGE)
            sections = {"storage": {"plugin": "failing_storage"},
                        "plugins": {"failing_storage": {"root": str(files), "capacity": disk}}}
        # The disk itself says ENOSPC here: no free-space margin refuses anything first.
        server = stack.enter_context(live_server(tmp_path, env=env,
                                                 limits={"min_free_space": "0"}, **sections))
        if mounted:
            assert os.statvfs(files).f_blocks * os.statvfs(files).f_frsize == disk
        first = os.urandom(MiB)
        status, kept = send_upload(server, "put", first)
        assert status == 201, kept
        for kind in ("multipart", "put", "chunked put"):
            before = server.data.snapshot()
            status, body = send_upload(server, kind, os.urandom(6 * MiB))
            assert status == 507, body
            assert body["error"]["code"] == "storage_full"
            assert_unchanged(server, before)
            assert files_size(files) == MiB
        # The space the failed uploads took is free again: 1 + 2 MiB fit on 4 MiB.
        second = os.urandom(2 * MiB)
        status, body = send_upload(server, "multipart", second)
        assert status == 201, body
        assert_served(server, kept["slug"], first)
        assert_served(server, body["slug"], second)
        server.data.assert_consistent()
        assert "Traceback" not in server.log()


# --- 4. the whole server SIGKILLed mid-upload --------------------------------------------

#: Past one server read, so a form's file part has reached staging.
PARTIAL = READ_SIZE + READ_SIZE // 2


def in_flight(server: LiveServer, kind: str) -> socket.socket:
    """A socket whose upload promised far more than it has sent so far."""
    content = os.urandom(PARTIAL)
    promised = 64 * MiB
    if kind == "put":
        head = request_head("PUT", "/cut.bin", {"Content-Length": str(promised)})
    elif kind == "chunked put":
        head = request_head("PUT", "/cut.bin", {"Transfer-Encoding": "chunked"})
        content = chunk(content)
    else:
        start, _ = multipart(BOUNDARY, "cut.bin")
        head = request_head("POST", "/", {"Content-Type": MULTIPART_TYPE,
                                          "Content-Length": str(promised)}) + start
    sock = connect(server)
    sock.sendall(head + content)
    return sock


class Uploader(threading.Thread):
    """Small uploads one after another until stopped: some are always mid-publish or
    mid-insert. Keeps the slug and content of every upload answered 201."""

    def __init__(self, server: LiveServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.stop = threading.Event()
        self.created: dict[str, bytes] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            content = os.urandom(random.randint(0, 400_000))
            try:
                response = self.server.request("PUT", "/busy.bin", data=content, headers=JSON,
                                               timeout=10)
            except requests.RequestException:
                continue  # the server died under this request
            if response.status_code == 201:
                self.created[response.json()["slug"]] = content


def verify_lines(server: LiveServer) -> dict[str, str]:
    """``teledrop verify``: slug -> status; asserts it found nothing wrong."""
    done = server.cli("verify")
    assert done.returncode == 0, done.stdout + done.stderr
    found = {slug: status for status, slug, *_ in map(str.split, done.stdout.splitlines())}
    assert set(found.values()) <= {"ok"}, done.stdout
    return found


@live
@pytest.mark.alone  # the busy uploader must get through before the kill
def test_whole_server_sigkilled_mid_upload_restarts_clean(tmp_path: Path) -> None:
    kept: dict[str, bytes] = {}
    with live_server(tmp_path) as first:
        for content in (b"", os.urandom(1000), os.urandom(3 * MiB)):
            response = first.request("PUT", "/kept.bin", data=content, headers=JSON)
            kept[response.json()["slug"]] = content
        busy = Uploader(first)
        busy.start()
        sockets = []
        try:
            before = first.data.snapshot().staging
            sockets = [in_flight(first, kind) for kind in ("put", "chunked put", "multipart")]
            assert wait_until(lambda: len(new_staging(first, before)) >= 3, 5)
            time.sleep(0.2)  # let the busy uploader be anywhere in its upload
            first.kill()
        finally:
            busy.stop.set()
            busy.join(15)
            for sock in sockets:
                sock.close()
        assert not busy.is_alive()
    data = DataDir(tmp_path / "data")
    debris = {p.name for p in data.staging_files()}
    assert len(debris) >= 3, "the in-flight uploads left no staging file"
    # Whatever was mid-publish when the server died: a blob without its record at worst.
    orphans = set(data.blob_files()) - {r["blob_id"] for r in data.records()}
    assert not [p for p in data.problems()
                if not p.startswith(("staging debris", "file without record"))]

    with live_server(tmp_path) as second:
        assert second.healthy()
        created = {**kept, **busy.created}
        assert len(busy.created) > 0, "the busy uploader never got through"
        # Every upload that was answered 201 survived, byte for byte: no published file
        # is partial.
        found = verify_lines(second)
        assert set(created) <= set(found)
        for slug, content in created.items():
            assert_served(second, slug, content)
        # The restart itself removed nothing, and nothing else did either.
        assert {p.name for p in data.staging_files()} == debris
        done = second.cli("gc", "--staging-older-than", "0s")
        assert done.returncode == 0, done.stderr
        removed = done.stdout.splitlines()[:-1]
        assert sorted(line.split()[2] for line in removed) == sorted(debris | orphans)
        assert all(line.startswith(("removed staging", "removed orphan")) for line in removed)
        second.data.assert_consistent()
        assert set(verify_lines(second)) == set(found)
        response = second.request("PUT", "/after.bin", data=b"after restart", headers=JSON)
        assert response.status_code == 201


# --- 5. races -----------------------------------------------------------------------------

@live
def test_the_same_custom_slug_from_50_clients_across_two_workers_has_one_winner(
        server: LiveServer) -> None:
    n = 50
    assert len(server.worker_pids()) == 2
    contents = [os.urandom(200_000) + bytes([i]) for i in range(n)]
    before = server.data.snapshot()

    def upload(i: int) -> requests.Response:
        if i % 2:
            return server.request("PUT", "/r.bin?slug=fifty-way-race", data=contents[i],
                                  headers=JSON)
        return server.request("POST", "/", headers=JSON,
                              files=[("file", ("r.bin", contents[i])),
                                     ("slug", (None, "fifty-way-race"))])

    responses = run_concurrently(n, upload)
    assert sorted(r.status_code for r in responses) == [201] + [409] * (n - 1)
    won = next(i for i, r in enumerate(responses) if r.status_code == 201)
    assert_stored(server, responses[won].json(), contents[won])
    after = server.data.snapshot()
    assert set(after.records) - set(before.records) == {"fifty-way-race"}
    assert len(after.blobs - before.blobs) == 1
    server.data.assert_consistent()


@live
def test_the_last_downloads_go_to_exactly_max_downloads_clients(server: LiveServer) -> None:
    limit, clients = 3, 30
    content = os.urandom(2 * MiB)
    drop = server.request("PUT", f"/n.bin?max_downloads={limit}", data=content,
                          headers=JSON).json()
    responses = run_concurrently(clients, lambda i: server.request("GET", f"/{drop['slug']}"))
    served = [r for r in responses if r.status_code == 200]
    assert sorted(r.status_code for r in responses) == [200] * limit + [410] * (clients - limit)
    assert all(r.content == content for r in served)
    assert server.data.record(drop["slug"])["downloads"] == limit
    server.data.assert_consistent()


def small_receive_buffer_socket(server: LiveServer) -> socket.socket:
    """A client socket with a tiny receive buffer: the server cannot push a large file
    ahead into the kernel (loopback buffers autotune up to tens of MiB otherwise)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", server.port))
    return sock


@live
def test_delete_during_a_download_lets_it_finish_then_the_file_is_gone(
        server: LiveServer) -> None:
    content = os.urandom(32 * MiB)
    drop = server.request("PUT", "/big.bin", data=content, headers=JSON).json()
    record = server.data.record(drop["slug"])
    blob = server.data.blob_path(record["blob_id"])
    downloads = []
    for _ in range(2):
        sock = small_receive_buffer_socket(server)
        sock.sendall(request_head("GET", f"/{drop['slug']}", {}))
        response = http.client.HTTPResponse(sock, method="GET")
        response.begin()
        assert response.status == 200
        downloads.append((sock, response, response.read(MiB)))
    deleted = server.request("DELETE", f"/{drop['slug']}",
                             headers={"X-Delete-Token": drop["delete_token"]})
    assert deleted.status_code == 204
    assert not blob.exists() and server.data.record(drop["slug"]) is None
    # The downloads in flight keep reading the unlinked file (the server still sends from
    # its open descriptor): every byte, in order, none from anywhere else.
    for sock, response, start in downloads:
        with closing(sock):
            rest = response.read()
        assert hashlib.sha256(start + rest).digest() == hashlib.sha256(content).digest()
    assert server.request("GET", f"/{drop['slug']}").status_code == 404
    assert server.request("HEAD", f"/{drop['slug']}").status_code == 404
    server.data.assert_consistent()


UPLOADS_DURING_GC = 20
UPLOAD_SIZE = 4 * MiB
#: Pieces of :func:`slow_body` per upload, and per 1 MiB (the server writes its staging
#: file every 1 MiB).
PIECES, PIECES_PER_WRITE = 16, 4


def slow_body(content: bytes, form: bool, piece: int = UPLOAD_SIZE // PIECES,
              pause: float = 0.1) -> Iterator[bytes]:
    """``content`` sent in pieces with pauses: an upload that lasts over a second."""
    head, tail = multipart(BOUNDARY, "slow.bin") if form else (b"", b"")
    if head:
        yield head
    for i in range(0, len(content), piece):
        time.sleep(pause)
        yield content[i:i + piece]
    if tail:
        yield tail


@live
@pytest.mark.alone  # paced by one gc run's time, which must not change mid-test
def test_gc_running_in_a_loop_during_uploads_takes_only_what_is_gone(
        server: LiveServer) -> None:
    # What earlier tests left gone is collected first, so every removal below is named.
    before = time.monotonic()
    assert server.cli("gc").returncode == 0
    # Paced by how long one gc run takes on this machine now: each upload lasts its age
    # limit plus two runs and a second, so runs start while uploads older than the limit
    # are in flight; and each writes its file at a quarter of the upload's span, well within
    # the limit, which keeps it young.
    gc_seconds = time.monotonic() - before
    gc_age = math.ceil(2 * gc_seconds + 1)
    pause = (gc_age + 2 * gc_seconds + 1) / PIECES
    assert PIECES_PER_WRITE * pause < gc_age
    expired = [server.request("PUT", "/brief.bin?expires=1", data=os.urandom(10_000),
                              headers=JSON).json()["slug"] for _ in range(5)]
    expired_at = time.monotonic() + 1
    contents = [os.urandom(UPLOAD_SIZE) for _ in range(UPLOADS_DURING_GC)]
    done = threading.Event()
    runs: list[tuple[float, subprocess.CompletedProcess[str]]] = []

    def gc_loop() -> None:
        while not done.is_set() or not any(start > expired_at for start, _ in runs):
            runs.append((time.monotonic(),
                         server.cli("gc", "--staging-older-than", f"{gc_age}s")))

    def upload(i: int) -> requests.Response:
        form = bool(i % 2)
        headers = {**JSON, **({"Content-Type": MULTIPART_TYPE} if form else {})}
        method, path = ("POST", "/") if form else ("PUT", f"/slow{i}.bin")
        return server.request(method, path, data=slow_body(contents[i], form, pause=pause),
                              headers=headers)

    collector = threading.Thread(target=gc_loop)
    collector.start()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(UPLOADS_DURING_GC) as pool:
            responses = list(pool.map(upload, range(UPLOADS_DURING_GC)))
    finally:
        finished = time.monotonic()
        done.set()
        collector.join(60)
    assert [r.status_code for r in responses] == [201] * UPLOADS_DURING_GC, \
        [r.text for r in responses if r.status_code != 201]
    # gc ran while uploads older than its age limit were still in flight.
    assert any(started + gc_age < start < finished - 0.2 for start, _ in runs), \
        (started, finished, [start for start, _ in runs])
    removed = []
    for _, run in runs:
        assert run.returncode == 0, run.stderr
        removed += run.stdout.splitlines()[:-1]
    assert sorted(removed) == sorted(f"removed drop {slug} (expired)" for slug in expired)
    for response, content in zip(responses, contents):
        drop = response.json()
        assert drop["hash"] == blake3_hash(content)
        assert_served(server, drop["slug"], content)
    records = server.data.snapshot().records
    assert not set(expired) & set(records)
    server.data.assert_consistent()


# --- 6. durability: the order of the publish ---------------------------------------------

class CommitProbe:
    """A wrapper inside the chain (teledrop's publish is outside it, the record insert
    inside): notes when the chain reaches it and when the commit returned."""

    teledrop_plugin_name = "commit_probe"

    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps

    @hookimpl(specname="teledrop_commit_drop", wrapper=True)
    def probe(self, drop: Drop, blob: BlobWriter) -> Generator[None, Any, Any]:
        self.steps.append(("inner wrapper", os.path.exists(blob.final_path)))
        result = yield
        self.steps.append(("committed", drop.slug))
        return result


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[Step]:
    """Every os.fsync and os.rename, and the chain's own steps, in order."""
    return record_publish_steps(monkeypatch)


@pytest.mark.parametrize("fanout", ["new", "existing"])
@pytest.mark.parametrize("kind", ["multipart", "put"])
def test_publish_is_fsync_file_rename_fsync_dir_then_the_record(
        make_app: Callable[..., Flask], data_dir: Path, steps: list[Step], kind: str,
        fanout: str) -> None:
    app = make_app(plugins=[CommitProbe(steps)])
    metadata = service_of(app).metadata
    real_insert = metadata.insert
    blobs = data_dir / "files" / "blobs"
    content = os.urandom(100_000)
    if fanout == "existing":
        for i in range(256):
            (blobs / f"{i:02x}").mkdir()

    def insert(drop: Drop) -> None:
        final = blobs / drop.blob_id[:2] / drop.blob_id
        staged = data_dir / "files" / "staging" / f"{drop.blob_id}.part"
        steps.append(("insert", (drop.slug, final.read_bytes() == content, staged.exists())))
        real_insert(drop)

    metadata.insert = insert  # type: ignore[method-assign]
    client = app.test_client()
    if kind == "put":
        response = client.put("/d.bin", data=content, headers=JSON)
    else:
        response = client.post("/", data={"file": (io.BytesIO(content), "d.bin")}, headers=JSON)
    assert response.status_code == 201
    drop = response.get_json()
    blob = metadata.get(drop["slug"]).blob_id
    final = blobs / blob[:2] / blob
    file_inode, fanout_inode = final.stat().st_ino, final.parent.stat().st_ino
    expected: list[Step] = [("fsync file", file_inode)]
    if fanout == "new":  # the new fan-out directory's own entry is made durable first
        expected.append(("fsync dir", blobs.stat().st_ino))
    expected += [("rename", file_inode), ("fsync dir", fanout_inode),
                 ("inner wrapper", True), ("insert", (drop["slug"], True, False)),
                 ("committed", drop["slug"])]
    assert steps == expected


@pytest.mark.parametrize("setting, value", [(None, 2), ("full", 2), ("normal", 1),
                                            ("extra", 3), ("off", 0)])
def test_sqlite_synchronous_is_configurable(make_config: Callable[..., Config],
                                            data_dir: Path, setting: str | None,
                                            value: int) -> None:
    table: dict[str, Any] = {"path": str(data_dir / "teledrop.db")}
    if setting is not None:
        table["synchronous"] = setting
    app = create_app(make_config(plugins={"sqlite_meta": table}))
    try:
        metadata = service_of(app).metadata
        assert metadata.db.execute_sql("PRAGMA synchronous").fetchone()[0] == value
    finally:
        service_of(app).close()


# --- 7. slow clients ----------------------------------------------------------------------

IDLE_TIMEOUT = 3


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("idle"), server={"workers": 1, "threads": 4},
                     limits={"idle_timeout": f"{IDLE_TIMEOUT}s"}) as running:
        yield running


@live
@pytest.mark.alone  # a window of one second either side of the idle timeout
def test_stalled_uploads_are_dropped_and_cleaned_while_others_proceed(
        impatient: LiveServer) -> None:
    server = impatient
    before = server.data.snapshot()
    log_start = len(server.log())
    answered = len(server.access_lines())
    stalled = [in_flight(server, kind) for kind in ("put", "multipart")]
    try:
        staged = wait_until(lambda: len(new_staging(server, before.staging)) == 2 and
                            new_staging(server, before.staging), 5)
        assert staged, "the stalled uploads never reached staging"
        stalled_since = time.monotonic()
        # One worker, two of its four threads held: the others still take uploads.
        contents = [os.urandom(MiB) + bytes([i]) for i in range(4)]
        with ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(lambda c: server.request("PUT", "/ok.bin", data=c,
                                                               headers=JSON, timeout=10),
                                      contents))
        assert [r.status_code for r in responses] == [201] * 4
        # Well inside the stalled uploads' timeout (their clock started before ours did).
        assert time.monotonic() - stalled_since < IDLE_TIMEOUT - 1
        assert all(path.exists() for path in staged), "dropped before its idle timeout"
        gone = wait_until(lambda: not any(path.exists() for path in staged),
                          IDLE_TIMEOUT + 5)
        assert gone, "a stalled upload outlived its idle timeout"
        assert time.monotonic() - stalled_since >= IDLE_TIMEOUT - 1
        for sock in stalled:  # the server answered and let go of the connection
            sock.settimeout(5)
            status, _, _ = read_response(sock, "PUT")
            assert status == 408
    finally:
        for sock in stalled:
            abort(sock, reset=True)
    for response, content in zip(responses, contents):
        assert_served(server, response.json()["slug"], content)
    statuses = sorted(line["status"] for line in server.access_lines()[answered:]
                      if line["method"] in ("PUT", "POST"))
    assert statuses[:4] == [201] * 4 and len(statuses) == 6
    assert statuses[4:] == [408, 408], statuses
    assert "Traceback" not in log_since(server, log_start)
    server.data.assert_consistent()
