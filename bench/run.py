"""teledrop's benchmark: throughput and peak worker RSS, each next to a raw baseline
measured in the same run.

    .venv/bin/python bench/run.py [--quick] [--json out.json] [--only 1,2] [--profile]

It starts a real gunicorn (``python -m gunicorn -c conf/gunicorn.conf.py wsgi:app`` from the
repository root, ``TELEDROP_CONFIG`` pointing at a temporary TOML) and the reference servers
of ``bench/baselines.py`` on 127.0.0.1, all with their data under ``bench/results/`` (the
repository's filesystem, git-ignored), and runs these scenarios:

1. multipart upload (``curl -F``) of one file of random bytes;
2. raw ``PUT`` of it, with Content-Length and chunked;
3. full download, and 1,000 random 1 MiB ranges on one keep-alive connection;
4. 1 KiB uploads from 8 concurrent clients (``curl --parallel``), and their downloads;
5. 16 concurrent 64 MiB uploads;
6. peak worker RSS for uploads of 64 MiB, the big size and (without ``--quick``) 4 GiB.

Sizes: 1 GiB, or 256 MiB with ``--quick`` (which also skips 4 GiB). Each figure is the
median of ``--reps`` runs, teledrop and its baselines interleaved; ratios
(teledrop / baseline) are the headline, since this machine is shared and noisy. Peak RSS is
``VmHWM`` of the worker that served the request (the one whose CPU time grew most), reset
through ``/proc/<pid>/clear_refs`` before each run. Every data file is removed at the end;
only the JSON report stays. See ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blake3

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.live_server import children_of  # noqa: E402 - the repository is on the path now

BENCH = REPO / "bench"
RESULTS = BENCH / "results"
HOST = "127.0.0.1"
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
PY = sys.executable
GUNICORN = (PY, "-m", "gunicorn")
#: gunicorn settings teledrop uses (teledrop/server.py), for the Flask references.
GUNICORN_LIKE_TELEDROP = ("-w", "2", "-k", "gthread", "--threads", "8", "--timeout", "60",
                          "--keep-alive", "5", "--access-logfile", "-", "--error-logfile", "-")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
#: No single transfer here may take longer: a stuck run fails instead of hanging.
TRANSFER_TIMEOUT = 300.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
SMALL_BOUNDARY = "teledrop-bench-boundary"


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


# --- processes and their memory -----------------------------------------------------------

def proc_status(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` figure in KiB (0 once the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def cpu_times(pid: int) -> tuple[float, float, int]:
    """User and system CPU seconds of a process (all its threads), and its minor page
    faults: a count that machine noise does not change, unlike the seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0, 0.0, 0
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK, int(fields[7])


def reset_peak(pid: int) -> None:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except (FileNotFoundError, ProcessLookupError):
        pass



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


@dataclass
class Usage:
    """What each serving process of a server did during one run."""

    peak_kib: dict[int, int]
    cpu_s: dict[int, float]
    user_s: dict[int, float]
    faults: dict[int, int]

    @property
    def serving_pid(self) -> int:
        return max(self.cpu_s, key=lambda pid: self.cpu_s[pid])

    @property
    def serving_peak_mib(self) -> float:
        return self.peak_kib[self.serving_pid] / KiB

    @property
    def total_cpu_s(self) -> float:
        return sum(self.cpu_s.values())

    @property
    def total_user_s(self) -> float:
        return sum(self.user_s.values())

    @property
    def total_faults(self) -> int:
        return sum(self.faults.values())


@contextmanager
def watching(server: Server) -> Iterator[list[Usage]]:
    """Reset the peak RSS of ``server``'s processes; on exit, append their :class:`Usage`."""
    pids = server.pids()
    out: list[Usage] = []
    for pid in pids:
        reset_peak(pid)
    before = {pid: cpu_times(pid) for pid in pids}
    yield out
    after = {pid: cpu_times(pid) for pid in pids}
    out.append(Usage({pid: proc_status(pid, "VmHWM") for pid in pids},
                     {pid: after[pid][0] + after[pid][1] - before[pid][0] - before[pid][1]
                      for pid in pids},
                     {pid: after[pid][0] - before[pid][0] for pid in pids},
                     {pid: after[pid][2] - before[pid][2] for pid in pids}))


# --- clients ------------------------------------------------------------------------------

