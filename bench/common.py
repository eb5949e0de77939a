"""What every part of teledrop's benchmark shares: where it runs, sizes, and its log."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
HOST = "127.0.0.1"
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
PY = sys.executable
#: No single transfer here may take longer: a stuck run fails instead of hanging.
TRANSFER_TIMEOUT = 300.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def mib(n: float) -> float:
    return n / MiB


def size_label(n: int) -> str:
    return f"{n // GiB} GiB" if n >= GiB and n % GiB == 0 else f"{n // MiB} MiB"
