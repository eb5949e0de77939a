"""Reference servers for the benchmark: what teledrop's figures are compared against.

Each runs in its own process so that its peak RSS and CPU are its own:

``python bench/baselines.py receive --port P --dir D``
    The best a Python process can do with an upload here: parse the request head, read the
    body (Content-Length or chunked) from the socket into one reused 1 MiB buffer, write it
    to ``D`` (same filesystem as teledrop's storage) and ``fsync`` before answering, exactly
    as teledrop publishes. A multipart body is written as it comes, framing included: no
    parser, no hash. ``--hash`` adds blake3 over the same bytes in the same loop;
    ``--buffer N`` reads and writes N bytes at a time instead. It answers ``201`` with
    ``<size> <blake3 or -> <fsync seconds>``.

``python bench/baselines.py sendfile --port P --file F``
    Serves ``F`` on every ``GET`` with ``os.sendfile``, single ``Range`` included, on
    keep-alive connections: the ceiling for downloads.

Two Flask apps, served by gunicorn with teledrop's own settings (2 workers, gthread):

``make_spool_app()``
    The architecture teledrop replaces: werkzeug's default form parsing (64 KiB reads, file
    parts spooled into a ``SpooledTemporaryFile`` under ``$TMPDIR``) then
    ``FileStorage.save`` into ``$BENCH_SPOOL_DIR`` and ``fsync``: every byte is written twice.

``make_hello_app()``
    A bare Flask app: ``POST /`` reads the body and answers 201, ``GET /<name>`` answers
    1 KiB. The per-request floor of Flask on gunicorn.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import socketserver
import sys
import time
import uuid
from typing import Any

READ_SIZE = 1024 * 1024
HEAD_LIMIT = 64 * 1024
SOCKET_TIMEOUT = 60.0
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class BadRequest(Exception):
    pass


class Connection:
    """A socket with the read-ahead of whatever arrived past the request head."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending = bytearray()

    def read_head(self) -> tuple[str, str, dict[str, str]] | None:
        while b"\r\n\r\n" not in self.pending:
            if len(self.pending) > HEAD_LIMIT:
                raise BadRequest("request head too large")
            data = self.sock.recv(65536)
            if not data:
                if self.pending:
                    raise BadRequest("connection closed inside the request head")
                return None
            self.pending += data
        head, _, rest = bytes(self.pending).partition(b"\r\n\r\n")
        self.pending = bytearray(rest)
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return method, target, headers

    def readinto(self, view: memoryview) -> int:
        """Up to ``len(view)`` bytes, read-ahead first."""
        if self.pending:
            n = min(len(view), len(self.pending))
            view[:n] = self.pending[:n]
            del self.pending[:n]
            return n
        return self.sock.recv_into(view)

    def readline(self) -> bytes:
        while b"\r\n" not in self.pending:
            data = self.sock.recv(65536)
            if not data:
                raise BadRequest("connection closed inside a chunk header")
            self.pending += data
        line, _, rest = bytes(self.pending).partition(b"\r\n")
        self.pending = bytearray(rest)
        return line

    def read_exact_into(self, view: memoryview) -> None:
        while view:
            n = self.readinto(view)
            if not n:
                raise BadRequest("connection closed inside the body")
            view = view[n:]

    def send_response(self, status: str, body: bytes = b"", headers: dict[str, str] | None = None,
                      close: bool = False) -> None:
        lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if close:
            lines.append("Connection: close")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


# --- receive-and-write ------------------------------------------------------------------

class BodySink:
    """Fills one reused buffer and writes it out whole: one write per MiB, like teledrop's
    raw path at its best."""

    def __init__(self, fd: int, hasher: Any, size: int = READ_SIZE) -> None:
        self.fd = fd
        self.hasher = hasher
        self.buffer = bytearray(size)
        self.view = memoryview(self.buffer)
        self.filled = 0
        self.size = 0

    def space(self) -> memoryview:
        return self.view[self.filled:]

    def commit(self, n: int) -> None:
        self.filled += n
        self.size += n
        if self.filled == len(self.buffer):
            self.flush()

    def flush(self) -> None:
        data = self.view[:self.filled]
        if self.hasher is not None:
            self.hasher.update(data)
        while data:
            data = data[os.write(self.fd, data):]
        self.filled = 0


def receive_length(conn: Connection, sink: BodySink, length: int) -> None:
    remaining = length
    while remaining:
        space = sink.space()
        n = conn.readinto(space[:min(len(space), remaining)])
        if not n:
            raise BadRequest("connection closed inside the body")
        sink.commit(n)
        remaining -= n


def receive_chunked(conn: Connection, sink: BodySink) -> None:
    while True:
        size = int(conn.readline().split(b";", 1)[0], 16)
        if size == 0:
            while conn.readline():  # trailers, up to the empty line
                pass
            return
        while size:
            space = sink.space()
            view = space[:min(len(space), size)]
            conn.read_exact_into(view)
            sink.commit(len(view))
            size -= len(view)
        if conn.readline():
            raise BadRequest("chunk not followed by CRLF")


