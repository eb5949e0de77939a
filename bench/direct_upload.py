"""``teledrop upload`` by direct upload next to boto3's own ``upload_file``, on the same
SeaweedFS, with the same part size and the same number of parts in flight, in one run.

    .venv/bin/python bench/direct_upload.py [--size 1GiB] [--part-size 16MiB] [--parallel 4] [--reps 3]

It starts SeaweedFS and a throwaway PostgreSQL on loopback ports, as the tests do, then a
teledrop host (``teledrop serve``, one worker of eight threads, ``s3_storage`` +
``postgres_meta``) on them, and times, the median of ``--reps`` runs each, interleaved:

- ``teledrop upload FILE --parallel N`` as a process, from its start to the link: the
  creation, every part ``PUT`` straight to the bucket, and the completion, in which the
  host lists the parts, completes the object and reads it once to hash it;
- boto3's ``upload_file`` of the same file with ``multipart_chunksize`` = the part size
  and ``max_concurrency`` = N.

The ratio (teledrop / boto3) is the headline: the machine is shared and noisy. Everything
it starts and stores goes at the end. See ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# The repository is on the path now.
from boto3.s3.transfer import TransferConfig  # noqa: E402

from bench.common import RESULTS  # noqa: E402
from bench.scaleout import log, random_file, servers  # noqa: E402
from teledrop.core.units import format_size, parse_size  # noqa: E402
from tests.live_server import TELEDROP_SCRIPT, LiveServer  # noqa: E402
from tests.support.hosts import SharedBackends, host, shared_backends  # noqa: E402

MiB = 1 << 20


class DirectBench:
    def __init__(self, server: LiveServer, backends: SharedBackends, path: Path,
                 part_size: int, parallel: int, state: Path) -> None:
        self.server, self.backends, self.path = server, backends, path
        self.size = path.stat().st_size
        self.parallel = parallel
        self.state = state
        self.client = backends.endpoint.client()
        self.config = TransferConfig(multipart_threshold=part_size,
                                     multipart_chunksize=part_size, max_concurrency=parallel)

    def teledrop_upload(self) -> float:
        start = time.perf_counter()
        done = subprocess.run(
            [str(TELEDROP_SCRIPT), "upload", str(self.path), "--json", "--server",
             self.server.base_url, "--parallel", str(self.parallel)],
            env={**self.server.env, "XDG_STATE_HOME": str(self.state)},
            capture_output=True, text=True, timeout=3600, check=False)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"teledrop upload failed: {done.stderr[-500:]}")
        drop = json.loads(done.stdout)
        if drop["size"] != self.size:
            raise RuntimeError(f"stored {drop['size']} bytes of {self.size}")
        if "direct-uploads" not in self.server.log():
            raise RuntimeError("the upload did not go by direct upload")
        self.server.request("DELETE", f"/{drop['slug']}",
                            headers={"X-Delete-Token": drop["delete_token"]})
        return seconds

    def boto3_upload(self) -> float:
        start = time.perf_counter()
        self.client.upload_file(str(self.path), self.backends.bucket, "bench/boto3",
                                Config=self.config)
        seconds = time.perf_counter() - start
        self.client.delete_object(Bucket=self.backends.bucket, Key="bench/boto3")
        return seconds


def run(size: int, part_size: int, parallel: int, reps: int) -> dict[str, Any]:
    RESULTS.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="direct-", dir=RESULTS))
    try:
        with servers(work) as (seaweedfs, postgres), shared_backends(
                seaweedfs.endpoint, postgres, format_size(part_size).replace(" ", "")
        ) as backends, host(backends, work / "host",
                            server={"workers": 1, "threads": 8}) as server:
            path = random_file(work / "big.bin", size)
            bench = DirectBench(server, backends, path, part_size, parallel, work / "state")
            teledrop, boto3 = [], []
            for rep in range(reps):  # interleaved, so that both see the same machine
                log(f"run {rep + 1} of {reps}")
                teledrop.append(bench.teledrop_upload())
                boto3.append(bench.boto3_upload())
            rate = size / MiB
            results = {"size": size, "part_size": part_size, "parallel": parallel,
                       "reps": reps,
                       "teledrop upload MiB/s": rate / statistics.median(teledrop),
                       "boto3 upload_file MiB/s": rate / statistics.median(boto3)}
            results["ratio"] = results["teledrop upload MiB/s"] / results["boto3 upload_file MiB/s"]
            return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(results: dict[str, Any]) -> str:
    return "\n".join([
        f"file {format_size(results['size'])}, part size {format_size(results['part_size'])}, "
        f"{results['parallel']} parts at once, median of {results['reps']}",
        f"teledrop upload (direct): {results['teledrop upload MiB/s']:.0f} MiB/s",
        f"boto3 upload_file:        {results['boto3 upload_file MiB/s']:.0f} MiB/s",
        f"ratio teledrop / boto3:   {results['ratio']:.2f}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1GiB"))
    parser.add_argument("--part-size", type=parse_size, default=parse_size("16MiB"))
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    results = run(args.size, args.part_size, args.parallel, args.reps)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