@dataclass
class Reply:
    status: int
    seconds: float
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def curl(args: list[str], timeout: float = TRANSFER_TIMEOUT, keep_body: bool = True) -> Reply:
    """One curl transfer; its own timing (``time_total``), not process start-up. A body
    not kept goes to /dev/null, so that a download is not slowed by the client's disk."""
    with tempfile.NamedTemporaryFile(dir=RESULTS, prefix="curl-", delete=False) as body_file:
        body_path = body_file.name
    try:
        done = subprocess.run(["curl", "-sS", "--noproxy", "*", "--max-time", str(int(timeout)),
                               "-o", body_path if keep_body else os.devnull,
                               "-w", "%{http_code} %{time_total}", *args],
                              capture_output=True, text=True, timeout=timeout + 10, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"curl {' '.join(args)} failed: {done.stderr.strip()}")
        status, seconds = done.stdout.split()
        return Reply(int(status), float(seconds), Path(body_path).read_bytes())
    finally:
        os.unlink(body_path)


def curl_many(args: list[str], timeout: float = TRANSFER_TIMEOUT) -> tuple[list[str], float]:
    """``curl --parallel`` over many URLs: stdout lines and the wall time."""
    start = time.perf_counter()
    done = subprocess.run(["curl", "-sS", "--noproxy", "*", "--no-progress-meter", "-Z",
                           "--parallel-max", "8", "--max-time", str(int(timeout)), *args],
                          capture_output=True, text=True, timeout=timeout + 10, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"curl --parallel failed: {done.stderr.strip()[:500]}")
    return done.stdout.splitlines(), seconds


