"""The AWS Lambda runtime for the tests: a handler run by ``awslambdaric`` under the AWS
Lambda Runtime Interface Emulator, with no container.

The emulator is the ``aws-lambda-rie`` binary that ships inside the ``aws-sam-cli`` wheel on
PyPI. At first use ``pip download --no-deps`` fetches that wheel into a cache outside the
repository (``$XDG_CACHE_HOME/teledrop-tests``, else ``~/.cache/teledrop-tests``), only the
binary for this machine's architecture is extracted, and the wheel is thrown away;
``TELEDROP_TEST_LAMBDA_RIE`` names a binary to use instead.

:class:`LambdaEmulator` runs ``aws-lambda-rie python -m awslambdaric module.handler`` with
both of its addresses (the invoke endpoint and the Runtime API the handler's process polls)
on free loopback ports, in an environment of the caller's choosing (nothing of the
caller's ``TELEDROP_*`` settings leaks in), and invokes it the way the Lambda service does:
``POST /2015-03-31/functions/function/invocations`` with the event as JSON.

Fixtures: ``lambda_rie`` (the binary) and ``lambda_emulator``, a factory
``lambda_emulator(handler, env) -> LambdaEmulator`` whose emulators stop after the test.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.services import stop_process
from tests.services.seaweedfs import HOST, _die_with_parent, free_ports
from tests.support.entry_points import is_teledrop_setting

BINARY_ENV = "TELEDROP_TEST_LAMBDA_RIE"
#: On the handler's ``sys.path`` (its working directory is a directory of its own, as a
#: function's is: no ``conf/`` of the repository's is read).
REPO = Path(__file__).resolve().parents[2]
#: The wheel the binary comes from (an exact version, so the cache names what it holds).
RIE_WHEEL = ("aws-sam-cli", "1.170.0")
#: Where the wheel keeps one binary per architecture.
RIE_MEMBER = "samcli/local/rapid/aws-lambda-rie-{arch}"
ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}
INVOKE_PATH = "/2015-03-31/functions/function/invocations"
DOWNLOAD_TIMEOUT = 300.0
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
INVOKE_TIMEOUT = 60.0
#: The emulator's account of each invocation (one line per request).
_REPORT = re.compile(r"REPORT RequestId: (?P<id>\S+)\s+(?:Init Duration: (?P<init>[\d.]+) ms\s+)?"
                     r"Duration: (?P<duration>[\d.]+) ms")


def cache_dir() -> Path:
    """Where downloaded test tools are kept between runs (never inside the repository)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "teledrop-tests"


def machine_architecture() -> str:
    machine = platform.machine().lower()
    if machine not in ARCHITECTURES:
        pytest.fail(f"the Lambda emulator ships for x86_64 and arm64, not {machine}; "
                    f"set {BINARY_ENV} to a binary built for it")
    return ARCHITECTURES[machine]


def pip_download(requirement: str, into: Path) -> Path:
    """The one wheel ``pip download --no-deps`` fetches for ``requirement``."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "--disable-pip-version-check", "--quiet", "-d", str(into), requirement],
        capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT)
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        pytest.fail(f"pip download {requirement} failed ({done.returncode}): "
                    f"{done.stderr.strip()[-2000:]}")
    return wheels[0]


def rie_binary() -> Path:
    """The emulator for this machine: ``$TELEDROP_TEST_LAMBDA_RIE``, else the cached one,
    fetched first if need be. Several sessions may fetch at once: each extracts into a
    directory of its own and renames the binary into place."""
    given = os.environ.get(BINARY_ENV)
    if given:
        return Path(given)
    arch = machine_architecture()
    name, version = RIE_WHEEL
    target = cache_dir() / f"{name}-{version}" / f"aws-lambda-rie-{arch}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        wheel = pip_download(f"{name}=={version}", Path(scratch))
        extracted = Path(scratch) / target.name
        with zipfile.ZipFile(wheel) as archive, archive.open(RIE_MEMBER.format(arch=arch)) as src, \
                open(extracted, "wb") as dst:
            shutil.copyfileobj(src, dst)
        extracted.chmod(0o755)
        os.replace(extracted, target)
    return target


def handler_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The process environment for a handler: the caller's without its teledrop settings
    and proxies (the handler talks to loopback servers only), plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not is_teledrop_setting(k) and not k.lower().endswith("_proxy")}
    return {**env, **extra}


class LambdaEmulator:
    """``aws-lambda-rie`` running ``python -m awslambdaric HANDLER`` on loopback ports."""

    def __init__(self, binary: Path, handler: str, env: Mapping[str, str], base_dir: Path,
                 python: str = sys.executable) -> None:
        self.binary = binary
        self.handler = handler
        self.env = handler_env({"PYTHONPATH": os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH")])), **env})
        self.python = python
        self.log_path = base_dir / "lambda-rie.log"
        self.port, self.runtime_api_port = free_ports(2)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{INVOKE_PATH}"

    def command(self) -> list[str]:
        return [str(self.binary), "--runtime-interface-emulator-address", f"{HOST}:{self.port}",
                "--runtime-api-address", f"{HOST}:{self.runtime_api_port}",
                self.python, "-m", "awslambdaric", self.handler]

    def start(self) -> None:
        """Start the emulator and wait until it takes invocations. The handler's module is
        imported at the first invocation or before it, as the emulator decides: a cold start
        is whatever the first :meth:`invoke` pays on top of a warm one."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=self.env,
                                            cwd=self.log_path.parent, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Lambda emulator did not start within "
                                   f"{START_TIMEOUT:g}s:\n{self.log_tail()}")
            time.sleep(0.02)

    def _listening(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def invoke_raw(self, event: Any, timeout: float = INVOKE_TIMEOUT) -> requests.Response:
        """The emulator's answer to one invocation with ``event`` as its payload."""
        return requests.post(self.url, json=event, timeout=timeout)

    def invoke(self, event: Any, timeout: float = INVOKE_TIMEOUT) -> Any:
        """What the handler returned for ``event`` (the emulator's 200, decoded)."""
        answer = self.invoke_raw(event, timeout)
        if answer.status_code != 200:
            raise AssertionError(f"the emulator answered {answer.status_code}: "
                                 f"{answer.text[:500]}\n{self.log_tail()}")
        return answer.json()

    def reports(self) -> list[dict[str, float]]:
        """The emulator's REPORT line of each invocation so far: ``duration`` and, for the
        one that started the runtime, ``init`` (milliseconds)."""
        return [{key: float(value) for key, value in match.groupdict().items()
                 if key != "id" and value is not None}
                for match in _REPORT.finditer(self.log())]

    def stop(self) -> None:
        process, self.process = self.process, None
        stop_process(process, STOP_TIMEOUT)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:]) or "(no log)"


@pytest.fixture(scope="session")
def lambda_rie() -> Path:
    """The emulator binary (fetched into the cache at first use)."""
    return rie_binary()


@pytest.fixture
def lambda_emulator(lambda_rie: Path, tmp_path: Path,
                    ) -> Iterator[Callable[..., LambdaEmulator]]:
    """``lambda_emulator("module.handler", {"VAR": "value"})``: a started emulator running
    that handler, stopped after the test."""
    started: list[LambdaEmulator] = []

    def start(handler: str, env: Mapping[str, str] | None = None) -> LambdaEmulator:
        base = tmp_path / f"lambda-{len(started)}"
        base.mkdir()
        emulator = LambdaEmulator(lambda_rie, handler, env or {}, base)
        started.append(emulator)
        emulator.start()
        return emulator

    try:
        yield start
    finally:
        for emulator in started:
            emulator.stop()
