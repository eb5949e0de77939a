"""Metrics at /metrics and the JSON access line: right in one process and, through
prometheus_client's multiprocess mode, summed across real gunicorn workers."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests.http_helpers import post_json
from tests.live_server import BOOTING_STOP_TIMEOUT, live_server, wait_until
from tests.support.access import access_lines  # noqa: F401 (a fixture)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def test_uploads_downloads_and_errors_are_counted(client: Any) -> None:
    first = post_json(client, b"x" * 1000).get_json()
    post_json(client, b"y" * 24)
    client.get(f"/{first['slug']}")
    client.head(f"/{first['slug']}")  # a HEAD is not a download
    post_json(client, b"z", slug=first["slug"])  # 409
    client.get("/nothing-here")  # 404
    client.get(f"/{first['slug']}", headers={"Range": "bytes=5000-"})  # 416
    text = client.get("/metrics").get_data(as_text=True)
    assert metric(text, "teledrop_uploads_total") == 2
    assert metric(text, "teledrop_upload_bytes_total") == 1024
    assert metric(text, "teledrop_downloads_total") == 1
    assert metric(text, "teledrop_download_bytes_total") == 1000
    assert metric(text, "teledrop_errors_total", code="slug_taken") == 1
    assert metric(text, "teledrop_errors_total", code="not_found") == 1
    assert metric(text, "teledrop_errors_total", code="range_not_satisfiable") == 1
    assert metric(text, "teledrop_upload_duration_seconds_count") == 2
    assert metric(text, "teledrop_drops_stored") == 2


def test_a_delete_is_counted_and_leaves_the_store(client: Any) -> None:
    drop = post_json(client, b"abc").get_json()
    assert client.delete(f"/{drop['slug']}",
                         headers={"X-Delete-Token": drop["delete_token"]}).status_code == 204
    text = client.get("/metrics").get_data(as_text=True)
    assert metric(text, "teledrop_deletes_total") == 1
    assert metric(text, "teledrop_drops_stored") == 0


def test_metrics_can_be_turned_off(make_app: Any) -> None:
    client = make_app(server={"metrics": False}).test_client()
    assert client.get("/metrics").status_code == 404


def test_each_request_logs_one_json_line(client: Any, access_lines: list[dict[str, Any]]) -> None:
    drop = post_json(client, b"hello").get_json()
    client.get(f"/{drop['slug']}")
    client.get("/missing-slug")
    created, downloaded, missing = access_lines
    assert created["method"] == "POST" and created["status"] == 201
    assert created["slug"] == drop["slug"] and created["size"] == 5
    assert created["duration_ms"] >= 0 and created["error"] is None
    assert downloaded["status"] == 200 and downloaded["bytes_sent"] == 5
    assert missing["status"] == 404 and missing["error"] == "not_found"


def test_the_log_level_comes_from_config(make_app: Any) -> None:
    make_app(server={"log_level": "warning"})
    assert logging.getLogger("teledrop").level == logging.WARNING
    make_app(server={"log_level": "debug"})
    assert logging.getLogger("teledrop").level == logging.DEBUG


def uploads_per_process(metrics_dir: Path) -> dict[str, float]:
    """teledrop_uploads_total as each process wrote it into the shared metrics dir."""
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        values = MmapedDict(str(path), read_mode=True)
        try:
            counts[path.name] = sum(value for key, value, _ in values.read_all_values()
                                    if json.loads(key)[1] == "teledrop_uploads_total")
        finally:
            values.close()
    return counts


@pytest.mark.gunicorn
def test_workers_share_their_counts(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    with live_server(tmp_path, server={"workers": 2, "threads": 2,
                                       "metrics_dir": str(metrics_dir)}) as server:
        assert wait_until(lambda: len(server.worker_pids()) == 2, 10)
        sent = 0
        # A new connection each: the kernel spreads them over the workers, until both
        # have counted some (the point is a sum over processes).
        while sent < 12 or sum(1 for n in uploads_per_process(metrics_dir).values() if n) < 2:
            assert sent < 200, uploads_per_process(metrics_dir)
            response = server.request("PUT", f"/f{sent}.bin", data=b"q" * 100)
            assert response.status_code == 201
            sent += 1
        text = server.request("GET", "/metrics").text
        assert metric(text, "teledrop_uploads_total") == sent
        assert metric(text, "teledrop_upload_bytes_total") == 100 * sent
        assert metric(text, "teledrop_drops_stored") == sent
        log = server.log()
    lines = [json.loads(line.split("teledrop.access: ", 1)[1])
             for line in log.splitlines() if "teledrop.access: " in line]
    assert sum(1 for line in lines if line["status"] == 201) == sent



@pytest.mark.gunicorn
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_temporary_metrics_dir_outlives_workers_and_goes_with_the_server(
        tmp_path: Path, stop: signal.Signals) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    with live_server(tmp_path, env={"TMPDIR": str(temp)}, server={"workers": 2}) as server:
        (made,) = temp.glob("teledrop-metrics-*")
        assert server.request("PUT", "/a.bin", data=b"a").status_code == 201
        # A worker that exits (and runs the same exit handlers) leaves the shared dir.
        worker = server.worker_pids()[0]
        os.kill(worker, signal.SIGTERM)
        assert wait_until(lambda: worker not in server.worker_pids()
                          and len(server.worker_pids()) == 2, 20), server.worker_pids()
        assert made.is_dir() and list(made.glob("*.db"))
        assert server.request("PUT", "/b.bin", data=b"b").status_code == 201
        assert metric(server.request("GET", "/metrics").text, "teledrop_uploads_total") == 2
        assert server.stop(stop, timeout=BOOTING_STOP_TIMEOUT) == 0, server.log()[-2000:]
    assert list(temp.iterdir()) == []


@pytest.mark.gunicorn
def test_a_configured_metrics_dir_stays_after_the_server(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    with live_server(tmp_path, server={"metrics_dir": str(metrics_dir)}) as server:
        assert server.request("PUT", "/a.bin", data=b"a").status_code == 201
        assert server.stop(timeout=BOOTING_STOP_TIMEOUT) == 0, server.log()[-2000:]
    assert list(metrics_dir.glob("*.db"))


def test_a_download_through_the_password_form_is_counted(client: Any) -> None:
    drop = post_json(client, b"secret bytes", password="pw").get_json()
    response = client.post(f"/{drop['slug']}", data={"password": "pw"})
    assert response.status_code == 200 and response.data == b"secret bytes"
    text = client.get("/metrics").get_data(as_text=True)
    assert metric(text, "teledrop_downloads_total") == 1
    assert metric(text, "teledrop_download_bytes_total") == len(b"secret bytes")


def test_an_embedding_app_gets_teledrops_logs_through_its_own_handlers(
        make_app: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    """An app that configured logging (here pytest's handler on the root logger) keeps
    receiving teledrop's records after create_app, and only once."""
    caplog.set_level(logging.INFO)
    client = make_app().test_client()
    assert logging.getLogger("teledrop").propagate
    client.get("/nothing-here")
    access = [r for r in caplog.records if r.name == "teledrop.access"]
    assert len(access) == 1 and json.loads(access[0].getMessage())["status"] == 404
    assert not [h for h in logging.getLogger("teledrop").handlers
                if isinstance(h, logging.StreamHandler) and h.stream is sys.stderr]


def test_a_process_without_logging_gets_teledrops_lines_on_stderr(tmp_path: Path) -> None:
    script = ("import logging; from teledrop import logs; logs.configure('info'); "
              "logging.getLogger('teledrop.web').info('hello'); "
              "logging.getLogger('teledrop.web').debug('not shown')")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, timeout=60, cwd=tmp_path)
    (line,) = done.stderr.splitlines()
    assert line.endswith(" INFO teledrop.web: hello")
