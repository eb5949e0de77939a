"""``limits.idle_timeout`` on every connection of a real gunicorn (``teledrop.worker``).

Each kind of stalled client is opened on more sockets than the worker has threads: a
connection that sends nothing, one byte of a request head then silence, a kept-alive
connection that never sends its next request (or one byte of it), a password form
(``POST /SLUG``) or an owner's ``PATCH`` whose body stops, and a download whose client
stops reading (through ``sendfile`` and without it). ``/healthz`` must still answer within
a bound derived from the timeout, each stalled connection must be closed by the server,
and nothing may be logged as a server error. A client that is slow but keeps sending is
never cut off.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from teledrop.core.config import Config
from teledrop.server import gunicorn_settings
from tests.live_server import LiveServer, connect, live_server, read_response, request_head, \
    wait_until

#: Every bound here is a few idle timeouts of 2 s: no other test runs beside these.
pytestmark = [pytest.mark.gunicorn, pytest.mark.alone]

IDLE_TIMEOUT = 2
THREADS = 2
#: More stalled sockets than the worker has threads.
STALLED = THREADS + 1
KEEPALIVE = gunicorn_settings(Config())["keepalive"]
#: A stalled connection holds its thread for one idle timeout at most, so /healthz (queued
#: behind at most one round of them) answers within two.
HEALTHZ_BOUND = 2 * IDLE_TIMEOUT
#: A stalled connection is closed by the server within this (a kept-alive one when its
#: keep-alive ends; the rest after their idle timeout, queued behind one round).
CLOSE_BOUND = KEEPALIVE + 2 * IDLE_TIMEOUT + 2
TOKEN = "idle-owner-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Far more than the kernel buffers of a loopback connection hold.
BIG = 48 * 1024 * 1024
SMALL_RCVBUF = 4096


def start(base: Path, env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    with live_server(base, env=env, server={"workers": 1, "threads": THREADS},
                     auth={"upload_tokens": [TOKEN]},
                     limits={"idle_timeout": f"{IDLE_TIMEOUT}s"}) as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from start(tmp_path_factory.mktemp("idle-timeouts"))


@pytest.fixture(scope="module")
def no_sendfile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """gunicorn writes file responses in pieces instead of with ``sendfile``."""
    yield from start(tmp_path_factory.mktemp("idle-no-sendfile"), env={"SENDFILE": "0"})


def upload(server: LiveServer, content: bytes) -> str:
    response = server.request("PUT", "/f.bin", data=content,
                              headers={**AUTH, "Accept": "application/json"})
    assert response.status_code == 201, response.text
    return response.json()["slug"]


@pytest.fixture(scope="module")
def small_slug(server: LiveServer) -> str:
    return upload(server, b"small drop")


def big_slug(server: LiveServer) -> str:
    return upload(server, os.urandom(1024) * (BIG // 1024))


# --- the stalled clients ------------------------------------------------------------------

def silent(server: LiveServer, slug: str) -> socket.socket:
    return connect(server)


def head_byte(server: LiveServer, slug: str) -> socket.socket:
    sock = connect(server)
    sock.sendall(b"G")
    return sock


def kept_alive(server: LiveServer, slug: str, then: bytes = b"") -> socket.socket:
    sock = connect(server)
    sock.sendall(request_head("GET", "/healthz", {}))
    status, _, _ = read_response(sock, "GET")
    assert status == 200
    sock.sendall(then)
    return sock


def kept_alive_head_byte(server: LiveServer, slug: str) -> socket.socket:
    return kept_alive(server, slug, then=b"G")


def password_form(server: LiveServer, slug: str) -> socket.socket:
    sock = connect(server)
    sock.sendall(request_head("POST", f"/{slug}", {
        "Content-Type": "application/x-www-form-urlencoded", "Content-Length": "100",
        "Accept": "text/html"}) + b"password=ab")
    return sock


def owner_patch(server: LiveServer, slug: str) -> socket.socket:
    sock = connect(server)
    sock.sendall(request_head("PATCH", f"/api/drops/{slug}", {
        **AUTH, "Content-Type": "application/json", "Content-Length": "100"}) + b'{"title"')
    return sock


def download(server: LiveServer, slug: str) -> socket.socket:
    """A GET of a drop far larger than the socket buffers, never read."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RCVBUF)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(request_head("GET", f"/{slug}", {}))
    return sock


Opener = Callable[[LiveServer, str], socket.socket]
WITHOUT_BODY: dict[str, Opener] = {
    "silent connection": silent,
    "one byte of head": head_byte,
    "kept alive, nothing more": kept_alive,
    "kept alive, one byte of the next head": kept_alive_head_byte,
    "password form body": password_form,
    "owner PATCH body": owner_patch,
}


