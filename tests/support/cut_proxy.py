"""A TCP proxy in front of a live server that reads the HTTP requests passing through it,
counts the body bytes it hands on per method, and cuts uploads where a test says.

It is how a test proves that a client resumed from what the server had: every body byte
the server received went through here and was counted, so a file sent whole with nothing
twice shows as exactly its size in ``PATCH`` bodies (or part ``PUT`` bodies).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections import Counter
from contextlib import suppress

from tests.support.netns import CHUNK, Relay

#: How long a cut waits for the server to answer the request it ended.
ANSWER_TIMEOUT = 30.0


class CutProxy(Relay):
    """Forwards each connection to ``target``.

    ``cut_after = N`` (for requests of ``method``): once ``N`` body bytes of such requests
    have been handed on in all, the request carrying the N-th byte is cut: the server
    sees its body end there (a clean end of stream, so it keeps every byte), the proxy
    waits for the server to be done with it, then resets the client's connection. It cuts
    once. ``hold_after = N`` instead stops handing bytes on past the N-th (the client's
    further bytes are read and dropped) until the client goes away. ``refusing`` closes
    every new connection at once (a server that went away), and ``refuse_after_cut`` does
    so from the cut on."""

    def __init__(self, target: tuple[str, int], method: str = "PATCH") -> None:
        super().__init__("127.0.0.1", target)
        self.method = method
        self.body_bytes: Counter[str] = Counter()
        self.cut_after: int | None = None
        self.hold_after: int | None = None
        self.refusing = False
        #: Start refusing once the cut is made.
        self.refuse_after_cut = False
        self.cuts = 0
        self.held = threading.Event()
        #: Seconds to wait before handing each chunk of a body on (a slower line).
        self.pace = 0.0
        #: The most requests of ``method`` whose bodies were passing at once.
        self.most_at_once = 0
        self._at_once = 0

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing:
                reset(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                reset(client)
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            connection = _Connection(self, client, server)
            threading.Thread(target=connection.upstream, daemon=True).start()
            threading.Thread(target=connection.downstream, daemon=True).start()

    def reset(self) -> None:
        """Counters and settings as new (the proxy stays where it is)."""
        with self._lock:
            self.body_bytes.clear()
            self.cut_after = self.hold_after = None
            self.refusing = self.refuse_after_cut = False
            self.cuts = self.most_at_once = 0
            self.pace = 0.0
            self.held.clear()

    def _begin(self, method: str) -> None:
        if method == self.method:
            with self._lock:
                self._at_once += 1
                self.most_at_once = max(self.most_at_once, self._at_once)

    def _end(self, method: str) -> None:
        if method == self.method:
            with self._lock:
                self._at_once -= 1

    def _allowance(self, method: str, wanted: int) -> tuple[int, str | None]:
        """How many of ``wanted`` body bytes of a ``method`` request go on, and whether
        the request is then cut or held."""
        with self._lock:
            if method != self.method:
                self.body_bytes[method] += wanted
                return wanted, None
            for limit, action in ((self.cut_after, "cut"), (self.hold_after, "hold")):
                if limit is not None and self.body_bytes[method] + wanted >= limit:
                    allowed = max(0, limit - self.body_bytes[method])
                    self.body_bytes[method] += allowed
                    if action == "cut":
                        self.cut_after = None
                        self.cuts += 1
                        self.refusing = self.refusing or self.refuse_after_cut
                    return allowed, action
            self.body_bytes[method] += wanted
            return wanted, None


class _Connection:
    """One client connection and its server connection."""

    def __init__(self, proxy: CutProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy, self.client, self.server = proxy, client, server
        self.cutting = False
        self.server_done = threading.Event()

    def upstream(self) -> None:
        """Client to server, a request at a time: its head, then its body."""
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = self.client.recv(CHUNK)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                self.server.sendall(head + b"\r\n\r\n")
                method, length = parse_head(head)
                if length is None:  # chunked: no more requests to tell apart
                    self.through(method, buffer)
                    return
                self.proxy._begin(method)
                try:
                    buffer = self.body(method, length, buffer)
                finally:
                    self.proxy._end(method)
                if buffer is None:
                    return
        except OSError:
            pass
        finally:
            with suppress(OSError):
                self.server.shutdown(socket.SHUT_WR)

    def body(self, method: str, length: int, buffer: bytes) -> bytes | None:
        """Hand on ``length`` body bytes (``buffer`` first); the bytes read past them, or
        ``None`` when the connection is done (cut, held, or closed by the client)."""
        while length:
            if not buffer:
                buffer = self.client.recv(min(CHUNK, length))
                if not buffer:
                    return None
            piece, buffer = buffer[:length], buffer[length:]
            if self.proxy.pace:
                time.sleep(self.proxy.pace)
            allowed, action = self.proxy._allowance(method, len(piece))
            self.server.sendall(piece[:allowed])
            length -= len(piece)
            if action == "cut":
                self.cut()
                return None
            if action == "hold":
                self.hold()
                return None
        return buffer

    def through(self, method: str, buffer: bytes) -> None:
        """Everything from here on as it comes, counted as ``method``'s body."""
        while buffer := buffer or self.client.recv(CHUNK):
            self.proxy.body_bytes[method] += len(buffer)
            self.server.sendall(buffer)
            buffer = b""

    def cut(self) -> None:
        """End the request's body where it is, let the server finish with it (unseen by
        the client), then reset the client."""
        self.cutting = True
        self.server.shutdown(socket.SHUT_WR)
        self.server_done.wait(ANSWER_TIMEOUT)
        reset(self.client)

    def hold(self) -> None:
        """Hand nothing more on; when the client goes away, end the body there."""
        self.proxy.held.set()
        with suppress(OSError):
            while self.client.recv(CHUNK):
                pass

    def downstream(self) -> None:
        try:
            while data := self.server.recv(CHUNK):
                if not self.cutting:
                    self.client.sendall(data)
        except OSError:
            pass
        finally:
            self.server_done.set()
            if not self.cutting:
                with suppress(OSError):
                    self.client.shutdown(socket.SHUT_WR)


def parse_head(head: bytes) -> tuple[str, int | None]:
    """A request head's method and Content-Length (0 without one, ``None`` when chunked)."""
    lines = head.decode("latin-1").split("\r\n")
    method = lines[0].split(" ", 1)[0]
    length: int | None = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
        elif name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
            return method, None
    return method, length


def reset(sock: socket.socket) -> None:
    """Close with a reset (RST), as a dead peer or a dropped route does."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with suppress(OSError):
        sock.close()