def concurrent_curls(argv_list: list[list[str]], timeout: float = TRANSFER_TIMEOUT,
                     ) -> tuple[list[Reply], float]:
    """Several curl processes at once; their replies and the wall time of them all."""
    paths = [RESULTS / f"curl-{uuid.uuid4().hex}" for _ in argv_list]
    start = time.perf_counter()
    procs = [subprocess.Popen(["curl", "-sS", "--noproxy", "*", "--max-time", str(int(timeout)),
                               "-o", str(path), "-w", "%{http_code} %{time_total}", *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for args, path in zip(argv_list, paths)]
    try:
        outputs = [p.communicate(timeout=timeout + 10) for p in procs]
        seconds = time.perf_counter() - start
        replies = []
        for proc, (out, err), path in zip(procs, outputs, paths):
            if proc.returncode != 0:
                raise RuntimeError(f"curl failed: {err.strip()}")
            status, took = out.split()
            replies.append(Reply(int(status), float(took), path.read_bytes()))
        return replies, seconds
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for path in paths:
            path.unlink(missing_ok=True)


def send_body(port: int, method: str, target: str, headers: dict[str, str], path: Path,
              repeat: int, head: bytes = b"", tail: bytes = b"",
              timeout: float = TRANSFER_TIMEOUT) -> Reply:
    """One request whose body is ``head``, ``path`` repeated ``repeat`` times, then
    ``tail``, sent with ``sendfile``: sizes past the payload files on disk, no client-side
    copy."""
    file_size = path.stat().st_size
    length = len(head) + file_size * repeat + len(tail)
    request = (f"{method} {target} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
               + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
               + f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode()
    start = time.perf_counter()
    with socket.create_connection((HOST, port), timeout=timeout) as sock, open(path, "rb") as f:
        sock.sendall(request + head)
        for _ in range(repeat):
            sock.sendfile(f, 0, file_size)
        sock.sendall(tail)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
    return Reply(response.status, time.perf_counter() - start, body, dict(response.getheaders()))


def send_multipart(port: int, path: Path, repeat: int, timeout: float = TRANSFER_TIMEOUT,
                   boundary: str | None = None) -> Reply:
    """``POST /`` a multipart body whose file part is ``path`` repeated ``repeat`` times."""
    boundary = boundary or uuid.uuid4().hex
    part_head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                 f"filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                 ).encode()
    return send_body(port, "POST", "/", {"Accept": "application/json", "Content-Type":
                                         f"multipart/form-data; boundary={boundary}"},
                     path, repeat, part_head, f"\r\n--{boundary}--\r\n".encode(), timeout)


def range_reads(port: int, path: str, size: int, count: int, span: int, check: Path) -> float:
    """``count`` random ``span``-byte ranges on one keep-alive connection; seconds taken.
    The first range is compared with the same bytes of ``check``."""
    rng = random.Random(4)
    buffer = bytearray(span)
    view = memoryview(buffer)
    conn = http.client.HTTPConnection(HOST, port, timeout=TRANSFER_TIMEOUT)
    try:
        start = time.perf_counter()
        for i in range(count):
            first = rng.randrange(0, size - span + 1)
            conn.request("GET", path, headers={"Range": f"bytes={first}-{first + span - 1}"})
            response = conn.getresponse()
            got = 0
            while got < span and (n := response.readinto(view[got:])):
                got += n
            if response.status != 206 or got != span or response.read():
                raise RuntimeError(f"range {first}: status {response.status}, {got} bytes")
            if i == 0:
                with open(check, "rb") as f:
                    f.seek(first)
                    if f.read(span) != buffer:
                        raise RuntimeError("a ranged download returned the wrong bytes")
        return time.perf_counter() - start
    finally:
        conn.close()


def http_delete(port: int, slug: str, token: str) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        conn.request("DELETE", f"/{slug}", headers={"X-Delete-Token": token})
        response = conn.getresponse()
        response.read()
        if response.status != 204:
            raise RuntimeError(f"DELETE /{slug}: {response.status}")
    finally:
        conn.close()


# --- the run ------------------------------------------------------------------------------

@dataclass
class Plan:
    big: int
    rss_sizes: list[int]
    reps: int
    settle: float = 1.0
    ranges: int = 1000
    range_span: int = MiB
    small_count: int = 2000
    concurrent: int = 16
    concurrent_size: int = 64 * MiB


@dataclass
class Measure:
    """One figure for one subject over several runs."""

    unit: str
    cpu_unit: str = "s/GiB"
    values: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    user_s: list[float] = field(default_factory=list)
    faults: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def value(self) -> float:
        return statistics.median(self.values)

    def add_cpu(self, usage: Usage, per: float) -> None:
        """Server CPU of one run, scaled to ``cpu_unit`` (``per`` runs of it per unit)."""
        self.cpu_s.append(usage.total_cpu_s * per)
        self.user_s.append(usage.total_user_s * per)
        self.faults.append(usage.total_faults * per)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"unit": self.unit, "median": round(self.value, 1),
                               "runs": [round(v, 1) for v in self.values]}
        if self.rss_mib:
            out["peak_rss_mib"] = round(max(self.rss_mib), 1)
        if self.cpu_s:
            out["server_cpu"] = round(statistics.median(self.cpu_s), 2)
            out["server_user_cpu"] = round(statistics.median(self.user_s), 2)
            out["server_minor_faults"] = round(statistics.median(self.faults))
            out["server_cpu_unit"] = self.cpu_unit
        return out | self.extra


@dataclass
class Comparison:
    baseline: str
    target: float | None = None  # teledrop / baseline must reach this
    note: str = ""


@dataclass
class Scenario:
    key: str
    title: str
    teledrop: Measure
    baselines: dict[str, Measure] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def ratio(self, name: str) -> float:
        return self.teledrop.value / self.baselines[name].value

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "title": self.title, "teledrop": self.teledrop.as_json(),
            "baselines": {name: m.as_json() for name, m in self.baselines.items()},
            "ratios": {c.baseline: {"ratio": round(self.ratio(c.baseline), 3),
                                    "target": c.target} for c in self.comparisons},
            "notes": self.notes,
        }


class Bench:
    def __init__(self, plan: Plan, work: Path, server_env: dict[str, str]) -> None:
        self.plan = plan
        self.work = work
        self.data = work / "data"
        self.scratch = work / "scratch"  # the baselines write here: same filesystem
        self.runtime = work / "rt"
        for d in (self.data, self.scratch, self.runtime):
            d.mkdir(parents=True)
        self.server_env = server_env
        self.servers: dict[str, Server] = {}
        self.scenarios: list[Scenario] = []
        self.payload = work / "payload.bin"
        self.chunk_file = work / "payload-64m.bin"
        self.small = work / "small.bin"
        self.small_form = work / "small.form"

    # servers ----------------------------------------------------------------------------

    def base_env(self, name: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TELEDROP_", "BENCH_")) and k.lower() not in
               ("http_proxy", "https_proxy", "all_proxy")}
        # gunicorn's control socket lives there: one directory per server, so that no
        # server takes over another's socket.
        runtime = self.runtime / name
        runtime.mkdir(exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(runtime)
        return env | extra

    def teledrop_server(self) -> Server:
        port = free_port()
        config = self.work / "teledrop.toml"
        config.write_text(
            f'[server]\nbind = "{HOST}:{port}"\nworkers = 2\nthreads = 8\n\n'
            f'[limits]\nmax_upload_size = "16GiB"\n\n'
            f'[plugins.local_storage]\nroot = "{self.data / "files"}"\n\n'
            f'[plugins.sqlite_meta]\npath = "{self.data / "teledrop.db"}"\n')
        return Server("teledrop", [*GUNICORN, "-c", "conf/gunicorn.conf.py", "wsgi:app"], port,
                      self.work / "teledrop.log",
                      self.base_env("teledrop", TELEDROP_CONFIG=str(config), **self.server_env),
                      workers=2)

    def flask_reference(self, name: str, factory: str) -> Server:
        port = free_port()
        return Server(name, [*GUNICORN, "--chdir", str(BENCH), "-b", f"{HOST}:{port}",
                             *GUNICORN_LIKE_TELEDROP, f"baselines:{factory}()"],
                      port, self.work / f"{name}.log",
                      # werkzeug spools into tempfile's directory: the same disk as teledrop
                      self.base_env(name, TMPDIR=str(self.scratch),
                                    BENCH_SPOOL_DIR=str(self.scratch)), workers=2)

    def python_reference(self, name: str, *args: str) -> Server:
        port = free_port()
        return Server(name, [PY, str(BENCH / "baselines.py"), *args, "--port", str(port)],
                      port, self.work / f"{name}.log", self.base_env(name))

    def start(self, server: Server) -> Server:
        self.servers[server.name] = server.start()
        return server

    def restart_teledrop(self) -> Server:
        self.servers.pop("teledrop").stop()
        return self.warm(self.start(self.teledrop_server()))

    def warm(self, server: Server) -> Server:
        """A few requests, so that what happens once per worker (imports, connections,
        first buffers) is not counted against the first measured run."""
        for _ in range(6):
            reply = curl(["-H", "Accept: application/json", "-F", f"file=@{self.small}",
                          server.url()])
            drop = json.loads(reply.body)
            curl([server.url(f"/{drop['slug']}")], keep_body=False)
            http_delete(server.port, drop["slug"], drop["delete_token"])
        reply = send_multipart(server.port, self.chunk_file, 1)
        self.delete_reply(reply)
        return server

    def stop_all(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()

    # helpers ----------------------------------------------------------------------------

    def make_payloads(self) -> None:
        log(f"writing {size_label(self.plan.big)} of random bytes")
        block = os.urandom(self.plan.concurrent_size)
        self.chunk_file.write_bytes(block)
        with open(self.payload, "wb") as f:
            for _ in range(self.plan.big // len(block)):
                # each block differs: nothing below could recognise repeated content
                f.write(blake3.blake3(f.tell().to_bytes(8, "big")).digest(length=len(block)))
            f.flush()
            os.fsync(f.fileno())
        self.small.write_bytes(os.urandom(KiB))
        # curl --parallel sends an empty body for all but one transfer of a -F form (curl
        # 7.88): the small uploads send this ready-made form with --data-binary instead.
        self.small_form.write_bytes(
            f"--{SMALL_BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"small.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
            + self.small.read_bytes() + f"\r\n--{SMALL_BOUNDARY}--\r\n".encode())

    def delete_reply(self, reply: Reply) -> None:
        if reply.status != 201:
            raise RuntimeError(f"teledrop answered {reply.status}: {reply.body[:300]!r}")
        drop = json.loads(reply.body)
        http_delete(self.servers["teledrop"].port, drop["slug"], drop["delete_token"])

    def settle(self) -> None:
        """Let the previous run's deletion and writeback finish, so that every upload run
        starts from the same state (``--settle``; docs/performance.md says why it matters
        on this VM)."""
        time.sleep(self.plan.settle)

    def check_reply(self, subject: str, reply: Reply, measure: Measure | None = None) -> None:
        """Delete what teledrop stored; note the fsync time a receive baseline reports."""
        if subject == "teledrop":
            self.delete_reply(reply)
            return
        if reply.status != 201:
            raise RuntimeError(f"{subject} answered {reply.status}: {reply.body[:300]!r}")
        fields = reply.body.split()
        if measure is not None and subject.startswith("receive") and len(fields) == 3:
            measure.extra.setdefault("fsync_s", []).append(float(fields[2]))

    def run_upload(self, subject: str, measure: Measure, action: Callable[[Server], Reply],
                   size: int) -> None:
        server = self.servers[subject]
        self.settle()
        with watching(server) as usage:
            reply = action(server)
        self.check_reply(subject, reply, measure)
        measure.values.append(mib(size) / reply.seconds)
        measure.rss_mib.append(usage[0].serving_peak_mib)
        measure.add_cpu(usage[0], GiB / size)

    def interleaved(self, subjects: dict[str, Callable[[], None]]) -> None:
        order = list(subjects.items())
        for rep in range(self.plan.reps):
            for _name, run in (order if rep % 2 == 0 else order[::-1]):
                run()

    # scenarios --------------------------------------------------------------------------

    def s1_multipart(self) -> None:
        size = self.plan.big
        sc = Scenario("1", f"multipart upload {size_label(size)} (curl -F)", Measure("MiB/s"),
                      {"receive+write": Measure("MiB/s"), "spool-then-copy": Measure("MiB/s"),
                       "receive+blake3+write": Measure("MiB/s"),
                       "dd conv=fdatasync": Measure("MiB/s"), "blake3": Measure("MiB/s")},
                      [Comparison("receive+write", 0.8), Comparison("spool-then-copy", 3.0),
                       Comparison("receive+blake3+write"), Comparison("dd conv=fdatasync"),
                       Comparison("blake3")])
        form = ["-F", f"file=@{self.payload}"]
        json_form = ["-H", "Accept: application/json", *form]

        def upload(subject: str, measure: Measure, args: list[str]) -> Callable[[], None]:
            return lambda: self.run_upload(subject, measure, lambda s: curl([*args, s.url()]),
                                           size)

        self.interleaved({
            "teledrop": upload("teledrop", sc.teledrop, json_form),
            "receive": upload("receive", sc.baselines["receive+write"], form),
            "spool": upload("spool", sc.baselines["spool-then-copy"], form),
            "receive-hash": upload("receive-hash", sc.baselines["receive+blake3+write"], form),
            "dd": lambda: sc.baselines["dd conv=fdatasync"].values.append(self.dd(size)),
            "blake3": lambda: sc.baselines["blake3"].values.append(self.hash_rate()),
        })
        self.scenarios.append(sc)

    def dd(self, size: int) -> float:
        out = self.scratch / "dd.out"
        self.settle()
        start = time.perf_counter()
        subprocess.run(["dd", f"if={self.payload}", f"of={out}", "bs=1M", "conv=fdatasync",
                        "status=none"], check=True, timeout=TRANSFER_TIMEOUT)
        seconds = time.perf_counter() - start
        out.unlink()
        return mib(size) / seconds

    def hash_rate(self) -> float:
        """blake3 in one thread (as teledrop uses it) over the payload, 1 MiB at a time."""
        hasher = blake3.blake3()
        buffer = bytearray(MiB)
        with open(self.payload, "rb", buffering=0) as f:
            start = time.perf_counter()
            while n := f.readinto(buffer):
                hasher.update(memoryview(buffer)[:n])
            seconds = time.perf_counter() - start
        return mib(self.plan.big) / seconds

    def s2_put(self) -> None:
        size = self.plan.big
        for key, label, extra, target in (
                ("2a", "Content-Length", [], 0.9),
                ("2b", "chunked", ["-H", "Transfer-Encoding: chunked"], 0.8)):
            sc = Scenario(key, f"raw PUT {size_label(size)}, {label} (curl -T)", Measure("MiB/s"),
                          {"receive+write": Measure("MiB/s")},
                          [Comparison("receive+write", target)])
            args = [*extra, "-T", str(self.payload)]

            def put(subject: str, measure: Measure, args: list[str] = args) -> Callable[[], None]:
                headers = ["-H", "Accept: application/json"] if subject == "teledrop" else []
                return lambda: self.run_upload(
                    subject, measure, lambda s: curl([*headers, *args, s.url("/big.bin")]), size)

            self.interleaved({"teledrop": put("teledrop", sc.teledrop),
                              "receive": put("receive", sc.baselines["receive+write"])})
            self.scenarios.append(sc)

    def s3_download(self) -> None:
        size = self.plan.big
        teledrop = self.servers["teledrop"]
        reply = curl(["-H", "Accept: application/json", "-T", str(self.payload),
                      teledrop.url("/big.bin")])
        drop = json.loads(reply.body)
        with sqlite3.connect(self.data / "teledrop.db", timeout=10) as db:
            (blob_id,) = db.execute("SELECT blob_id FROM drops WHERE slug = ?",
                                    (drop["slug"],)).fetchone()
        db.close()
        blob = self.data / "files" / "blobs" / blob_id[:2] / blob_id
        sendfile = self.start(self.python_reference("sendfile", "sendfile", "--file", str(blob)))
        try:
            full = Scenario("3a", f"download {size_label(size)}, full (curl)", Measure("MiB/s"),
                            {"sendfile": Measure("MiB/s")}, [Comparison("sendfile", 0.9)])
            ranged = Scenario("3b", f"{self.plan.ranges} random {size_label(self.plan.range_span)}"
                              " ranges, one connection", Measure("MiB/s"),
                              {"sendfile": Measure("MiB/s")}, [Comparison("sendfile", 0.9)])

            def download(server: Server, measure: Measure) -> Callable[[], None]:
                def run() -> None:
                    with watching(server) as usage:
                        got = curl([server.url(f"/{drop['slug']}")], keep_body=False)
                    if got.status != 200:
                        raise RuntimeError(f"{server.name} download: {got.status}")
                    measure.values.append(mib(size) / got.seconds)
                    measure.rss_mib.append(usage[0].serving_peak_mib)
                    measure.add_cpu(usage[0], GiB / size)
                return run

            def ranges(server: Server, measure: Measure) -> Callable[[], None]:
                def run() -> None:
                    with watching(server) as usage:
                        seconds = range_reads(server.port, f"/{drop['slug']}", size,
                                              self.plan.ranges, self.plan.range_span, self.payload)
                    measure.values.append(mib(self.plan.ranges * self.plan.range_span) / seconds)
                    measure.extra.setdefault("req_s", []).append(round(self.plan.ranges / seconds))
                    measure.rss_mib.append(max(usage[0].peak_kib.values()) / KiB)
                    measure.add_cpu(usage[0], GiB / (self.plan.ranges * self.plan.range_span))
                return run

            self.interleaved({"teledrop": download(teledrop, full.teledrop),
                              "sendfile": download(sendfile, full.baselines["sendfile"])})
            self.interleaved({"teledrop": ranges(teledrop, ranged.teledrop),
                              "sendfile": ranges(sendfile, ranged.baselines["sendfile"])})
            self.scenarios += [full, ranged]
        finally:
            self.servers.pop("sendfile").stop()
            http_delete(teledrop.port, drop["slug"], drop["delete_token"])

    def s4_small(self) -> None:
        n = self.plan.small_count
        teledrop, hello = self.servers["teledrop"], self.servers["hello"]
        up = Scenario("4a", f"{n} uploads of 1 KiB, 8 concurrent clients",
                      Measure("uploads/s", "ms/req"),
                      {"flask hello POST": Measure("req/s", "ms/req")},
                      [Comparison("flask hello POST")])
        down = Scenario("4b", f"{n} downloads of 1 KiB, 8 concurrent clients",
                        Measure("downloads/s", "ms/req"),
                        {"flask hello GET": Measure("req/s", "ms/req")},
                        [Comparison("flask hello GET")])
        links: list[str] = []

        def post(server: Server, measure: Measure) -> Callable[[], None]:
            def run() -> None:
                with watching(server) as usage:
                    lines, seconds = curl_many([
                        "--data-binary", f"@{self.small_form}",
                        "-H", f"Content-Type: multipart/form-data; boundary={SMALL_BOUNDARY}",
                        "-w", "%{http_code}\\n", server.url(f"/?[1-{n}]")])
                codes = Counter(line for line in lines if line.isdigit())
                if codes != {"201": n}:
                    raise RuntimeError(f"{server.name}: small uploads answered {dict(codes)}")
                if server is teledrop:
                    links[:] = [line for line in lines if line.startswith("http")]
                measure.values.append(n / seconds)
                measure.rss_mib.append(max(usage[0].peak_kib.values()) / KiB)
                measure.add_cpu(usage[0], 1000 / n)
            return run

        def get(server: Server, measure: Measure) -> Callable[[], None]:
            def run() -> None:
                config = self.work / "urls.curlrc"
                urls = links if server is teledrop else [server.url(f"/f{i}") for i in range(n)]
                config.write_text("".join(f'url = "{u}"\noutput = "/dev/null"\n' for u in urls))
                with watching(server) as usage:
                    lines, seconds = curl_many(["-K", str(config), "-w", "%{http_code}\\n"])
                codes = Counter(lines)
                if codes != {"200": n}:
                    raise RuntimeError(f"{server.name}: small downloads answered {dict(codes)}")
                measure.values.append(n / seconds)
                measure.rss_mib.append(max(usage[0].peak_kib.values()) / KiB)
                measure.add_cpu(usage[0], 1000 / n)
            return run

        self.interleaved({"teledrop": post(teledrop, up.teledrop),
                          "hello": post(hello, up.baselines["flask hello POST"])})
        # the links of the last teledrop run: small drops stay until the run's data goes
        self.interleaved({"teledrop": get(teledrop, down.teledrop),
                          "hello": get(hello, down.baselines["flask hello GET"])})
        self.scenarios += [up, down]

    def s5_concurrent(self) -> None:
        count, size = self.plan.concurrent, self.plan.concurrent_size
        sc = Scenario("5", f"{count} concurrent uploads of {size_label(size)} (curl -F)",
                      Measure("MiB/s"), {"receive+write": Measure("MiB/s")},
                      [Comparison("receive+write")])

        def run(subject: str, measure: Measure) -> Callable[[], None]:
            def go() -> None:
                server = self.servers[subject]
                accept = ["-H", "Accept: application/json"] if subject == "teledrop" else []
                argv = [[*accept, "-F", f"file=@{self.chunk_file}", server.url()]] * count
                self.settle()
                with watching(server) as usage:
                    replies, seconds = concurrent_curls(argv)
                for reply in replies:
                    self.check_reply(subject, reply)
                measure.values.append(mib(size) * count / seconds)
                measure.rss_mib.append(max(usage[0].peak_kib.values()) / KiB)
                measure.extra.setdefault("peak_rss_mib_per_worker", []).append(
                    [round(kib / KiB, 1) for kib in usage[0].peak_kib.values()])
                measure.add_cpu(usage[0], GiB / (size * count))
            return go

        self.interleaved({"teledrop": run("teledrop", sc.teledrop),
                          "receive": run("receive", sc.baselines["receive+write"])})
        single = next((s for s in self.scenarios if s.key == "1"), None)
        if single is not None:
            sc.baselines["teledrop single upload (1)"] = single.teledrop
            sc.comparisons.append(Comparison("teledrop single upload (1)", 0.8))
        self.scenarios.append(sc)

    def s6_memory(self) -> None:
        # A fresh server: what earlier scenarios left in the allocator is not counted here.
        teledrop = self.restart_teledrop()
        self.servers.pop("receive").stop()
        self.start(self.python_reference("receive", "receive", "--dir", str(self.scratch)))
        unit = self.chunk_file.stat().st_size
        idle = {pid: proc_status(pid, "VmRSS") / KiB for pid in teledrop.pids()}
        for size in self.plan.rss_sizes:
            sc = Scenario(f"6-{size_label(size).replace(' ', '')}",
                          f"peak worker RSS, multipart upload {size_label(size)}", Measure("MiB"),
                          {"receive+write": Measure("MiB")}, [Comparison("receive+write")])
            for subject, measure in (("teledrop", sc.teledrop),
                                     ("receive", sc.baselines["receive+write"])):
                server = self.servers[subject]
                self.settle()
                with watching(server) as usage:
                    reply = send_multipart(server.port, self.chunk_file, size // unit)
                self.check_reply(subject, reply)
                peak = usage[0].serving_peak_mib
                measure.values.append(peak)
                measure.rss_mib.append(peak)
                measure.extra["mib_s"] = round(mib(size) / reply.seconds, 1)
            sc.notes.append("teledrop worker RSS before the uploads (MiB): "
                            + ", ".join(f"{v:.1f}" for v in idle.values()))
            sc.notes.append("bare Flask 'hello' worker RSS, the Python + Flask floor (MiB): "
                            + ", ".join(f"{proc_status(pid, 'VmRSS') / KiB:.1f}"
                                        for pid in self.servers["hello"].pids()))
            self.scenarios.append(sc)

    def profile(self) -> dict[str, Any]:
        """py-spy over teledrop's workers during one multipart and one PUT upload of the
        big size, and during 1 KiB uploads (not counted in the figures): where the
        workers' time goes."""
        pyspy = shutil.which("py-spy", path=f"{Path(PY).parent}:{os.environ.get('PATH', '')}")
        if pyspy is None:
            log("--profile: py-spy is not installed (pip install py-spy)")
            return {}
        teledrop = self.servers["teledrop"]
        json_accept = ["-H", "Accept: application/json"]

        def big(args: list[str], path: str) -> Callable[[], float]:
            def run() -> float:
                reply = curl([*json_accept, *args, teledrop.url(path)])
                self.check_reply("teledrop", reply)
                return reply.seconds
            return run

        def small() -> float:
            _lines, seconds = curl_many([
                "--data-binary", f"@{self.small_form}",
                "-H", f"Content-Type: multipart/form-data; boundary={SMALL_BOUNDARY}",
                "-w", "%{http_code}\\n", teledrop.url(f"/?[1-{self.plan.small_count}]")])
            return seconds

        found: dict[str, Any] = {}
        for label, action in (("multipart", big(["-F", f"file=@{self.payload}"], "/")),
                              ("put", big(["-T", str(self.payload)], "/big.bin")),
                              ("small uploads", small)):
            out = RESULTS / f"profile-{label.replace(' ', '-')}.txt"
            with open(self.work / "py-spy.log", "ab") as spy_log:
                spy = subprocess.Popen([pyspy, "record", "-p", str(teledrop.proc.pid), "-s",
                                        "-r", "250", "-f", "raw", "--nonblocking", "-o", str(out)],
                                       stdout=spy_log, stderr=spy_log)
            try:
                time.sleep(1.0)  # attaching to every worker takes a moment
                self.settle()
                seconds = action()
            finally:
                spy.send_signal(signal.SIGINT)
                try:
                    spy.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    spy.kill()
                    spy.wait()
            if out.exists():
                found[label] = {"seconds": round(seconds, 2), "stacks": str(out),
                                "top_self": top_frames(out)}
        return found

    # report -----------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        return {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                        "python": platform.python_version(),
                        "mem_gib": round(os.sysconf("SC_PAGE_SIZE")
                                         * os.sysconf("SC_PHYS_PAGES") / GiB, 1)},
            "plan": {"big": self.plan.big, "rss_sizes": self.plan.rss_sizes,
                     "reps": self.plan.reps, "settle_s": self.plan.settle,
                     "server_env": self.server_env},
            "scenarios": [sc.as_json() for sc in self.scenarios],
        }


def top_frames(path: Path, count: int = 12) -> list[tuple[float, str]]:
    """Self time per function (line numbers merged) from py-spy's raw output, in percent
    of the samples taken while a worker thread was running."""
    self_time: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        leaf = stack.split(";")[-1]
        name, _, where = leaf.partition(" (")
        self_time[f"{name} ({where.split(':')[0].rstrip(')')})"] += int(n)
        total += int(n)
    return [(round(100 * n / total, 1), frame) for frame, n in self_time.most_common(count)]


def cpu_cell(m: Measure) -> str:
    if not m.cpu_s:
        return ""
    return f"{statistics.median(m.cpu_s):.2f} ({statistics.median(m.user_s):.2f}) {m.cpu_unit}"


def table(scenarios: list[Scenario]) -> str:
    """One row per (scenario, baseline): teledrop's figure, its server CPU (total, and user
    in brackets) and peak worker RSS, then the baseline's, and the ratio
    teledrop / baseline against the issue's target."""
    head = ("scenario", "teledrop", "CPU", "peak RSS", "baseline", "baseline value", "CPU",
            "ratio", "target")
    rows = [head]
    for sc in scenarios:
        t = sc.teledrop
        mine = (f"{sc.key} {sc.title}", f"{t.value:,.1f} {t.unit}", cpu_cell(t),
                f"{max(t.rss_mib):.1f} MiB" if t.rss_mib else "")
        for comp in sc.comparisons:
            b = sc.baselines[comp.baseline]
            ratio = sc.ratio(comp.baseline)
            target = "" if comp.target is None else \
                f">= {comp.target:g} {'ok' if ratio >= comp.target else 'MISSED'}"
            value = f"{b.value:,.1f} {b.unit}" + (f" ({max(b.rss_mib):.1f} MiB)"
                                                 if b.rss_mib and b is not t else "")
            rows.append((*mine, comp.baseline, value, cpu_cell(b), f"{ratio:.2f}", target))
            mine = ("", "", "", "")
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


SCENARIOS = {"1": Bench.s1_multipart, "2": Bench.s2_put, "3": Bench.s3_download,
             "4": Bench.s4_small, "5": Bench.s5_concurrent, "6": Bench.s6_memory}


def interrupted(signum: int, frame: Any) -> None:
    """SIGTERM ends the run like ^C does: servers stopped, data removed."""
    raise KeyboardInterrupt()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="256 MiB instead of 1 GiB, no 4 GiB")
    parser.add_argument("--json", type=Path, help="where to write the report "
                        "(default: bench/results/bench-<time>.json)")
    parser.add_argument("--only", help="comma-separated scenario numbers, e.g. 1,2")
    parser.add_argument("--reps", type=int, help="runs per figure (default 3)")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds to wait before each upload run (0: back to back)")
    parser.add_argument("--profile", action="store_true",
                        help="also run py-spy over the workers during a multipart upload, a "
                             "PUT and 1 KiB uploads; stacks in bench/results/profile-*.txt")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for teledrop's gunicorn (experiments, e.g. "
                             "MALLOC_MMAP_THRESHOLD_=16777216)")
    args = parser.parse_args(argv)
    if shutil.which("curl") is None:
        parser.error("curl is required")
    big = 256 * MiB if args.quick else GiB
    plan = Plan(big=big, reps=args.reps or 3, settle=args.settle,
                rss_sizes=[64 * MiB, big] + ([] if args.quick else [4 * GiB]))
    only = set(args.only.split(",")) if args.only else set(SCENARIOS)
    server_env = dict(item.split("=", 1) for item in args.env)

    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=RESULTS))
    bench = Bench(plan, work, server_env)
    signal.signal(signal.SIGTERM, interrupted)
    started = time.monotonic()
    try:
        bench.make_payloads()
        log("starting servers")
        bench.start(bench.teledrop_server())
        bench.start(bench.python_reference("receive", "receive", "--dir", str(bench.scratch)))
        bench.start(bench.python_reference("receive-hash", "receive", "--hash",
                                           "--dir", str(bench.scratch)))
        bench.start(bench.flask_reference("spool", "make_spool_app"))
        bench.start(bench.flask_reference("hello", "make_hello_app"))
        bench.warm(bench.servers["teledrop"])
        for key, scenario in SCENARIOS.items():
            if key in only:
                log(f"scenario {key}")
                scenario(bench)
        profile = bench.profile() if args.profile else {}
    except BaseException:
        for name in ("teledrop", "spool"):
            path = work / f"{name}.log"
            if path.exists():
                log(f"--- last lines of {name}.log\n"
                    + "\n".join(path.read_text(errors="replace").splitlines()[-15:]))
        raise
    finally:
        bench.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    report = bench.report()
    report["seconds"] = round(time.monotonic() - started, 1)
    if profile:
        report["profile"] = profile
    out = args.json or RESULTS / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(bench.scenarios))
    for label, found in profile.items():
        print(f"\nprofile, {label} ({found['seconds']} s; self time of worker threads):")
        for percent, frame in found["top_self"]:
            print(f"  {percent:5.1f}%  {frame}")
    print(f"\n{report['seconds']} s; report written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
