"""Starting teledrop for real: ``gunicorn -c conf/gunicorn.conf.py wsgi:app`` and
``teledrop serve --config F``.

Proves that a bad config (unknown key, section or plugin table key, bad value, missing
plugin, an env override that does not parse, a backend that cannot open its storage or
database) stops start-up within seconds with a non-zero exit and exactly one stderr line
naming the file (or env variable) and the key, never a traceback; and that a good config
starts a server with the config's bind address and worker count, which serves uploads and
stops cleanly on SIGTERM.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import (
    BOOTING_STOP_TIMEOUT,
    LiveServer,
    config_tables,
    live_server,
    pid_alive,
    to_toml,
    wait_until,
)
from tests.support.startup import assert_refused_with_one_line, start_refused

pytestmark = pytest.mark.gunicorn

COMMANDS = ["gunicorn", "serve"]


def blocked_storage_root(tmp: Path) -> dict[str, Any]:
    blocker = tmp / "not-a-directory"
    blocker.write_text("")
    return {"plugins": {"local_storage": {"root": str(blocker / "files")}}}


def database_is_a_directory(tmp: Path) -> dict[str, Any]:
    (tmp / "db-dir").mkdir()
    return {"plugins": {"sqlite_meta": {"path": str(tmp / "db-dir")}}}


#: id -> (sections to merge into a good config, or a function of tmp_path giving them;
#:        the dotted key the error line must name)
BAD_CONFIGS: dict[str, tuple[dict[str, Any] | Callable[[Path], dict[str, Any]], str]] = {
    "unknown key": ({"limits": {"max_upload_sise": "1MiB"}}, "limits.max_upload_sise"),
    "bad size": ({"limits": {"max_upload_size": "lots"}}, "limits.max_upload_size"),
    "unknown section": ({"limitz": {"max_upload_size": "1MiB"}}, "limitz"),
    "missing storage plugin": ({"storage": {"plugin": "s3"}}, "storage.plugin"),
    "unknown plugin setting": ({"plugins": {"local_storage": {"rooot": "x"}}},
                               "plugins.local_storage.rooot"),
    "storage root unusable": (blocked_storage_root, "storage.plugin"),
    "database path is a directory": (database_is_a_directory, "metadata.plugin"),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_stops_startup_with_one_line(tmp_path: Path, command: str,
                                                case: str) -> None:
    sections, key = BAD_CONFIGS[case]
    if callable(sections):
        sections = sections(tmp_path)
    config_path, status, stderr = start_refused(tmp_path, command, sections)
    assert_refused_with_one_line(status, stderr, str(config_path), key)


@pytest.mark.parametrize("command", COMMANDS)
def test_bad_env_override_stops_startup_with_one_line(tmp_path: Path, command: str) -> None:
    variable = "TELEDROP_LIMITS__MAX_UPLOAD_SIZE"
    _, status, stderr = start_refused(tmp_path, command, {}, env={variable: "lots"})
    assert_refused_with_one_line(status, stderr, f"env {variable}", "limits.max_upload_size",
                                 "lots")


@pytest.mark.parametrize("command", COMMANDS)
def test_good_config_serves_with_its_settings_and_stops_on_sigterm(tmp_path: Path,
                                                                   command: str) -> None:
    content = os.urandom(700_000)
    with live_server(tmp_path, command=command, server={"workers": 3, "threads": 2}) as server:
        # The health check already reached the config's bind address.
        assert wait_until(lambda: len(server.worker_pids()) == 3, 10), server.worker_pids()
        created = server.request("PUT", "/served.bin", data=content,
                                 headers={"Accept": "application/json"})
        assert created.status_code == 201, created.text
        slug = created.json()["slug"]
        assert server.request("GET", f"/{slug}").content == content
        workers = server.worker_pids()
        assert server.stop(signal.SIGTERM, timeout=BOOTING_STOP_TIMEOUT) == 0, server.log()[-3000:]
        assert not [pid for pid in workers if pid_alive(pid)]
        assert "Traceback" not in server.log()
    server.data.assert_holds(slug, content)
    server.data.assert_consistent(timeout=0)


def uploads_counted(server: LiveServer) -> float:
    text = server.request("GET", "/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("teledrop_uploads_total"))


@pytest.mark.parametrize("command", COMMANDS)
def test_a_reload_applies_a_good_config_and_refuses_a_broken_one(tmp_path: Path,
                                                                 command: str) -> None:
    """SIGHUP (systemctl reload): new workers with the new config; a config that does not
    check is logged and the running one stays, with the server and its counts intact."""
    with live_server(tmp_path, command=command, server={"workers": 1, "threads": 2}) as server:
        assert server.request("PUT", "/a.bin", data=b"x" * 2000).status_code == 201
        first = server.worker_pids()
        tables = config_tables(server.data.root, server.port, server={"workers": 1},
                               limits={"max_upload_size": "1KiB"})
        server.config_path.write_text(to_toml(tables))
        os.kill(server.master_pid, signal.SIGHUP)
        assert wait_until(lambda: server.worker_pids() and not set(server.worker_pids())
                          & set(first), 20), server.log()[-2000:]
        assert wait_until(server.healthy, 10)
        refused = server.request("PUT", "/b.bin", data=b"x" * 2000)
        assert refused.status_code == 413, refused.text  # the new limit
        assert uploads_counted(server) == 1  # counts carried across the reload

        second = server.worker_pids()
        server.config_path.write_text(to_toml(tables) + "\n[limits]\nno_such_key = 1\n")
        os.kill(server.master_pid, signal.SIGHUP)
        assert wait_until(lambda: "reload refused" in server.log(), 20), server.log()[-2000:]
        assert wait_until(lambda: server.worker_pids() and not set(server.worker_pids())
                          & set(second), 20), server.log()[-2000:]
        assert server.proc.poll() is None, server.log()[-2000:]
        assert wait_until(server.healthy, 10)
        assert server.request("PUT", "/c.bin", data=b"x" * 2000).status_code == 413
        assert server.request("PUT", "/d.bin", data=b"x" * 100).status_code == 201
        assert uploads_counted(server) == 2
        assert "Traceback" not in server.log()
