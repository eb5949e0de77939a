"""teledrop.web.socket_body against gunicorn's own body objects over a real socket pair.

The direct reader must hand over exactly the body's bytes, whatever gunicorn had already
read past the request head, leave gunicorn's bookkeeping as if gunicorn had read them
itself (so the next request on the connection starts where it should, and an unread rest
is drained by gunicorn), and mark the body failed when a read fails, so that the
connection is not reused. Anything that is not a length-delimited gunicorn body is left to
``wsgi.input``.
"""

from __future__ import annotations

import io
import os
import socket
import threading
from collections.abc import Iterator

import pytest
from gunicorn.http.body import Body, ChunkedReader, EOFReader, LengthReader
from gunicorn.http.unreader import IterUnreader, SocketUnreader

from teledrop.hosts.body import READ_SIZE, body_chunks
from teledrop.web.socket_body import SocketBody

MiB = 1024 * 1024


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    client, server = socket.socketpair()
    server.settimeout(5)
    yield client, server
    client.close()
    server.close()


def gunicorn_body(server: socket.socket, length: int, read_ahead: bytes = b"") -> Body:
    """The ``wsgi.input`` gunicorn builds for a Content-Length body, with ``read_ahead``
    already received along with the request head."""
    unreader = SocketUnreader(server)
    if read_ahead:
        unreader.unread(read_ahead)
    return Body(LengthReader(unreader, length))


def environ_for(body: object, server: socket.socket) -> dict[str, object]:
    return {"wsgi.input": body, "gunicorn.socket": server}


def send_later(sock: socket.socket, data: bytes, close: bool = False) -> threading.Thread:
    def run() -> None:
        sock.sendall(data)
        if close:
            sock.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def read_all(reader: SocketBody) -> bytes:
    return b"".join(bytes(piece) for piece in body_chunks(reader))


@pytest.mark.parametrize("ahead", [0, 1000, 3 * MiB])
def test_reads_exactly_the_body_and_leaves_the_next_request_to_gunicorn(
        pair: tuple[socket.socket, socket.socket], ahead: int) -> None:
    client, server = pair
    body = os.urandom(3 * MiB + 17)
    following = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
    stream = body + following
    wsgi_input = gunicorn_body(server, len(body), read_ahead=stream[:ahead])
    sender = send_later(client, stream[ahead:])
    reader = SocketBody.wrap(environ_for(wsgi_input, server))
    assert reader is not None

    assert read_all(reader) == body
    assert wsgi_input.reader.length == 0 and wsgi_input.read() == b""  # nothing left for gunicorn
    sender.join(5)
    # what followed the body is still there, in gunicorn's buffer or on the socket
    unreader = wsgi_input.reader.unreader
    assert unreader.read(len(following)) == following


def test_pieces_are_whole_read_size_buffers_until_the_end(
        pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    body = os.urandom(2 * READ_SIZE + 5)
    wsgi_input = gunicorn_body(server, len(body), read_ahead=body[:100])
    sender = send_later(client, body[100:])
    reader = SocketBody.wrap(environ_for(wsgi_input, server))
    assert reader is not None
    sizes = [len(piece) for piece in body_chunks(reader)]
    sender.join(5)
    assert sizes == [READ_SIZE, READ_SIZE, 5]


def test_a_rest_left_unread_is_drained_by_gunicorn_from_the_right_place(
        pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    body = os.urandom(MiB + 100)
    wsgi_input = gunicorn_body(server, len(body))
    sender = send_later(client, body + b"NEXT")
    reader = SocketBody.wrap(environ_for(wsgi_input, server))
    assert reader is not None
    buffer = bytearray(1000)
    assert reader.readinto(buffer) == 1000 and bytes(buffer) == body[:1000]

    assert wsgi_input.read() == body[1000:]  # gunicorn's own reader takes over seamlessly
    sender.join(5)
    assert wsgi_input.reader.unreader.read(4) == b"NEXT"


def test_a_client_that_closes_early_gives_a_short_body_then_nothing(
        pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    sent = os.urandom(5000)
    wsgi_input = gunicorn_body(server, 10_000, read_ahead=sent[:10])
    send_later(client, sent[10:], close=True).join(5)
    reader = SocketBody.wrap(environ_for(wsgi_input, server))
    assert reader is not None
    assert read_all(reader) == sent
    assert wsgi_input.reader.length == 5000  # gunicorn knows the body was cut short


def test_a_read_that_times_out_hands_over_what_came_then_marks_the_body_failed(
        pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    server.settimeout(0.2)
    wsgi_input = gunicorn_body(server, 10_000)
    client.sendall(b"x" * 300)
    reader = SocketBody.wrap(environ_for(wsgi_input, server))
    assert reader is not None
    buffer = bytearray(1000)
    assert reader.readinto(buffer) == 300 and buffer[:300] == b"x" * 300
    assert wsgi_input.failed  # gunicorn will not reuse a connection it lost track of
    with pytest.raises(TimeoutError):
        reader.readinto(buffer)
    with pytest.raises(TimeoutError):  # and stays failed
        reader.readinto(buffer)
    assert wsgi_input.reader.length == 10_000 - 300


def test_a_reset_marks_the_body_failed(pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    wsgi_input = gunicorn_body(server, 10_000)
    reader = SocketBody.wrap(environ_for(wsgi_input, server))
    assert reader is not None
    server.close()  # the socket the reader holds is gone
    with pytest.raises(OSError):
        reader.readinto(bytearray(1000))
    assert wsgi_input.failed


def test_a_zero_length_body_reads_nothing_and_touches_no_socket(
        pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    wsgi_input = gunicorn_body(server, 0, read_ahead=b"GET / HTTP/1.1\r\n\r\n")
    reader = SocketBody.wrap(environ_for(wsgi_input, server))
    assert reader is not None
    assert reader.readinto(bytearray(100)) == 0
    assert wsgi_input.reader.unreader.read(3) == b"GET"


def test_other_bodies_are_left_to_wsgi_input(pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    unreader = SocketUnreader(server)
    chunked = Body(ChunkedReader(object(), unreader))
    until_eof = Body(EOFReader(unreader))
    not_a_socket = Body(LengthReader(IterUnreader([b"abc"]), 3))
    partly_read = gunicorn_body(server, 10, read_ahead=b"0123456789")
    partly_read.read(3)
    other_socket = gunicorn_body(client, 10)
    for body in (chunked, until_eof, not_a_socket, partly_read, other_socket, io.BytesIO(b"x")):
        assert SocketBody.wrap(environ_for(body, server)) is None, body
    assert SocketBody.wrap({"wsgi.input": gunicorn_body(server, 10)}) is None  # no socket
