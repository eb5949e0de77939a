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

The receive baselines (``bench/baselines.py receive``, with and without blake3) first get
one upload at each read and write size from 64 KiB to 1 MiB; the fastest size is the one
every baseline of the run uses, so that no ratio is flattered by a slow write size. Uploads
are compared against the hashing one, since teledrop hashes.

Sizes: 1 GiB, or 256 MiB with ``--quick`` (which also skips 4 GiB). Each figure is the
median of ``--reps`` runs, teledrop and its baselines interleaved; ratios
(teledrop / baseline) are the headline, since this machine is shared and noisy. Peak RSS is
``VmHWM`` of the worker that served the request (the one whose CPU time grew most), reset
through ``/proc/<pid>/clear_refs`` before each run. Every data file is removed at the end;
only the JSON report stays. See ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# The repository is on the path now.
from bench.common import GiB, MiB, RESULTS, log  # noqa: E402
from bench.measures import Plan  # noqa: E402
from bench.report import table  # noqa: E402
from bench.scenarios import Bench  # noqa: E402


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
        bench.sweep_receive()
        bench.start_receive_baselines()
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
