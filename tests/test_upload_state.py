"""The client's memory of unfinished uploads (``teledrop.upload_state``), its retry
policy, and the progress line of a resumed upload: the parts that need no server."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest

from teledrop.client import ProgressLine, RetryPolicy
from teledrop.upload_state import StateFile, UploadKey, state_directory

MiB = 1024 * 1024


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "payload.bin"
    path.write_bytes(b"x" * 1000)
    return path


def key_of(path: Path, **options: str) -> UploadKey:
    return UploadKey.of("http://h:1", str(path), {"filename": path.name, **options})


def test_the_state_lives_under_xdg_state_home(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert state_directory() == tmp_path / "teledrop" / "uploads"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/dir")  # XDG: ignore a relative one
    assert state_directory() == Path.home() / ".local" / "state" / "teledrop" / "uploads"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert state_directory() == Path.home() / ".local" / "state" / "teledrop" / "uploads"


def test_a_record_is_private_and_comes_back(payload: Path, tmp_path: Path) -> None:
    state = StateFile(key_of(payload), tmp_path / "state")
    assert state.load() is None
    state.save({"kind": "tus", "url": "http://h:1/api/uploads/abc"})
    assert state.load() == {"kind": "tus", "url": "http://h:1/api/uploads/abc",
                            "key": json.loads(state.path.read_text())["key"]}
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.path.parent.stat().st_mode) == 0o700
    assert [p.name for p in state.path.parent.iterdir()] == [state.path.name]  # no temp
    state.remove()
    assert state.load() is None and not state.path.exists()
    state.remove()  # twice is fine


def test_a_changed_file_or_other_options_are_another_upload(payload: Path,
                                                            tmp_path: Path) -> None:
    directory = tmp_path / "state"
    StateFile(key_of(payload), directory).save({"kind": "tus", "url": "u"})
    assert StateFile(key_of(payload), directory).load() is not None
    assert StateFile(key_of(payload, slug="other"), directory).load() is None
    info = payload.stat()
    os.utime(payload, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000))
    assert StateFile(key_of(payload), directory).load() is None
    payload.write_bytes(b"y" * 1001)
    assert StateFile(key_of(payload), directory).load() is None


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"kind": "tus"}'])
def test_an_unreadable_or_foreign_record_is_none(payload: Path, tmp_path: Path,
                                                 text: str) -> None:
    state = StateFile(key_of(payload), tmp_path)
    state.path.write_text(text)
    assert state.load() is None


def test_a_state_directory_that_cannot_be_written_costs_only_the_memory(
        payload: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    state = StateFile(key_of(payload), blocker / "sub")
    state.save({"kind": "tus", "url": "u"})  # no error: the upload itself goes on
    assert state.load() is None


def test_retries_back_off_exponentially_up_to_the_cap() -> None:
    slept: list[float] = []
    policy = RetryPolicy(attempts=8, base=0.5, cap=4.0, sleep=slept.append)
    for failures in range(1, 7):
        policy.pause(failures)
    assert slept == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_a_resumed_upload_counts_only_this_runs_bytes_in_its_speed() -> None:
    now = [100.0]
    stream = io.StringIO()
    bar = ProgressLine(stream, "f.bin", 100 * MiB, clock=lambda: now[0])
    bar.begin_at(60 * MiB)
    now[0] += 2
    bar.update(80 * MiB)
    line = stream.getvalue().split("\r")[-1]
    assert " 80%" in line and "10.0 MiB/s" in line and "ETA 0:02" in line
