"""A real gunicorn serving teledrop on a loopback port, for tests that need real sockets,
real worker processes and real signals.

``live_server(base_dir, **sections)`` writes a TOML config (storage and metadata under
``base_dir/data``), starts ``python -m gunicorn -c conf/gunicorn.conf.py wsgi:app`` (or
``teledrop serve --config F``) from the repository root with ``TELEDROP_CONFIG`` pointing at
it, waits for ``/healthz`` and yields a :class:`LiveServer`; the server is stopped on exit,
whatever the test did (or :meth:`LiveServer.kill` takes it down like a power cut).
:class:`DataDir` reads what the server left on disk (staging files, blobs, the ``drops``
table) so tests can prove that nothing leaked; :meth:`LiveServer.access_lines` says how it
answered clients that are gone. :func:`install_plugins` makes a test plugin an installed
distribution the server loads by entry point. The raw-socket helpers at the end send what
no well-behaved client sends: partial bodies, cut chunks, resets.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from teledrop.core.config import Config
from teledrop.plugins.manager import ENTRY_POINTS_ENV
from teledrop.server import gunicorn_settings
from tests.support.entry_points import entry_points_env, is_teledrop_setting, write_dist_info

REPO = Path(__file__).resolve().parent.parent
TELEDROP_SCRIPT = Path(sys.executable).parent / "teledrop"
GUNICORN_COMMAND = (sys.executable, "-m", "gunicorn", "-c", "conf/gunicorn.conf.py", "wsgi:app")
HOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 30.0
#: How long a clean stop may take when a worker may still be booting: such a worker
#: answers the master's signal only once it is up, and the master waits for it up to
#: its graceful timeout.
BOOTING_STOP_TIMEOUT = gunicorn_settings(Config())["graceful_timeout"] + 15.0
#: Where teledrop's access log line starts (``teledrop.web.observe``).
ACCESS_MARK = "teledrop.access: "
#: gunicorn's own words when the port was taken between picking it and binding it.
_PORT_TAKEN = ("Address already in use", "Connection in use")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; that value, or the last falsy
    one once ``timeout`` has passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# --- config ---------------------------------------------------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def to_toml(tables: Mapping[str, Any], prefix: str = "") -> str:
    """Nested dicts as TOML tables (enough for teledrop configs)."""
    scalars = {k: v for k, v in tables.items() if not isinstance(v, Mapping)}
    nested = {k: v for k, v in tables.items() if isinstance(v, Mapping)}
    lines = [f"[{prefix}]"] if prefix and (scalars or not nested) else []
    lines += [f"{key} = {_toml_value(value)}" for key, value in scalars.items()]
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value in nested.items():
        text += "\n" + to_toml(value, f"{prefix}.{key}" if prefix else key)
    return text


def merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def config_tables(data_dir: Path, port: int, address: str = HOST, **sections: Any,
                  ) -> dict[str, Any]:
    base = {
        "server": {"bind": f"{address}:{port}", "workers": 2, "threads": 8},
        "plugins": {"local_storage": {"root": str(data_dir / "files")},
                    "sqlite_meta": {"path": str(data_dir / "teledrop.db")}},
    }
    return merged(base, sections)


def process_env(runtime_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment without the caller's TELEDROP_* settings (so nothing leaks into the
    server's config; the suite's choice of entry points stays) and with gunicorn's control
    socket in a directory of its own, so that several servers never take over each other's
    socket."""
    env = {k: v for k, v in os.environ.items() if not is_teledrop_setting(k)}
    env["XDG_RUNTIME_DIR"] = str(runtime_dir)
    env.update(extra or {})
    return env


