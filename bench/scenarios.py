"""The benchmark's scenarios, each teledrop next to its baselines in the same run."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import blake3

from bench.clients import Reply, concurrent_curls, curl, curl_many, http_delete, range_reads, \
    send_multipart
from bench.common import BENCH, GiB, HOST, KiB, MiB, PY, RESULTS, TRANSFER_TIMEOUT, free_port, \
    log, mib, size_label
from bench.measures import Comparison, Measure, Plan, Scenario
from bench.procfs import proc_status, watching
from bench.report import top_frames
from bench.servers import Server

GUNICORN = (PY, "-m", "gunicorn")
#: gunicorn settings teledrop uses (teledrop/server.py), for the Flask references.
GUNICORN_LIKE_TELEDROP = ("-w", "2", "-k", "gthread", "--threads", "8", "--timeout", "60",
                          "--keep-alive", "5", "--access-logfile", "-", "--error-logfile", "-")
SMALL_BOUNDARY = "teledrop-bench-boundary"
#: Read and write sizes the receive baselines are swept over (one run each, before the
#: measured runs): write calls of 1 MiB and more can run several times slower than 256 KiB
#: ones here once freed memory has gone cold, so no single size is the best a plain Python
#: process can do on every machine.
BASELINE_BUFFERS = (64 * KiB, 128 * KiB, 256 * KiB, 512 * KiB, MiB)
#: Block sizes ``dd`` is swept over, for the same reason.
DD_BLOCKS = ("256K", "1M")


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
        #: The receive baselines' read and write size, once :meth:`sweep_receive` ran.
        self.receive_buffer = MiB
        self.receive_sweep: dict[int, float] = {}

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

    def receive_reference(self, name: str, hash: bool, buffer: int) -> Server:
        """``baselines.py receive`` writing ``buffer`` bytes at a time, hashing or not."""
        return self.python_reference(name, "receive", *(["--hash"] if hash else []),
                                     "--buffer", str(buffer), "--dir", str(self.scratch))

    def sweep_receive(self) -> dict[int, float]:
        """One upload of the payload to a hashing receive baseline at each size of
        :data:`BASELINE_BUFFERS`; the fastest becomes :attr:`receive_buffer`, the size every
        receive baseline of the run uses. Returns MiB/s by size."""
        speeds: dict[int, float] = {}
        for buffer in BASELINE_BUFFERS:
            server = self.start(self.receive_reference(f"sweep-{buffer // KiB}k", True, buffer))
            try:
                self.settle()
                reply = curl(["-T", str(self.payload), server.url("/big.bin")])
                self.check_reply(server.name, reply)
                speeds[buffer] = mib(self.plan.big) / reply.seconds
            finally:
                self.servers.pop(server.name).stop()
        self.receive_buffer = max(speeds, key=lambda buffer: speeds[buffer])
        self.receive_sweep = speeds
        log("receive baselines: " + ", ".join(f"{b // KiB} KiB {v:.0f} MiB/s"
                                              for b, v in speeds.items()))
        return speeds

    def start_receive_baselines(self) -> None:
        """``receive`` (no hash) and ``receive-hash`` at the swept size."""
        self.start(self.receive_reference("receive", False, self.receive_buffer))
        self.start(self.receive_reference("receive-hash", True, self.receive_buffer))

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
                      [Comparison("receive+blake3+write", 0.8), Comparison("receive+write"),
                       Comparison("spool-then-copy", 3.0), Comparison("dd conv=fdatasync"),
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
        """``dd conv=fdatasync`` of the payload: MiB/s of the fastest of :data:`DD_BLOCKS`."""
        out = self.scratch / "dd.out"
        best = 0.0
        for block in DD_BLOCKS:
            self.settle()
            start = time.perf_counter()
            subprocess.run(["dd", f"if={self.payload}", f"of={out}", f"bs={block}",
                            "conv=fdatasync", "status=none"], check=True,
                           timeout=TRANSFER_TIMEOUT)
            best = max(best, mib(size) / (time.perf_counter() - start))
            out.unlink()
        return best

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
                          {"receive+blake3+write": Measure("MiB/s"),
                           "receive+write": Measure("MiB/s")},
                          [Comparison("receive+blake3+write", target),
                           Comparison("receive+write")])
            args = [*extra, "-T", str(self.payload)]

            def put(subject: str, measure: Measure, args: list[str] = args) -> Callable[[], None]:
                headers = ["-H", "Accept: application/json"] if subject == "teledrop" else []
                return lambda: self.run_upload(
                    subject, measure, lambda s: curl([*headers, *args, s.url("/big.bin")]), size)

            self.interleaved({
                "teledrop": put("teledrop", sc.teledrop),
                "receive-hash": put("receive-hash", sc.baselines["receive+blake3+write"]),
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
                      Measure("MiB/s"), {"receive+blake3+write": Measure("MiB/s")},
                      [Comparison("receive+blake3+write")])

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
                          "receive-hash": run("receive-hash",
                                              sc.baselines["receive+blake3+write"])})
        single = next((s for s in self.scenarios if s.key == "1"), None)
        if single is not None:
            sc.baselines["teledrop single upload (1)"] = single.teledrop
            sc.comparisons.append(Comparison("teledrop single upload (1)", 0.8))
        self.scenarios.append(sc)

    def s6_memory(self) -> None:
        # A fresh server: what earlier scenarios left in the allocator is not counted here.
        teledrop = self.restart_teledrop()
        self.servers.pop("receive").stop()
        self.start(self.receive_reference("receive", False, self.receive_buffer))
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
            "receive_baselines": {"buffer": self.receive_buffer,
                                  "sweep_mib_s": {str(b): round(v, 1)
                                                  for b, v in self.receive_sweep.items()}},
            "scenarios": [sc.as_json() for sc in self.scenarios],
        }
