"""A server process of the benchmark (teledrop's gunicorn, a reference) on a loopback
port, started, waited for and stopped with everything it forked."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import HOST, REPO
from tests.live_server import children_of

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass
class Server:
    """One server process (and, for gunicorn, its workers) on a loopback port."""

    name: str
    command: list[str]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO
    workers: int = 0  # gunicorn workers to wait for; 0: the process itself serves
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdout=out,
                                         stderr=out, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   + self.log_path.read_text(errors="replace")[-2000:])
            if self._listening() and len(self.pids()) >= max(1, self.workers):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not start within {START_TIMEOUT:.0f} s")

    def _listening(self) -> bool:
        try:
            socket.create_connection((HOST, self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def pids(self) -> list[int]:
        """The processes that serve requests."""
        if self.proc is None:
            return []
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}) during the run")
        return children_of(self.proc.pid) if self.workers else [self.proc.pid]

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        finally:
            try:  # the server leads its own session: this reaches its workers and no one else
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait(timeout=STOP_TIMEOUT)

    def url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.port}{path}"
