"""Running the ``teledrop`` command in tests: in-process through click's runner, or as the
installed script, in an environment the caller's settings do not reach."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from teledrop.cli import main
from tests.live_server import TELEDROP_SCRIPT
from tests.support.entry_points import is_teledrop_setting

#: The two ways of running the command (the ``how`` fixture's values).
HOWS = ["runner", "process"]


def _foreign(name: str) -> bool:
    """Caller settings that would change what the command does: its own variables, and
    proxies (requests honours them, and a proxy cannot reach our loopback server)."""
    return is_teledrop_setting(name) or name.lower().endswith("_proxy")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory,
              ) -> None:
    """The caller's settings gone, and unfinished uploads remembered in a directory of the
    test's own (never the user's)."""
    for name in list(os.environ):
        if _foreign(name):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


def state_files() -> list[Path]:
    """The unfinished uploads ``teledrop upload`` remembers (in the test's own directory)."""
    directory = Path(os.environ["XDG_STATE_HOME"]) / "teledrop" / "uploads"
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


def process_env(extra: dict[str, str]) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not _foreign(k)}, **extra}


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def links(self) -> list[str]:
        return self.stdout.splitlines()

    def error_line(self) -> str:
        """The one line a failure prints, after checking it is the only one."""
        lines = self.stderr.splitlines()
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith("Error: "), lines
        return lines[0]


def teledrop(how: str, *args: str, env: dict[str, str] | None = None,
             stdin: bytes | None = None) -> Outcome:
    """``teledrop ARGS`` in-process (``runner``) or as the installed script (``process``)."""
    env = env or {}
    if how == "runner":
        result = CliRunner().invoke(main, list(args), env=env, input=stdin)
        # An exception that escaped the command is a crash, whatever its exit status.
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            result.exc_info
        return Outcome(result.exit_code, result.stdout, result.stderr)
    proc = subprocess.run([str(TELEDROP_SCRIPT), *args], env=process_env(env), input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, timeout=60, check=False)
    outcome = Outcome(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    assert "Traceback" not in outcome.stderr, outcome.stderr
    return outcome


@pytest.fixture(params=HOWS)
def how(request: pytest.FixtureRequest) -> str:
    return request.param


def write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path
