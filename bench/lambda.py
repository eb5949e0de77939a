"""teledrop's AWS Lambda handler under the real runtime: cold start and warm requests.

    .venv/bin/python bench/lambda.py [--reps 5] [--warm 30] [--json F]

It starts SeaweedFS and a throwaway PostgreSQL on loopback ports, as the tests do
(``tests/services``), and measures, the median of ``--reps`` runs each:

1. **import + app build**: a fresh interpreter importing ``teledrop.hosts.aws_lambda``
   with ``AWS_LAMBDA_RUNTIME_API`` set, which is what a Lambda instance's init runs (the
   config read, the plugins loaded, the S3 client built, PostgreSQL connected), next to
   the bare interpreter's start;
2. **cold start**: a new ``aws-lambda-rie python -m awslambdaric`` (the Runtime Interface
   Emulator, ``tests/services/lambda_rie.py``) and its first invocation, ``GET /healthz``,
   timed from the client, from the process's start to the answer;
3. **warm requests** through the same emulator, ``--warm`` of each: ``GET /healthz``, a
   1 KiB ``PUT`` upload, a download (the count and the presigned redirect), ``HEAD``, and
   what a browser asks: the upload page, a drop's landing page and a static script;
4. the **baseline** of the same run: a handler that only echoes its event
   (``tests/support/lambda_echo.py``) under the same emulator, cold and warm, so each
   warm request is also reported as a ratio to the emulator's own round trip.

Every invocation goes over the emulator's HTTP endpoint, as the Lambda service's would.
Everything it starts and stores goes at the end. See ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# The repository is on the path now.
from bench.common import RESULTS  # noqa: E402
from tests.lambda_events import event  # noqa: E402
from tests.services.lambda_rie import LambdaEmulator, handler_env, rie_binary  # noqa: E402
from tests.services.postgres import ThrowawayPostgres, find_bin_dir  # noqa: E402
from tests.services.seaweedfs import SeaweedFS  # noqa: E402
from tests.support.hosts import shared_backends  # noqa: E402
from tests.support.lambda_function import HANDLER, function_env  # noqa: E402

IMPORT = "import teledrop.hosts.aws_lambda as host; assert host._host is not None"
ECHO = "tests.support.lambda_echo.handler"
#: A browser opening a page (Chromium's headers).
BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8",
           "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def timed(run: Callable[[], Any]) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def interpreter(env: dict[str, str], code: str) -> float:
    """Seconds a fresh interpreter takes to run ``code`` and exit."""
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=tempfile.gettempdir(),
                   stdout=subprocess.DEVNULL, timeout=120)
    return time.perf_counter() - began


def cold_start(binary: Path, env: dict[str, str], base: Path, handler: str = HANDLER
               ) -> tuple[float, LambdaEmulator]:
    """A started emulator and how long its first answer took, from its process's start."""
    emulator = LambdaEmulator(binary, handler, env, base)
    began = time.perf_counter()
    emulator.start()
    first = emulator.invoke(event("GET", "/healthz"))
    elapsed = time.perf_counter() - began
    assert first["statusCode"] == 200, first
    return elapsed, emulator


