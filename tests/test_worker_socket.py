"""teledrop's client socket in the gunicorn worker (``teledrop.worker.IdleTimeoutSocket``):
an owed ``100 Continue`` goes out on the body's first receive and only then, and a receive
that times out marks the connection so that it is closed at once."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from teledrop.worker import CONTINUE, IdleTimeoutSocket


@pytest.fixture
def pair() -> Iterator[tuple[IdleTimeoutSocket, socket.socket]]:
    ours, peer = socket.socketpair()
    sock = IdleTimeoutSocket(ours.family, ours.type, ours.proto, fileno=ours.detach())
    sock.settimeout(0.2)
    peer.settimeout(2)
    with sock, peer:
        yield sock, peer


@pytest.mark.parametrize("receive", ["recv", "recv_into"])
def test_an_owed_continue_goes_out_once_on_the_first_receive(
        pair: tuple[IdleTimeoutSocket, socket.socket], receive: str) -> None:
    sock, peer = pair
    sock.continue_owed = True
    peer.sendall(b"abcdef")
    buffer = bytearray(3)
    first = sock.recv(3) if receive == "recv" else bytes(buffer[:sock.recv_into(buffer)])
    second = sock.recv(3) if receive == "recv" else bytes(buffer[:sock.recv_into(buffer)])
    assert first + second == b"abcdef"
    assert not sock.continue_owed and not sock.continue_skipped
    assert peer.recv(100) == CONTINUE  # once, not once per receive
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(100)


def test_a_response_begun_first_skips_the_continue(
        pair: tuple[IdleTimeoutSocket, socket.socket]) -> None:
    sock, peer = pair
    sock.continue_owed = True
    sock.sendall(b"HTTP/1.1 401 Unauthorized\r\n\r\n")
    peer.sendall(b"x")
    assert sock.recv(1) == b"x"
    assert sock.continue_skipped and not sock.continue_owed
    assert peer.recv(100) == b"HTTP/1.1 401 Unauthorized\r\n\r\n"


@pytest.mark.parametrize("receive", ["recv", "recv_into"])
def test_a_receive_that_times_out_marks_the_socket(
        pair: tuple[IdleTimeoutSocket, socket.socket], receive: str) -> None:
    sock, _peer = pair
    assert not sock.timed_out
    with pytest.raises(TimeoutError):
        sock.recv(10) if receive == "recv" else sock.recv_into(bytearray(10))
    assert sock.timed_out


def test_a_receive_that_fails_otherwise_does_not_mark_it(
        pair: tuple[IdleTimeoutSocket, socket.socket]) -> None:
    sock, peer = pair
    peer.close()
    assert sock.recv_into(bytearray(10)) == 0  # the peer closed: an end, not a timeout
    assert not sock.timed_out
