"""teledrop's gunicorn worker: gthread, with ``limits.idle_timeout`` on every connection.

gunicorn's gthread worker blocks a thread on the client's socket with no time limit: a
request head that stops after one byte, a form body that never ends, a download whose
client stops reading each hold their thread for good, and a few dozen such sockets take a
whole server down. This worker gives every blocking read and write of a connection, the
request head included, the idle timeout as its socket timeout, each time a thread takes
the connection. A new connection waits on the worker's poller, as a kept-alive one does,
until it has sent something: a client that connects and says nothing holds no thread,
and is closed once it has been silent for the idle timeout.

A connection that timed out is closed at once. gunicorn's graceful close waits (up to two
seconds, on the worker's main loop) for the client to close its side too, and a client
that stopped talking never does.
"""

from __future__ import annotations

import logging
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

from teledrop.core.config import Config, LimitsSettings

log = logging.getLogger(__name__)


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_RECV = socket.socket.recv
_RECV_INTO = socket.socket.recv_into


class IdleTimeoutSocket(socket.socket):
    """A client connection that remembers whether one of its calls timed out, and sends
    an owed ``100 Continue`` on the first read of the request body (never once the
    response has begun)."""

    timed_out = False
    #: The request asked ``Expect: 100-continue`` and neither body nor response has begun.
    continue_owed = False
    #: The response began while ``100 Continue`` was owed: the body was never asked for.
    continue_skipped = False

    def _timing(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except TimeoutError:
            self.timed_out = True
            raise

    def _send_continue(self) -> None:
        self.continue_owed = False
        self._timing(super().sendall, CONTINUE)

    def _writing(self) -> None:
        if self.continue_owed:
            self.continue_owed, self.continue_skipped = False, True

    # The receives are what a body costs per read: each is one Python frame around the C
    # call, not three (docs/performance.md).

    def recv(self, *args: Any) -> bytes:  # type: ignore[override]
        if self.continue_owed:
            self._send_continue()
        try:
            return _RECV(self, *args)
        except TimeoutError:
            self.timed_out = True
            raise

    def recv_into(self, *args: Any) -> int:  # type: ignore[override]
        if self.continue_owed:
            self._send_continue()
        try:
            return _RECV_INTO(self, *args)
        except TimeoutError:
            self.timed_out = True
            raise

    def send(self, *args: Any) -> int:  # type: ignore[override]
        self._writing()
        return self._timing(super().send, *args)

    def sendall(self, *args: Any) -> None:  # type: ignore[override]
        self._writing()
        self._timing(super().sendall, *args)

    def sendfile(self, *args: Any, **kwargs: Any) -> int:  # type: ignore[override]
        self._writing()
        return self._timing(super().sendfile, *args, **kwargs)


class HeadTimeout:
    """gunicorn's request parser, with a request head that times out ending the
    connection quietly: gunicorn would log it as a socket error, with a traceback."""

    def __init__(self, parser: Any, client: Any, idle_timeout: float) -> None:
        self._parser = parser
        self._client = client
        self._idle_timeout = idle_timeout

    def __iter__(self) -> HeadTimeout:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._parser)
        except TimeoutError:
            log.info("closed a connection from %s: no request head for %ss",
                     _peer(self._client), self._idle_timeout)
            raise StopIteration from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)


class IdleTimeoutConn(TConn):  # type: ignore[misc]
    """A connection whose socket gets the idle timeout whenever a thread takes it."""

    def __init__(self, cfg: Any, sock: IdleTimeoutSocket, client: Any, server: Any,
                 idle_timeout: float) -> None:
        super().__init__(cfg, sock, client, server)
        self.idle_timeout = idle_timeout

    def init(self) -> None:
        # gthread calls this in the thread each time, right after making the socket
        # blocking (which clears any timeout), before it reads a request head.
        if not self.initialized:
            super().init()
            if not self.is_http2:
                self.parser = HeadTimeout(self.parser, self.client, self.idle_timeout)
        self.sock.settimeout(self.idle_timeout)

    def close(self, graceful: bool = False) -> None:
        super().close(graceful and not getattr(self.sock, "timed_out", False))


class IdleTimeoutWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker with ``limits.idle_timeout`` on every connection. The
    settings name the class :func:`worker_class` makes for their config; named by itself,
    it has the default."""

    idle_timeout = float(LimitsSettings().idle_timeout)

    def accept(self, listener: socket.socket) -> None:
        """Take a new connection onto the poller until it sends something."""
        try:
            accepted, client = listener.accept()
        except (BlockingIOError, ConnectionAbortedError):
            return
        sock = IdleTimeoutSocket(accepted.family, accepted.type, accepted.proto,
                                 fileno=accepted.detach())
        self.nr_conns += 1
        conn = IdleTimeoutConn(self.cfg, sock, client, listener.getsockname(),
                               self.idle_timeout)
        conn.timeout = time.monotonic() + self.idle_timeout
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ,
                             partial(self.on_pending_socket_readable, conn))

    def handle_request(self, req: Any, conn: IdleTimeoutConn) -> bool:
        """One request; a client that stopped reading the response ends its connection.

        gunicorn answers ``Expect: 100-continue`` before the application runs, so a client
        would send a body that teledrop then refuses (401, 409, 413). The ``100 Continue``
        is deferred to the socket instead, which sends it when the body is first read. A
        refusal goes out without it, and the connection then closes: the client was told
        not to send the body it announced, so where the next request starts is unknown.
        """
        sock = conn.sock
        if isinstance(sock, IdleTimeoutSocket):
            sock.continue_owed = bool(getattr(req, "_expected_100_continue", False))
            sock.continue_skipped = False
            req._expected_100_continue = False
        try:
            keep_alive = bool(super().handle_request(req, conn))
        except TimeoutError:
            log.info("closed a connection from %s: %s %s made no progress for %ss",
                     _peer(conn.client), req.method, req.path, self.idle_timeout)
            return False
        finally:
            sock.continue_owed = False
        return keep_alive and not getattr(sock, "continue_skipped", False)


def _peer(client: Any) -> str:
    return client[0] if isinstance(client, tuple) and client else str(client)


def worker_class(config: Config) -> type[IdleTimeoutWorker]:
    """The worker class for ``config``: gunicorn makes each worker from its settings, so
    what a worker needs of the config travels with its class."""
    return type(IdleTimeoutWorker.__name__, (IdleTimeoutWorker,),
                {"idle_timeout": float(config.limits.idle_timeout),
                 "__module__": __name__, "__doc__": IdleTimeoutWorker.__doc__})
