"""Starting a server that should refuse to: its exit status and stderr, and the check
that it refused with exactly one line."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any
from tests.live_server import (
    REPO,
    command_for,
    config_tables,
    free_port,
    merged,
    process_env,
    runtime_dir,
    to_toml,
)


#: A guard against a start-up that hangs instead of failing (a failing one ends in about a
#: second); not a speed requirement.
EXIT_TIMEOUT = 30.0


def run_to_exit(command: list[str], env: dict[str, str]) -> tuple[int | None, str]:
    """Run a server command that should refuse to start; its exit status (``None`` if it
    kept running past the timeout, in which case it is killed) and its stderr."""
    proc = subprocess.Popen(command, cwd=REPO, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=EXIT_TIMEOUT)
        return proc.returncode, stderr
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=EXIT_TIMEOUT)
        return None, stderr


def assert_refused_with_one_line(status: int | None, stderr: str, *names: str) -> None:
    assert status is not None, f"still running after {EXIT_TIMEOUT}s:\n{stderr[-3000:]}"
    assert status != 0
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("teledrop: "), stderr[-3000:]
    for name in names:
        assert name in lines[0]


def start_refused(tmp_path: Path, command: str, sections: dict[str, Any],
                  env: dict[str, str] | None = None) -> tuple[Path, int | None, str]:
    data = tmp_path / "data"
    config_path = tmp_path / "teledrop.toml"
    config_path.write_text(to_toml(merged(config_tables(data, free_port()), sections)))
    # gunicorn finds the config through TELEDROP_CONFIG, `teledrop serve` through --config.
    extra = {"TELEDROP_CONFIG": str(config_path)} if command == "gunicorn" else {}
    with runtime_dir() as runtime:
        full_env = process_env(runtime, {**extra, **(env or {})})
        status, stderr = run_to_exit(command_for(command, config_path), full_env)
    return config_path, status, stderr