# --- what the server must do ------------------------------------------------------------

def healthz_seconds(server: LiveServer) -> float:
    """How long /healthz took to answer 200; fails past the bound."""
    started = time.monotonic()
    try:
        response = server.request("GET", "/healthz", timeout=HEALTHZ_BOUND + 5)
    except requests.Timeout:
        pytest.fail(f"/healthz did not answer within {HEALTHZ_BOUND + 5}s")
    took = time.monotonic() - started
    assert response.status_code == 200
    return took


def read_until_closed(sock: socket.socket, within: float) -> bytes:
    """Everything the server sends until it closes the connection (FIN or RST); fails if
    it is still open after ``within`` seconds."""
    deadline = time.monotonic() + within
    received = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"the server kept a stalled connection open past {within}s")
        sock.settimeout(remaining)
        try:
            data = sock.recv(1024 * 1024)
        except ConnectionResetError:
            return bytes(received)
        except TimeoutError:
            continue
        if not data:
            return bytes(received)
        if len(received) < 64 * 1024:  # the head of what came is enough to judge it
            received += data


def assert_stalled_clients_cost_no_thread(server: LiveServer, opener: Opener, slug: str,
                                          settled: Callable[[], bool] = lambda: True
                                          ) -> list[bytes]:
    """Open STALLED clients, time /healthz behind them, then (once ``settled``: reading a
    download would unstall it) read what each got until the server closed it."""
    log_start = len(server.log())
    sockets = [opener(server, slug) for _ in range(STALLED)]
    try:
        time.sleep(0.3)  # each has reached the server and holds whatever it can
        took = healthz_seconds(server)
        assert took < HEALTHZ_BOUND, f"/healthz took {took:.1f}s behind stalled clients"
        assert wait_until(settled, CLOSE_BOUND)
        answers = [read_until_closed(sock, CLOSE_BOUND) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    assert healthz_seconds(server) < 1
    assert "Traceback" not in server.log()[log_start:]
    return answers


@pytest.mark.parametrize("kind", WITHOUT_BODY)
def test_stalled_clients_hold_no_thread_past_the_idle_timeout(
        server: LiveServer, small_slug: str, kind: str) -> None:
    answered = len(server.access_lines())
    answers = assert_stalled_clients_cost_no_thread(server, WITHOUT_BODY[kind], small_slug)
    if kind.endswith("body"):  # the application saw the request: it answers 408
        assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), answers
        statuses = [line["status"] for line in server.access_lines()[answered:]
                    if line["path"] != "/healthz"]
        assert statuses == [408] * STALLED
    else:
        assert all(not a or b"408" not in a.split(b"\r\n", 1)[0] for a in answers)


@pytest.mark.parametrize("sendfile", [True, False], ids=["sendfile", "no sendfile"])
def test_a_download_whose_client_stops_reading_frees_its_thread(
        server: LiveServer, no_sendfile: LiveServer, sendfile: bool) -> None:
    live = server if sendfile else no_sendfile
    slug = big_slug(live)
    log_start = len(live.log())

    def cut_off() -> int:
        return live.log()[log_start:].count(f"GET /{slug} made no progress")

    answers = assert_stalled_clients_cost_no_thread(live, download, slug,
                                                    lambda: cut_off() == STALLED)
    assert all(a.startswith(b"HTTP/1.1 200 ") for a in answers)
    # Cut off, not served: the drop is intact and still downloads whole.
    response = live.request("GET", f"/{slug}")
    assert response.status_code == 200 and len(response.content) == BIG


def test_a_slow_client_that_keeps_sending_is_never_cut_off(server: LiveServer) -> None:
    """Head and body sent a piece every half timeout, over three timeouts in all."""
    content = b"slow but moving"
    head = request_head("PUT", "/slow.txt", {**AUTH, "Content-Length": str(len(content))})
    pieces = [head[i:i + 16] for i in range(0, len(head), 16)][:3]
    pieces += [head[len(b"".join(pieces)):]]
    pieces += [content[i:i + 3] for i in range(0, len(content), 3)]
    sock = connect(server)
    started = time.monotonic()
    try:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(IDLE_TIMEOUT / 2)
        status, _, body = read_response(sock, "PUT")
    finally:
        sock.close()
    assert time.monotonic() - started > 3 * IDLE_TIMEOUT
    assert status == 201, body
    slug = body.decode().strip().rsplit("/", 1)[1]
    assert server.request("GET", f"/{slug}").content == content