@contextmanager
def runtime_dir() -> Iterator[Path]:
    """A short-lived directory for gunicorn's control socket. A unix socket path must
    stay under ~100 bytes, and pytest's tmp_path can be longer."""
    path = Path(tempfile.mkdtemp(prefix="td-rt-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def install_plugins(site: Path, entry_points: Mapping[str, str]) -> dict[str, str]:
    """Make each ``{entry point name: module}`` an installed distribution (a dist-info
    with a ``teledrop`` entry point, as ``pip install`` leaves it) under ``site``; returns
    the environment that puts it, and the repository for the ``tests`` package, on the
    path of a server or CLI started with it, and loads it there."""
    for name, module in entry_points.items():
        write_dist_info(site, name, {name: module})
    return {"PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
            **entry_points_env(*entry_points)}


# --- what is on disk ----------------------------------------------------------------------

@dataclass(frozen=True)
class Snapshot:
    staging: frozenset[str]
    blobs: frozenset[str]
    #: slug -> blob id
    records: Mapping[str, str]


@dataclass
class DataDir:
    """The server's storage root and database, read directly."""

    root: Path

    @property
    def files(self) -> Path:
        return self.root / "files"

    @property
    def db_path(self) -> Path:
        return self.root / "teledrop.db"

    def staging_files(self) -> list[Path]:
        staging = self.files / "staging"
        return sorted(staging.iterdir()) if staging.is_dir() else []

    def blob_files(self) -> dict[str, Path]:
        blobs = self.files / "blobs"
        if not blobs.is_dir():
            return {}
        return {p.name: p for fanout in blobs.iterdir() if fanout.is_dir()
                for p in fanout.iterdir()}

    def blob_path(self, blob_id: str) -> Path:
        return self.files / "blobs" / blob_id[:2] / blob_id

    def records(self) -> list[dict[str, Any]]:
        if not self.db_path.exists():
            return []
        with closing(sqlite3.connect(self.db_path, timeout=10)) as conn:
            conn.row_factory = sqlite3.Row
            try:
                rows = conn.execute("SELECT * FROM drops ORDER BY id").fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):  # no worker has booted yet
                    return []
                raise
        return [dict(row) for row in rows]

    def record(self, slug: str) -> dict[str, Any] | None:
        return next((r for r in self.records() if r["slug"] == slug), None)

    def assert_holds(self, slug: str, content: bytes) -> dict[str, Any]:
        """The drop's record and its blob hold exactly ``content``; the record."""
        record = self.record(slug)
        assert record is not None, f"no record of {slug}"
        assert record["size"] == len(content)
        assert self.blob_path(record["blob_id"]).read_bytes() == content
        return record

    def snapshot(self) -> Snapshot:
        return Snapshot(frozenset(p.name for p in self.staging_files()),
                        frozenset(self.blob_files()),
                        {r["slug"]: r["blob_id"] for r in self.records()})

    def problems(self) -> list[str]:
        """Every way the data dir breaks the invariants: staging debris, a file without a
        record, a record without its file (or with a file of the wrong size)."""
        found = [f"staging debris: {p.name}" for p in self.staging_files()]
        blobs = self.blob_files()
        records = self.records()
        known = {r["blob_id"] for r in records}
        found += [f"file without record: {b}" for b in sorted(set(blobs) - known)]
        for r in records:
            path = blobs.get(r["blob_id"])
            if path is None:
                found.append(f"record without file: {r['slug']} -> {r['blob_id']}")
            elif path.stat().st_size != r["size"]:
                found.append(f"record {r['slug']} says {r['size']} bytes, "
                             f"file has {path.stat().st_size}")
            elif path != self.blob_path(r["blob_id"]):
                found.append(f"blob {r['blob_id']} is not at its fan-out path")
        return found

    def assert_consistent(self, timeout: float = 5.0) -> None:
        """Wait (bounded) for in-flight clean-up to finish, then require no problems."""
        wait_until(lambda: not self.problems(), timeout)
        problems = self.problems()
        assert not problems, f"data dir {self.root}: {problems}"


# --- the server ---------------------------------------------------------------------------

@dataclass
class LiveServer:
    proc: subprocess.Popen[bytes]
    base_url: str
    data: DataDir
    config_path: Path
    env: dict[str, str]
    stdout_path: Path
    stderr_path: Path
    _stopped: bool = field(default=False, repr=False)

    @property
    def master_pid(self) -> int:
        return self.proc.pid

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def address(self) -> str:
        return self.base_url.removeprefix("http://").rsplit(":", 1)[0]

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def access_lines(self) -> list[dict[str, Any]]:
        """teledrop's access log: one JSON object per request the app answered (a request
        whose head never arrived has none), oldest first."""
        lines = []
        for line in self.log().splitlines():
            _, mark, payload = line.partition(ACCESS_MARK)
            if mark:
                try:
                    lines.append(json.loads(payload))
                except ValueError:  # the last line, still being written
                    continue
        return lines

    def worker_pids(self) -> list[int]:
        return children_of(self.master_pid)

    def worker_holding(self, path: Path) -> int | None:
        """The worker that has ``path`` open (the one serving that upload)."""
        target = str(path)
        for pid in self.worker_pids():
            fd_dir = Path(f"/proc/{pid}/fd")
            try:
                links = [os.readlink(fd) for fd in fd_dir.iterdir()]
            except OSError:  # the worker exited, or an fd closed while listing
                continue
            if target in links:
                return pid
        return None

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One HTTP request to this server, never through a proxy from the environment."""
        kwargs.setdefault("timeout", 60)
        with requests.Session() as session:
            session.trust_env = False
            return session.request(method, self.url(path), **kwargs)

    def healthy(self) -> bool:
        try:
            response = self.request("GET", "/healthz", timeout=2)
        except requests.RequestException:
            return False
        return response.status_code == 200 and response.json() == {"status": "ok"}

    def cli(self, *args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run the ``teledrop`` command against this server's config."""
        return subprocess.run([str(TELEDROP_SCRIPT), *args], cwd=REPO, env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def kill(self) -> None:
        """SIGKILL the master and every worker at once (a power cut, an OOM kill of the
        whole group): nothing gets to clean up."""
        pids = [self.master_pid, *self.worker_pids()]
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=STOP_TIMEOUT)
        wait_until(lambda: not any(pid_alive(pid) for pid in pids), STOP_TIMEOUT)
        self._stopped = True

    def stop(self, sig: int = signal.SIGINT, timeout: float = STOP_TIMEOUT) -> int | None:
        """Signal the master and wait; whatever is left of its process group is killed.
        Returns the master's exit status, ``None`` if it had to be killed."""
        if self._stopped:
            return self.proc.returncode
        self._stopped = True
        status: int | None = None
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
            status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            status = None
        finally:
            # The master leads its own session (start_new_session): this reaches its
            # workers too, and nothing else.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        return status


def children_of(pid: int) -> list[int]:
    pids: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            pids += [int(p) for p in children.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return sorted(set(pids))


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def command_for(kind: str, config_path: Path) -> list[str]:
    if kind == "gunicorn":
        return list(GUNICORN_COMMAND)
    if kind == "serve":
        return [str(TELEDROP_SCRIPT), "serve", "--config", str(config_path)]
    raise ValueError(kind)


@contextmanager
def live_server(base_dir: Path, command: str = "gunicorn", env: Mapping[str, str] | None = None,
                entry_points: tuple[str, ...] = (), cwd: Path | None = None, address: str = HOST,
                wrapper: Sequence[str] = (), **sections: Any) -> Iterator[LiveServer]:
    """A running teledrop under gunicorn; stopped when the block ends, even on failure.

    ``sections`` are TOML tables merged over the defaults (``server={"workers": 1}``,
    ``limits={"max_upload_size": "1MiB"}``). ``command`` is ``"gunicorn"`` or ``"serve"``
    (which, unlike gunicorn's config file, runs from any working directory: ``cwd``, by
    default the repository). ``address`` is the one it binds (one of a network namespace's
    own, say, when ``wrapper`` is ``("ip", "netns", "exec", NAME)``: a command that execs the
    server inside what it sets up, so the process started is still the server's master).
    ``entry_points`` names installed plugins the server loads besides the suite's own.
    """
    if entry_points:
        given = (env or {}).get(ENTRY_POINTS_ENV, "")
        env = {**(env or {}), **entry_points_env(*entry_points, *filter(None, given.split(",")))}
    data = DataDir(base_dir / "data")
    server = None
    with ExitStack() as cleanup:
        runtime = cleanup.enter_context(runtime_dir())
        # Registered after the runtime dir, so it runs first: the server stops, whatever
        # happened, before its control socket's directory goes.
        cleanup.callback(lambda: server is not None and server.stop())
        for _attempt in range(3):
            port = free_port()
            config_path = base_dir / "teledrop.toml"
            config_path.write_text(to_toml(config_tables(data.root, port, address, **sections)))
            full_env = process_env(runtime, {"TELEDROP_CONFIG": str(config_path), **(env or {})})
            # `teledrop serve --config F` must find its config by the option alone.
            server_env = {k: v for k, v in full_env.items()
                          if command == "gunicorn" or k != "TELEDROP_CONFIG"}
            stdout_path, stderr_path = base_dir / "server.out", base_dir / "server.err"
            with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
                proc = subprocess.Popen([*wrapper, *command_for(command, config_path)],
                                        cwd=cwd or REPO, env=server_env, stdout=out,
                                        stderr=err, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
            server = LiveServer(proc, f"http://{address}:{port}", data, config_path, full_env,
                                stdout_path, stderr_path)
            up = wait_until(lambda: proc.poll() is not None or server.healthy(), START_TIMEOUT)
            if up and proc.poll() is None:
                break
            server.stop()
            log = server.log()
            if proc.returncode is not None and any(m in log for m in _PORT_TAKEN):
                continue  # someone took the port between free_port() and bind: retry
            raise RuntimeError(f"teledrop did not start (exit {proc.returncode}):\n{log}")
        else:
            raise RuntimeError("no free port after 3 attempts")
        yield server


# --- raw HTTP over a socket ---------------------------------------------------------------

def connect(server: LiveServer, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection((server.address, server.port), timeout=timeout)


def request_head(method: str, path: str, headers: Mapping[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


LAST_CHUNK = b"0\r\n\r\n"


def multipart(boundary: str, filename: str, fields_after: Mapping[str, str] | None = None,
              ) -> tuple[bytes, bytes]:
    """The bytes before and after a file part's content named ``file``."""
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    tail = b"\r\n"
    for name, value in (fields_after or {}).items():
        tail += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                 f"{value}\r\n").encode()
    tail += f"--{boundary}--\r\n".encode()
    return head, tail


def read_response(sock: socket.socket, method: str = "POST",
                  timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of the next response on ``sock``. Its
    buffer may swallow a response that follows: for several, use :func:`read_responses`."""
    sock.settimeout(timeout)
    response = http.client.HTTPResponse(sock, method=method)
    try:
        response.begin()
        body = response.read()
    finally:
        response.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def read_responses(sock: socket.socket, count: int, timeout: float = 30.0,
                   ) -> list[tuple[int, bytes]]:
    """Status and body of the next ``count`` responses on ``sock``, read through one buffer
    so that pipelined responses are not lost to a reader's read-ahead (teledrop's responses
    all carry a Content-Length)."""
    sock.settimeout(timeout)
    responses = []
    with sock.makefile("rb") as stream:
        for _ in range(count):
            status = int(stream.readline().split()[1])
            length = 0
            while (line := stream.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            responses.append((status, stream.read(length)))
    return responses


def send_until_answered(sock: socket.socket, pieces: Iterator[bytes] | list[bytes]) -> None:
    """Send ``pieces`` one by one, stopping early when the server has answered (readable)
    or hung up: a server that refuses a body need not read the rest of it."""
    for piece in pieces:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            return
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            return


def abort(sock: socket.socket, reset: bool) -> None:
    """Close ``sock``; with ``reset`` the kernel sends RST instead of FIN (SO_LINGER 0)."""
    if reset:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