class ReceiveHandler(socketserver.BaseRequestHandler):
    server: ReceiveServer

    def handle(self) -> None:
        self.request.settimeout(SOCKET_TIMEOUT)
        conn = Connection(self.request)
        try:
            request = conn.read_head()
            if request is None:
                return
            _method, _target, headers = request
            if headers.get("expect", "").lower() == "100-continue":
                self.request.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            path = os.path.join(self.server.directory, f"receive-{uuid.uuid4().hex}")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                hasher = None
                if self.server.hash:
                    import blake3
                    hasher = blake3.blake3()
                sink = BodySink(fd, hasher, self.server.buffer_size)
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    receive_chunked(conn, sink)
                else:
                    receive_length(conn, sink, int(headers.get("content-length", "0")))
                sink.flush()
                synced = time.perf_counter()
                os.fsync(fd)
                fsync_s = time.perf_counter() - synced
            finally:
                os.close(fd)
            digest = hasher.hexdigest() if hasher is not None else "-"
            # The fsync's share tells how much of a run was the disk, not the process.
            conn.send_response("201 Created", f"{sink.size} {digest} {fsync_s:.4f}\n".encode(),
                               close=True)
            os.unlink(path)
        except (BadRequest, ValueError) as exc:
            conn.send_response("400 Bad Request", f"{exc}\n".encode(), close=True)


class ReceiveServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], directory: str, hash: bool,
                 buffer_size: int = READ_SIZE) -> None:
        self.directory = directory
        self.hash = hash
        self.buffer_size = buffer_size
        super().__init__(address, ReceiveHandler)


# --- sendfile ---------------------------------------------------------------------------

def parse_range(value: str, size: int) -> tuple[int, int] | None:
    match = _RANGE.match(value.strip())
    if not match or not (match.group(1) or match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(size - 1, int(last)) if last else size - 1
    return (start, end) if start <= end < size else None


class SendfileHandler(socketserver.BaseRequestHandler):
    server: SendfileServer

    def handle(self) -> None:
        self.request.settimeout(SOCKET_TIMEOUT)
        conn = Connection(self.request)
        with open(self.server.path, "rb") as f:
            self.serve(conn, f)

    def serve(self, conn: Connection, f: Any) -> None:
        try:
            size = os.fstat(f.fileno()).st_size
            while (request := conn.read_head()) is not None:
                method, _target, headers = request
                span = parse_range(headers["range"], size) if "range" in headers else None
                start, end = span if span else (0, size - 1)
                status = "206 Partial Content" if span else "200 OK"
                length = end - start + 1
                head = [f"HTTP/1.1 {status}", f"Content-Length: {length}",
                        "Content-Type: application/octet-stream", "Accept-Ranges: bytes"]
                if span:
                    head.append(f"Content-Range: bytes {start}-{end}/{size}")
                self.request.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
                if method == "GET":
                    # socket.sendfile: os.sendfile in a loop that also waits out a full
                    # send buffer (the socket has a timeout, so it is non-blocking inside).
                    self.request.sendfile(f, start, length)
        except (BadRequest, ConnectionError, TimeoutError):
            return


class SendfileServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], path: str) -> None:
        self.path = path
        super().__init__(address, SendfileHandler)


# --- Flask references (served by gunicorn) ------------------------------------------------

def make_spool_app() -> Any:
    from flask import Flask, request

    directory = os.environ["BENCH_SPOOL_DIR"]
    app = Flask("spool")
    # Large enough for any benchmark upload; werkzeug's own parser settings otherwise.
    app.config["MAX_CONTENT_LENGTH"] = None

    @app.post("/")
    def upload() -> tuple[str, int]:
        storage = request.files["file"]
        path = os.path.join(directory, f"spool-{uuid.uuid4().hex}")
        storage.save(path)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.unlink(path)
        return "ok\n", 201

    return app


def make_hello_app() -> Any:
    from flask import Flask, request

    app = Flask("hello")
    payload = os.urandom(1024)

    @app.post("/")
    def hello() -> tuple[str, int]:
        request.get_data()
        return "hello\n", 201

    @app.get("/<name>")
    def small(name: str) -> bytes:
        return payload

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    receive = sub.add_parser("receive", help="receive a body and write it, fsync at the end")
    receive.add_argument("--port", type=int, required=True)
    receive.add_argument("--dir", required=True)
    receive.add_argument("--hash", action="store_true", help="blake3 in the same loop")
    receive.add_argument("--buffer", type=int, default=READ_SIZE,
                         help="bytes per read and write (default 1 MiB)")
    sendfile = sub.add_parser("sendfile", help="serve one file with os.sendfile")
    sendfile.add_argument("--port", type=int, required=True)
    sendfile.add_argument("--file", required=True)
    args = parser.parse_args(argv)
    server: socketserver.TCPServer
    if args.kind == "receive":
        server = ReceiveServer(("127.0.0.1", args.port), args.dir, args.hash, args.buffer)
    else:
        server = SendfileServer(("127.0.0.1", args.port), args.file)
    print(f"listening on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    with server:
        server.serve_forever()


if __name__ == "__main__":
    main()
