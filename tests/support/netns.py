"""A network namespace of the test's own: a host with an address of its own that the test
can cut off the network (``ip link set down``) and put back.

:func:`network_namespace` makes the namespace and a veth pair into it, ``10.x.y.1`` on this
side and ``10.x.y.2`` inside (nothing is routed anywhere else). A server started inside
reaches the loopback-only servers of this side through a :class:`Relay`: a TCP forwarder
listening on this side's veth address. Needs root (``ip netns add``), as the suite has under
``make test``; without it the tests that use it fail, saying why.
"""

from __future__ import annotations

import random
import secrets
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import pytest

CHUNK = 256 * 1024


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass(frozen=True)
class Namespace:
    name: str
    #: this side's end of the veth pair, and its address
    link: str
    outside: str
    #: the address inside the namespace
    inside: str

    @property
    def wrapper(self) -> tuple[str, ...]:
        """The command prefix that runs a command inside the namespace."""
        return ("ip", "netns", "exec", self.name)

    def cut(self) -> None:
        """Take the link down: nothing gets in or out until :meth:`restore`."""
        ip("link", "set", self.link, "down")

    def restore(self) -> None:
        ip("link", "set", self.link, "up")


def _free_subnet() -> str:
    """``10.x.y`` of a /30 that no route of this machine covers."""
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True,
                            text=True, check=False).stdout
    while True:
        prefix = f"10.{random.randint(200, 254)}.{random.randint(0, 255)}"
        if f"{prefix}." not in routes:
            return prefix


@contextmanager
def network_namespace() -> Iterator[Namespace]:
    tag = secrets.token_hex(3)
    name, link, peer = f"td-{tag}", f"tdo{tag}", f"tdi{tag}"
    try:
        ip("netns", "add", name)
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"cannot make a network namespace (the suite runs as root, with iproute2): {exc}")
    try:
        subnet = _free_subnet()
        ns = Namespace(name, link, f"{subnet}.1", f"{subnet}.2")
        ip("link", "add", link, "type", "veth", "peer", "name", peer)
        ip("link", "set", peer, "netns", name)
        ip("addr", "add", f"{ns.outside}/30", "dev", link)
        ip("link", "set", link, "up")
        ip("-n", name, "addr", "add", f"{ns.inside}/30", "dev", peer)
        ip("-n", name, "link", "set", peer, "up")
        ip("-n", name, "link", "set", "lo", "up")
        yield ns
    finally:
        with suppress(RuntimeError):
            ip("link", "del", link)  # takes its peer with it
        ip("netns", "del", name)


class Relay:
    """Forwards each connection made to ``address`` (on a free port) to ``target``, until
    the block ends."""

    def __init__(self, address: str, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server((address, 0))
        self.address = self._listener.getsockname()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> Relay:
        threading.Thread(target=self._accept, name="relay", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with suppress(OSError):
                    sock.close()

    @property
    def url(self) -> str:
        return f"http://{self.address[0]}:{self.address[1]}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                if self._closed:
                    return
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
