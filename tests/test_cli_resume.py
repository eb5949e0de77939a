"""``teledrop upload`` over tus against a real gunicorn, through a proxy that counts the
body bytes the server receives and cuts connections where a test says: a file goes up
whole; a connection cut mid-upload is resumed by the client itself from the server's
offset, with no byte sent twice; a client killed mid-upload continues when the same
command runs again; when the retries run out the error says how to continue, and doing so
works; ``--no-resume`` and stdin go in one request.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.live_server import TELEDROP_SCRIPT, LiveServer, live_server, wait_until
from tests.support.command import clean_env, how, process_env, state_files, teledrop, write  # noqa: F401
from tests.support.cut_proxy import CutProxy
from tests.support.live import assert_stored

MiB = 1024 * 1024
SIZE = 24 * MiB
TUS = {"Tus-Resumable": "1.0.0"}

pytestmark = pytest.mark.gunicorn


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("resume"), server={"workers": 1}) as running:
        yield running


@pytest.fixture
def proxy(server: LiveServer) -> Iterator[CutProxy]:
    with CutProxy((server.address, server.port)) as running:
        yield running


@pytest.fixture(scope="module")
def content() -> bytes:
    return os.urandom(SIZE)


@pytest.fixture
def payload(tmp_path: Path, content: bytes) -> Path:
    return write(tmp_path, "payload.bin", content)


def test_a_file_goes_up_over_tus(server: LiveServer, proxy: CutProxy, payload: Path,
                                 content: bytes, how: str) -> None:
    out = teledrop(how, "upload", str(payload), "--json", "--server", proxy.url,
                   "--expires", "2h", "--max-downloads", "3")
    assert out.code == 0, out.stderr
    drop = json.loads(out.stdout)
    assert proxy.body_bytes["PATCH"] == SIZE and proxy.body_bytes["PUT"] == 0
    assert (drop["filename"], drop["max_downloads"]) == ("payload.bin", 3)
    assert drop["url"].startswith(proxy.url + "/")
    drop["url"] = drop["url"].replace(proxy.url, server.base_url)
    assert_stored(server, drop, content)
    deleted = server.request("DELETE", f"/{drop['slug']}",
                             headers={"X-Delete-Token": drop["delete_token"]})
    assert deleted.status_code == 204
    assert state_files() == []


def test_a_cut_connection_is_resumed_by_itself_and_no_byte_goes_twice(
        server: LiveServer, proxy: CutProxy, payload: Path, content: bytes) -> None:
    proxy.cut_after = 9 * MiB + 123
    out = teledrop("process", "upload", str(payload), "--json", "--progress",
                   "--server", proxy.url)
    assert out.code == 0, out.stderr
    assert proxy.cuts == 1
    # Each byte crossed to the server once: the client went on from the server's offset.
    assert proxy.body_bytes["PATCH"] == SIZE
    assert "continuing from the server's offset" in out.stderr
    assert "100%" in out.stderr.rsplit("\r", 1)[-1]  # the bar went on to the end
    drop = json.loads(out.stdout)
    drop["url"] = drop["url"].replace(proxy.url, server.base_url)
    assert_stored(server, drop, content)
    assert state_files() == []


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill", "ctrl-c"])
def test_a_killed_client_continues_when_run_again(server: LiveServer, proxy: CutProxy,
                                                  payload: Path, content: bytes,
                                                  sig: signal.Signals) -> None:
    proxy.hold_after = 7 * MiB
    args = [str(TELEDROP_SCRIPT), "upload", str(payload), "--json", "--server", proxy.url]
    first = subprocess.Popen(args, env=process_env({}), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert proxy.held.wait(30), "the upload never reached the hold"
        [state] = state_files()
        assert stat.S_IMODE(state.stat().st_mode) == 0o600
        assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
        url = json.loads(state.read_text())["url"]
        first.send_signal(sig)
        _, stderr = first.communicate(timeout=30)
    finally:
        first.kill()
    if sig == signal.SIGINT:
        assert first.returncode == 130
        assert stderr.decode().splitlines()[-1] == (
            f"interrupted: run the same command again to continue {payload} where it stopped")
    tus_path = urlsplit(url).path

    def offset() -> int:
        return int(server.request("HEAD", tus_path, headers=TUS).headers["Upload-Offset"])

    assert wait_until(lambda: offset() == 7 * MiB, 15), offset()
    proxy.hold_after = None
    again = subprocess.run(args, env=process_env({}), capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
    assert again.returncode == 0, again.stderr
    assert f"continuing an earlier upload from byte {7 * MiB}" in again.stderr
    assert proxy.body_bytes["PATCH"] == SIZE
    drop = json.loads(again.stdout)
    assert drop["url"].startswith(proxy.url + "/")
    drop["url"] = drop["url"].replace(proxy.url, server.base_url)
    assert_stored(server, drop, content)
    assert state_files() == []


def test_retries_run_out_with_a_clear_error_and_the_same_command_continues(
        server: LiveServer, proxy: CutProxy, payload: Path, content: bytes) -> None:
    proxy.cut_after = 5 * MiB
    proxy.refuse_after_cut = True  # the cut is the last thing the server ever says
    out = teledrop("process", "upload", str(payload), "--json", "--retries", "3",
                   "--server", proxy.url)
    assert out.code == 1
    error = out.stderr.splitlines()[-1]
    assert error.startswith(f"Error: {payload}: ") and "gave up after 3 tries" in error
    assert "run the same command again to continue" in error
    assert len(state_files()) == 1
    proxy.refusing = False
    again = teledrop("process", "upload", str(payload), "--json", "--server", proxy.url)
    assert again.code == 0, again.stderr
    assert f"continuing an earlier upload from byte {5 * MiB}" in again.stderr
    assert proxy.body_bytes["PATCH"] == SIZE
    drop = json.loads(again.stdout)
    drop["url"] = drop["url"].replace(proxy.url, server.base_url)
    assert_stored(server, drop, content)


def test_no_resume_sends_one_request(server: LiveServer, proxy: CutProxy, payload: Path,
                                     content: bytes, how: str) -> None:
    out = teledrop(how, "upload", str(payload), "--json", "--no-resume",
                   "--server", proxy.url)
    assert out.code == 0, out.stderr
    assert proxy.body_bytes["PUT"] == SIZE and proxy.body_bytes["PATCH"] == 0
    assert proxy.body_bytes["OPTIONS"] == proxy.body_bytes["POST"] == 0
    drop = json.loads(out.stdout)
    drop["url"] = drop["url"].replace(proxy.url, server.base_url)
    assert_stored(server, drop, content)
    assert state_files() == []


def test_stdin_goes_in_one_request(server: LiveServer, proxy: CutProxy,
                                   content: bytes) -> None:
    out = teledrop("process", "upload", "-", "--json", "--server", proxy.url,
                   stdin=content[:MiB])
    assert out.code == 0, out.stderr
    assert proxy.body_bytes["PATCH"] == 0
    drop = json.loads(out.stdout)
    drop["url"] = drop["url"].replace(proxy.url, server.base_url)
    assert_stored(server, drop, content[:MiB])
    assert state_files() == []


def test_a_refusal_at_creation_sends_nothing_and_leaves_no_state(
        server: LiveServer, proxy: CutProxy, payload: Path) -> None:
    out = teledrop("process", "upload", str(payload), "--expires", "99d",
                   "--server", proxy.url)
    assert out.code == 1
    assert "expires must be between" in out.error_line()
    assert proxy.body_bytes["PATCH"] == proxy.body_bytes["PUT"] == 0
    assert state_files() == []


def test_a_password_goes_in_a_header_only(server: LiveServer, proxy: CutProxy,
                                          payload: Path, content: bytes) -> None:
    out = teledrop("process", "upload", str(payload), "--json", "--password", "s3same",
                   "--server", proxy.url)
    assert out.code == 0, out.stderr
    assert proxy.body_bytes["PATCH"] == SIZE
    slug = json.loads(out.stdout)["slug"]
    assert server.request("GET", f"/{slug}").status_code in (401, 403)
    unlocked = server.request("GET", f"/{slug}", headers={"X-Drop-Password": "s3same"})
    assert unlocked.status_code == 200 and unlocked.content == content
    assert "s3same" not in server.log()  # neither in a URL nor in the echoed metadata