def warm(emulator: LambdaEmulator, count: int) -> dict[str, float]:
    """Median milliseconds of each request, ``count`` of each, on a warm instance."""
    def invoke(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        answer = emulator.invoke(event(method, path, **kwargs))
        assert answer["statusCode"] < 400, answer
        return answer

    created = invoke("PUT", "/bench.bin", body=os.urandom(1024))
    slug = created["body"].strip().rsplit("/", 1)[1]
    requests_ = {
        "GET /healthz": lambda: invoke("GET", "/healthz"),
        "PUT 1 KiB": lambda: invoke("PUT", "/bench.bin", body=os.urandom(1024)),
        "GET /{slug} (302)": lambda: invoke("GET", f"/{slug}"),
        "HEAD /{slug}": lambda: invoke("HEAD", f"/{slug}"),
        "GET / (upload page)": lambda: invoke("GET", "/", headers=BROWSER),
        "GET /{slug} (landing page)": lambda: invoke("GET", f"/{slug}", headers=BROWSER),
        "GET /static/page.js": lambda: invoke("GET", "/static/page.js"),
    }
    return {name: ms(statistics.median(timed(run) for _ in range(count)))
            for name, run in requests_.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="cold starts measured")
    parser.add_argument("--warm", type=int, default=30, help="warm requests of each kind")
    parser.add_argument("--json", type=Path, help="where to write the results")
    args = parser.parse_args()
    binary = rie_binary()
    bin_dir = find_bin_dir()
    if bin_dir is None:
        sys.exit("no PostgreSQL binaries (Debian's postgresql package)")
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-lambda-")))
        log("starting SeaweedFS and PostgreSQL ...")
        seaweed = SeaweedFS(scratch / "seaweedfs")
        seaweed.start()
        stack.callback(seaweed.stop)
        postgres = ThrowawayPostgres.launch(bin_dir)
        stack.callback(postgres.remove)
        backends = stack.enter_context(shared_backends(seaweed.endpoint, postgres))
        env = function_env(backends.host_sections())

        bare = statistics.median(interpreter(handler_env({}), "pass") for _ in range(args.reps))
        init_env = handler_env({**env, "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9"})
        build = statistics.median(interpreter(init_env, IMPORT) for _ in range(args.reps))
        log(f"import + app build: {ms(build)} ms (bare interpreter {ms(bare)} ms)")

        colds, emulator = [], None
        for rep in range(args.reps):
            if emulator is not None:
                emulator.stop()
            base = scratch / f"lambda-{rep}"
            base.mkdir()
            elapsed, emulator = cold_start(binary, env, base)
            colds.append(elapsed)
            log(f"cold start {rep + 1}: {ms(elapsed)} ms")
        assert emulator is not None
        stack.callback(emulator.stop)
        warm_ms = warm(emulator, args.warm)
        for name, value in warm_ms.items():
            log(f"warm {name}: {value} ms")

        base = scratch / "echo"
        base.mkdir()
        echo_cold, echo = cold_start(binary, handler_env({}), base, ECHO)
        stack.callback(echo.stop)
        echo_ms = ms(statistics.median(timed(lambda: echo.invoke(event("GET", "/healthz")))
                                       for _ in range(args.warm)))
        log(f"baseline echo handler: cold {ms(echo_cold)} ms, warm {echo_ms} ms")

    results = {"reps": args.reps, "warm_count": args.warm, "load_average": os.getloadavg(),
               "interpreter_ms": ms(bare), "import_and_build_ms": ms(build),
               "cold_start_ms": ms(statistics.median(colds)),
               "cold_starts_ms": [ms(value) for value in colds], "warm_ms": warm_ms,
               "echo_cold_start_ms": ms(echo_cold), "echo_warm_ms": echo_ms}
    print(f"load average {results['load_average'][0]:.1f}\n\n"
          "| measure (median) | ms | × baseline |\n| --- | ---: | ---: |\n"
          f"| bare interpreter start | {results['interpreter_ms']} | |\n"
          f"| import + app build (fresh interpreter) | {results['import_and_build_ms']} | "
          f"{build / bare:.1f} × bare interpreter |\n"
          f"| cold start: emulator start to first answer | {results['cold_start_ms']} | "
          f"{statistics.median(colds) / echo_cold:.1f} × echo handler's |\n"
          f"| baseline: echo handler, cold / warm | {ms(echo_cold)} / {echo_ms} | |\n"
          + "".join(f"| warm {name} | {value} | {value / echo_ms:.1f} × echo |\n"
                    for name, value in warm_ms.items()))
    target = args.json or RESULTS / f"lambda-{time.strftime('%Y%m%d-%H%M%S')}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2) + "\n")
    log(f"results: {target}")


if __name__ == "__main__":
    main()
