"""Real servers the tests start themselves (or find through an environment variable)."""

from __future__ import annotations

import random
import socket
import subprocess
from contextlib import ExitStack, closing
from pathlib import Path

LOOPBACK = "127.0.0.1"
#: Where the ports of the servers the tests start are drawn from, up to the kernel's
#: ephemeral range.
PORTS_FROM = 10_000
_DRAW = random.SystemRandom()  # not the ``random`` a test may seed


def ephemeral_ports() -> range:
    """The ports the kernel hands out for outgoing connections and binds to port 0."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that are free now, drawn below the kernel's
    ephemeral range: a port the kernel picks for some connection (another test's, or one
    between a server's own parts while it starts) can never be one held for a server that
    has not bound it yet, or that is being restarted on it."""
    ephemeral = ephemeral_ports()
    pool = range(PORTS_FROM, ephemeral.start) if ephemeral.start - PORTS_FROM >= 1000 \
        else range(ephemeral.stop, 65536)
    chosen: list[int] = []
    with ExitStack() as stack:
        for _ in range(1000):
            if len(chosen) == count:
                return chosen
            port = _DRAW.choice(pool)
            sock = stack.enter_context(closing(socket.socket()))
            try:
                sock.bind((LOOPBACK, port))  # held until all are picked
            except OSError:
                continue
            chosen.append(port)
    raise RuntimeError(f"no {count} free loopback ports in {pool}")


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """End a server the tests started: SIGTERM, then SIGKILL if it is still there after
    ``timeout`` seconds. Nothing to do for one that never started or has ended."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
