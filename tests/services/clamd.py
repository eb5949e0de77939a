"""A throwaway ClamAV daemon for the tests: Debian's ``clamd`` (``clamav-daemon``) run as
the test session's own process, on a socket in a temporary directory and a loopback port,
with a signature database the fixture makes itself with ``sigtool``: one signature, the
EICAR test pattern anywhere in a file. Nothing is downloaded, and no system clamd or
freshclam is involved."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services.seaweedfs import HOST, _die_with_parent, free_ports

CLAMD = "/usr/sbin/clamd"
SIGTOOL = "sigtool"
#: The EICAR anti-virus test file, in two halves so that this source is no test file.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-" + b"STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SIGNATURE = "Teledrop-Test-EICAR"
#: What clamd calls a signature from an unsigned database.
FOUND_AS = f"{SIGNATURE}.UNOFFICIAL"
#: clamd's StreamMaxLength here: bigger streams are refused.
STREAM_MAX = 2 * 1024 * 1024
STARTUP_SECONDS = 60


@dataclass
class Clamd:
    socket: Path
    address: str
    process: subprocess.Popen[bytes]
    log: Path

    def ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(2)
                sock.connect(str(self.socket))
                sock.sendall(b"zPING\0")
                return sock.recv(16) == b"PONG\0"
        except OSError:
            return False


def tool(name: str) -> str:
    found = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        pytest.fail(f"{name} is not installed: `make test` installs clamav-daemon and clamav "
                    "(apt-get install -y clamav-daemon clamav)")
    return found


def signature_database(directory: Path) -> None:
    """``teledrop.ndb``: the EICAR pattern at any offset of any file, in sigtool's hex."""
    directory.mkdir()
    hexed = subprocess.run([tool(SIGTOOL), "--hex-dump"], input=EICAR, capture_output=True,
                           check=True, timeout=30).stdout.decode().strip()
    assert hexed == EICAR.hex()
    (directory / "teledrop.ndb").write_text(f"{SIGNATURE}:0:*:{hexed}\n")


@pytest.fixture(scope="session")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clamd]:
    base = tmp_path_factory.mktemp("clamd")
    signature_database(base / "db")
    (port,) = free_ports(1)
    conf = base / "clamd.conf"
    conf.write_text(f"LocalSocket {base}/clamd.sock\nTCPSocket {port}\nTCPAddr {HOST}\n"
                    f"DatabaseDirectory {base}/db\nTemporaryDirectory {base}\n"
                    f"LogFile {base}/clamd.log\nForeground yes\n"
                    f"StreamMaxLength {STREAM_MAX // 1024}K\n")
    process = subprocess.Popen([tool(CLAMD), "-c", str(conf)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    server = Clamd(base / "clamd.sock", f"{HOST}:{port}", process, base / "clamd.log")
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not server.ping():
            if process.poll() is not None or time.monotonic() > deadline:
                log = server.log.read_text() if server.log.exists() else ""
                pytest.fail(f"clamd did not start: {log[-2000:]}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
