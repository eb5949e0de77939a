"""The gunicorn master's accepted config, and the worker class made from it, in-process.

The live tests (``tests/test_live_startup.py``) reload real servers; these pin down what
the master keeps between reloads without one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from teledrop import metrics
from teledrop.core.config import Config, load_config
from teledrop.server import AcceptedConfig, gunicorn_settings
from teledrop.worker import IdleTimeoutWorker, worker_class


def write_config(path: Path, data: Path, extra: str = "", idle: int = 7) -> str:
    path.write_text(f"""
[server]
bind = "127.0.0.1:0"
metrics_dir = "{data / 'metrics'}"

[limits]
idle_timeout = "{idle}s"

[plugins.local_storage]
root = "{data / 'files'}"

[plugins.sqlite_meta]
path = "{data / 'teledrop.db'}"
{extra}""")
    return str(path)


@pytest.fixture(autouse=True)
def own_metrics_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first accepted config points the process's metrics at its directory: undone
    after each test."""
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)


def test_a_broken_config_at_start_stops_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path / "teledrop.toml", tmp_path, "[auth]\nno_such_key = 1\n")
    with pytest.raises(SystemExit) as stopped:
        AcceptedConfig().load(path)
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("teledrop: ") and err.count("\n") == 1 and "no_such_key" in err


def test_a_broken_reload_keeps_the_running_config_and_a_good_one_replaces_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "teledrop.toml"
    accepted = AcceptedConfig()
    first = accepted.load(write_config(path, tmp_path))
    assert accepted.config is first and first.limits.idle_timeout == 7

    write_config(path, tmp_path, "[auth]\nno_such_key = 1\n")
    assert accepted.load(str(path)) is first
    assert accepted.config is first
    assert "reload refused, the running config stays" in capsys.readouterr().err

    second = accepted.load(write_config(path, tmp_path, idle=9))
    assert second.limits.idle_timeout == 9 and accepted.config is second


def test_each_master_keeps_its_own(tmp_path: Path) -> None:
    """Two accepted configs in one process share nothing: a server embedded beside another
    (or a test beside the next) starts from its own file."""
    one, other = AcceptedConfig(), AcceptedConfig()
    one.load(write_config(tmp_path / "one.toml", tmp_path))
    assert other.config is None
    with pytest.raises(SystemExit):
        other.load(str(tmp_path / "missing.toml"))
    assert other.config is None and one.config is not None


def test_the_worker_class_carries_the_idle_timeout_of_its_config() -> None:
    config = load_config(environ={}, overrides={"limits": {"idle_timeout": "3s"}})
    cls = gunicorn_settings(config)["worker_class"]
    assert issubclass(cls, IdleTimeoutWorker) and cls.__name__ == "IdleTimeoutWorker"
    assert cls.idle_timeout == 3.0
    assert worker_class(Config()).idle_timeout == float(Config().limits.idle_timeout)
    assert IdleTimeoutWorker.idle_timeout == float(Config().limits.idle_timeout)  # by name
