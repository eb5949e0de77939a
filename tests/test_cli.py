"""The server-side commands (gc, plugins, verify, serve's start-up) through click's runner,
on a config file whose storage and database live in the test's tmp_path: what each prints,
its exit status, and a config error as one line without a traceback."""

from __future__ import annotations

import sqlite3
import subprocess
import tomllib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from flask import Flask

import teledrop.core.gc as gc_module
from teledrop.cli import main
from teledrop.core.config import load_config
from teledrop.core.drop import now
from teledrop.web import create_app
from teledrop.web.app import service_of
from tests.live_server import TELEDROP_SCRIPT
from tests.store_helpers import blob_file, debris, orphan, upload
from tests.store_helpers import download as exhaust
from tests.support.entry_points import is_teledrop_setting

MINUTE = 60


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the config file under test decides (and the suite's choice of entry points)."""
    for name in list(os.environ):
        if is_teledrop_setting(name):
            monkeypatch.delenv(name)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "data" / "files"


@pytest.fixture
def write_config(tmp_path: Path, root: Path) -> Callable[[str], Path]:
    """A config file with storage and database in tmp_path, plus ``extra`` TOML."""
    def write(extra: str = "") -> Path:
        path = tmp_path / f"teledrop-{uuid.uuid4().hex[:6]}.toml"
        path.write_text(f"{extra}\n"
                        f"[plugins.local_storage]\nroot = {str(root)!r}\n"
                        f"[plugins.sqlite_meta]\npath = {str(tmp_path / 'data' / 'db.sqlite')!r}\n")
        return path
    return write


@pytest.fixture
def config_path(write_config: Callable[[str], Path]) -> Path:
    return write_config("")


@pytest.fixture
def server(config_path: Path) -> Iterator[Flask]:
    """The app a running server would be, on the same config as the commands."""
    app = create_app(load_config(str(config_path), environ={}))
    app.testing = True
    yield app
    service_of(app).close()


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))














def lines(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if line.strip()]


def assert_clean_exit(result: Result, code: int) -> None:
    """Exited on purpose with ``code`` (an escaped exception is also exit status 1)."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


# -- gc ------------------------------------------------------------------------------------

def test_gc_prints_each_removal_and_the_count(server: Flask, root: Path,
                                              config_path: Path) -> None:
    drop = upload(server, max_downloads="1")
    exhaust(server, drop)
    staged = debris(root, 2 * 3600)
    blob_id = orphan(service_of(server), root, 2 * 3600)
    result = run("gc", "--config", str(config_path))
    assert_clean_exit(result, 0)
    out = lines(result)
    assert f"removed drop {drop.slug} (exhausted)" in out
    assert any(line.startswith(f"removed staging {staged.name} (unpublished for ")
               for line in out)
    assert f"removed orphan {blob_id} (no record)" in out
    assert out[-1] == "removed 3 item(s)"
    assert len(out) == 4
    assert service_of(server).metadata.get(drop.slug) is None
    assert not blob_file(root, drop.blob_id).exists()
    assert not staged.exists()
    assert not blob_file(root, blob_id).exists()


def test_gc_removes_expired_drops(server: Flask, root: Path, config_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    expired = upload(server, expires="60")
    live = upload(server)
    later = now() + 120
    monkeypatch.setattr(gc_module, "now", lambda: later)
    result = run("gc", "--config", str(config_path))
    assert_clean_exit(result, 0)
    assert lines(result) == [f"removed drop {expired.slug} (expired)", "removed 1 item(s)"]
    assert service_of(server).metadata.get(live.slug) is not None


def test_gc_with_nothing_to_remove_says_so(server: Flask, config_path: Path) -> None:
    upload(server)
    result = run("gc", "--config", str(config_path))
    assert_clean_exit(result, 0)
    assert lines(result) == ["removed 0 item(s)"]


def test_gc_dry_run_removes_nothing(server: Flask, root: Path, config_path: Path) -> None:
    drop = upload(server, max_downloads="1")
    exhaust(server, drop)
    staged = debris(root, 2 * 3600)
    result = run("gc", "--dry-run", "--config", str(config_path))
    assert_clean_exit(result, 0)
    out = lines(result)
    assert f"would remove drop {drop.slug} (exhausted)" in out
    assert any(line.startswith(f"would remove staging {staged.name} ") for line in out)
    assert out[-1] == "would remove 2 item(s)"
    assert service_of(server).metadata.get(drop.slug) is not None
    assert blob_file(root, drop.blob_id).exists()
    assert staged.exists()


def test_gc_staging_older_than_sets_the_limit(server: Flask, root: Path,
                                              config_path: Path) -> None:
    older = debris(root, 45 * MINUTE)
    younger = debris(root, 15 * MINUTE)
    default = run("gc", "--config", str(config_path))
    assert_clean_exit(default, 0)
    assert lines(default) == ["removed 0 item(s)"]  # the default limit is 1h
    result = run("gc", "--staging-older-than", "30m", "--config", str(config_path))
    assert_clean_exit(result, 0)
    assert lines(result)[-1] == "removed 1 item(s)"
    assert not older.exists()
    assert younger.exists()


def test_gc_warns_when_its_age_could_catch_uploads_in_flight(server: Flask, root: Path,
                                                              config_path: Path) -> None:
    old = debris(root, 45 * MINUTE)
    result = run("gc", "--staging-older-than", "10s", "--config", str(config_path))
    assert result.exit_code == 0, result.output
    assert "uploads in flight may be removed" in result.stderr
    assert "limits.idle_timeout (60s)" in result.stderr
    assert result.stdout.splitlines()[-1] == "removed 1 item(s)" and not old.exists()
    quiet = run("gc", "--staging-older-than", "1m", "--config", str(config_path))
    assert quiet.stderr == ""


@pytest.mark.parametrize("duration", ["30x", "soon", "-5m", ""])
def test_gc_bad_duration_is_a_usage_error(config_path: Path, duration: str) -> None:
    result = run("gc", "--staging-older-than", duration, "--config", str(config_path))
    assert_clean_exit(result, 2)
    assert "--staging-older-than" in result.output


# -- plugins -------------------------------------------------------------------------------

def parse_plugins(output: str) -> dict[str, tuple[str, set[str]]]:
    """``{name: (source, hooks)}`` from ``teledrop plugins``."""
    listed: dict[str, tuple[str, set[str]]] = {}
    current = ""
    for line in output.splitlines():
        if line.startswith("    "):
            listed[current][1].add(line.strip())
        elif line.strip():
            name, _, source = line.partition("  ")
            current = name
            listed[name] = (source.strip().strip("[]"), set())
    return listed


EXPECTED_HOOKS = {
    "local_storage": {"teledrop_config_schema", "teledrop_storage_backends"},
    "sqlite_meta": {"teledrop_config_schema", "teledrop_metadata_backends"},
    "default_hasher": {"teledrop_hasher"},
    "default_slug": {"teledrop_generate_slug", "teledrop_check_slug"},
    "default_auth": {"teledrop_authorize_upload"},
    "commit_chain": {"teledrop_commit_drop"},
}


def test_plugins_lists_each_plugin_with_source_and_hooks(config_path: Path) -> None:
    result = run("plugins", "--config", str(config_path))
    assert_clean_exit(result, 0)
    listed = parse_plugins(result.output)
    for name, hooks in EXPECTED_HOOKS.items():
        assert name in listed, result.output
        assert hooks <= listed[name][1], (name, listed[name])
    assert listed["local_storage"][0].startswith("teledrop-local-storage ")
    assert listed["sqlite_meta"][0].startswith("teledrop-sqlite-meta ")
    for name in ("local_storage", "sqlite_meta", "default_hasher", "default_slug",
                 "default_auth"):
        assert listed[name][0].endswith("(entry point)"), listed[name]
    assert "registered by teledrop" in listed["commit_chain"][0]
    # Each hook is attributed to the plugin that implements it, not to its neighbours.
    def implementers(hook: str) -> list[str]:
        return [name for name, (_, hooks) in listed.items() if hook in hooks]

    assert implementers("teledrop_storage_backends") == ["local_storage"]
    assert implementers("teledrop_metadata_backends") == ["sqlite_meta"]
    assert implementers("teledrop_commit_drop") == ["commit_chain"]


def test_plugins_shows_disabled_ones(write_config: Callable[[str], Path]) -> None:
    path = write_config('[plugins]\ndisabled = ["default_auth"]')
    result = run("plugins", "--config", str(path))
    assert_clean_exit(result, 0)
    listed = parse_plugins(result.output)
    assert listed["default_auth"] == ("disabled", set())
    assert "default_hasher" in listed and listed["default_hasher"][1]


def test_config_masks_secrets_and_shows_flags(write_config: Callable[[str], Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config('[auth]\nupload_tokens = ["s3cret-one", "s3cret-two"]\n'
                        'require_token = true')
    monkeypatch.setenv("TELEDROP_LIMITS__DEFAULT_EXPIRES", "2d")
    result = run("config", "--config", str(path))
    assert_clean_exit(result, 0)
    effective = tomllib.loads(result.output)  # what it prints is valid TOML
    assert effective["auth"]["upload_tokens"] == ["****", "****"]
    assert "s3cret" not in result.output
    assert effective["auth"]["require_token"] is True  # a flag is not a secret
    assert effective["limits"]["default_expires"] == 2 * 86400  # seconds, as parsed
    lines = result.output.splitlines()
    assert any(line.startswith("require_token = true") and str(path) in line for line in lines)
    assert any(line.startswith("default_expires = 172800") and "TELEDROP_LIMITS__DEFAULT_EXPIRES"
               in line for line in lines)
    assert any(line.startswith("max_expires = ") and "default" in line for line in lines)


# -- verify --------------------------------------------------------------------------------

def test_verify_passes_a_clean_store(server: Flask, config_path: Path) -> None:
    drops = [upload(server, data=bytes([n]) * 1000) for n in range(3)]
    result = run("verify", "--config", str(config_path))
    assert_clean_exit(result, 0)
    assert sorted(lines(result)) == sorted(f"ok       {d.slug}" for d in drops)


@pytest.mark.parametrize("damage", [
    lambda path: path.write_bytes(b"Payload"),            # same size, other bytes
    lambda path: path.write_bytes(b"payload, and then some"),
    lambda path: path.write_bytes(b""),
], ids=["same-size", "longer", "truncated"])
def test_verify_names_a_corrupted_drop(server: Flask, root: Path, config_path: Path,
                                       damage: Callable[[Path], Any]) -> None:
    good = upload(server)
    bad = upload(server)
    damage(blob_file(root, bad.blob_id))
    result = run("verify", "--config", str(config_path))
    assert_clean_exit(result, 1)
    out = lines(result)
    assert any(line.startswith(f"corrupt  {bad.slug} ") for line in out), out
    assert f"ok       {good.slug}" in out
    assert "1 drop(s) corrupt or missing" in result.stderr


def test_verify_names_a_missing_file(server: Flask, root: Path, config_path: Path) -> None:
    good = upload(server)
    bad = upload(server)
    blob_file(root, bad.blob_id).unlink()
    result = run("verify", "--config", str(config_path))
    assert_clean_exit(result, 1)
    out = lines(result)
    assert any(line.startswith(f"missing  {bad.slug} ") for line in out), out
    assert f"ok       {good.slug}" in out


def test_verify_slug_checks_only_that_drop(server: Flask, root: Path, config_path: Path) -> None:
    good = upload(server)
    bad = upload(server)
    blob_file(root, bad.blob_id).unlink()
    only_good = run("verify", "--slug", good.slug, "--config", str(config_path))
    assert_clean_exit(only_good, 0)
    assert lines(only_good) == [f"ok       {good.slug}"]
    only_bad = run("verify", "--slug", bad.slug, "--config", str(config_path))
    assert_clean_exit(only_bad, 1)
    assert lines(only_bad)[0].startswith(f"missing  {bad.slug} ")


def test_verify_unknown_slug_is_an_error(server: Flask, config_path: Path) -> None:
    result = run("verify", "--slug", "no-such-drop", "--config", str(config_path))
    assert result.exit_code != 0
    assert_clean_exit(result, result.exit_code)
    assert len(lines(result)) == 1 and "no-such-drop" in result.output


# -- config errors: one line, no traceback, for every command -------------------------------

CONFIG_ERRORS = {
    "unknown-key": ('[server]\nbogus = 1', "server.bogus"),
    "bad-value": ('[limits]\nmax_upload_size = "lots"', "limits.max_upload_size"),
    "missing-plugin": ('[storage]\nplugin = "s3"', "storage.plugin"),
    "essential-disabled": ('[plugins]\ndisabled = ["commit_chain"]', "plugins.disabled"),
    "unknown-plugin-table": ('[plugins.thumbnailer]\nsize = 3', "plugins.thumbnailer"),
    "not-toml": ('[server\nbind = ', "not valid TOML"),
}


@pytest.fixture
def no_gunicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve`` must stop before gunicorn runs; if it does not, fail instead of serving."""
    from gunicorn.app.base import BaseApplication

    def refuse(self: object) -> None:
        raise AssertionError("gunicorn was started despite a config error")

    monkeypatch.setattr(BaseApplication, "run", refuse)


@pytest.mark.parametrize("command", ["gc", "plugins", "verify", "serve"])
@pytest.mark.parametrize("case", list(CONFIG_ERRORS))
def test_config_error_is_one_line(write_config: Callable[[str], Path], no_gunicorn: None,
                                  command: str, case: str) -> None:
    extra, named = CONFIG_ERRORS[case]
    path = write_config(extra)
    result = run(command, "--config", str(path))
    assert result.exit_code != 0
    assert_clean_exit(result, result.exit_code)
    out = lines(result)
    assert len(out) == 1, out
    assert str(path) in out[0] and named in out[0], out


@pytest.mark.parametrize("command", ["gc", "plugins", "verify", "serve"])
def test_missing_config_file_is_one_line(tmp_path: Path, no_gunicorn: None, command: str) -> None:
    missing = tmp_path / "nope.toml"
    result = run(command, "--config", str(missing))
    assert result.exit_code != 0
    assert_clean_exit(result, result.exit_code)
    out = lines(result)
    assert len(out) == 1 and str(missing) in out[0], out


# -- help ----------------------------------------------------------------------------------

ALL_COMMANDS = {"serve", "gc", "plugins", "verify", "config", "migrate", "upload", "delete", "info",
                "token"}


def example_lines(help_text: str) -> list[str]:
    """The lines of a help text's first ``\\b`` block (the examples), header excluded."""
    _, marker, rest = help_text.partition("\b\n")
    assert marker, "no \\b block: click would rewrap the examples"
    block = rest.split("\n\n", 1)[0].splitlines()
    return [line.strip() for line in block[1:] if line.strip()]


def test_every_command_is_listed() -> None:
    assert set(main.commands) == ALL_COMMANDS


@pytest.mark.parametrize("name", sorted(ALL_COMMANDS))
def test_every_command_help_shows_examples_as_written(name: str) -> None:
    result = run(name, "--help")
    assert_clean_exit(result, 0)
    assert "Example" in result.output
    examples = example_lines(main.commands[name].help or "")
    assert examples and any(line.startswith("teledrop ") or " teledrop " in line
                            for line in examples), examples
    printed = [line.strip() for line in result.output.splitlines()]
    for line in examples:
        assert line in printed, (line, result.output)


# --- teledrop token -------------------------------------------------------------------------

def test_a_created_token_is_printed_once_and_names_its_owner(config_path: Path,
                                                             server: Flask) -> None:
    created = CliRunner().invoke(main, ["token", "create", "alice", "--config",
                                        str(config_path)])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert len(secret) >= 32 and "\n" not in secret
    assert "not shown again" in created.stderr
    listed = run("token", "list", "--config", str(config_path))
    assert listed.exit_code == 0 and listed.output.startswith("alice  created ")
    assert secret not in listed.output
    response = server.test_client().put("/t.txt", data=b"mine", headers={
        "Authorization": f"Bearer {secret}", "Accept": "application/json"})
    assert response.status_code == 201
    assert service_of(server).metadata.get(response.json["slug"]).owner == "alice"


def test_a_revoked_token_stops_working(config_path: Path, server: Flask) -> None:
    secret = run("token", "create", "bob", "--config", str(config_path)).output.splitlines()[0]
    revoked = run("token", "revoke", "bob", "--config", str(config_path))
    assert revoked.exit_code == 0 and revoked.output == "revoked bob\n"
    response = server.test_client().put("/t.txt", data=b"x",
                                        headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401
    assert run("token", "list", "--config", str(config_path)).output == ""


@pytest.mark.parametrize(("args", "message"), [
    (("create", "alice"), "exists"),
    (("create", "-bad name"), "token name"),
    (("revoke", "nobody"), "no token named 'nobody'"),
])
def test_token_mistakes_are_one_line(config_path: Path, args: tuple[str, ...],
                                     message: str) -> None:
    run("token", "create", "alice", "--config", str(config_path))
    result = run("token", *args[:1], "--config", str(config_path), "--", *args[1:])
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [("gc",), ("token", "create", "carol"),
                                  ("token", "revoke", "alice")])
def test_a_locked_database_is_one_line_for_every_command_that_writes(
        write_config: Callable[[str], Path], tmp_path: Path, args: tuple[str, ...]) -> None:
    path = write_config("")
    path.write_text(path.read_text() + "busy_timeout = 100\n")  # into [plugins.sqlite_meta]
    app = create_app(load_config(str(path), environ={}))
    try:
        exhaust(app, upload(app, max_downloads="1"))  # something for gc to remove
    finally:
        service_of(app).close()
    assert_clean_exit(run("token", "create", "alice", "--config", str(path)), 0)
    locker = sqlite3.connect(tmp_path / "data" / "db.sqlite", isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        result = run(*args, "--config", str(path))
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert_clean_exit(result, 1)
    assert "locked" in result.output and "Traceback" not in result.output, result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: ")


# --- gc removals in the server's metrics -----------------------------------------------------

def test_gc_counts_its_removals_into_a_shared_metrics_dir(
        tmp_path: Path, write_config: Callable[[str], Path], root: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    config = write_config(f"[server]\nmetrics_dir = {str(metrics_dir)!r}\n")
    app = create_app(load_config(str(config), environ={}))
    try:
        exhaust(app, upload(app, max_downloads="1"))
        debris(root, 2 * 3600)
    finally:
        service_of(app).close()
    # A process of its own, as cron runs it: its counters land in the shared directory.
    result = subprocess.run([str(TELEDROP_SCRIPT), "gc", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))
    counted = {s.labels["kind"]: s.value for family in registry.collect()
               for s in family.samples if s.name == "teledrop_gc_removed_total"}
    assert counted == {"drop": 1.0, "staging": 1.0}
    files = sorted(p.name for p in metrics_dir.iterdir())
    # a run with nothing to remove adds no file for every scrape to read (every 10 minutes)
    again = subprocess.run([str(TELEDROP_SCRIPT), "gc", "--config", str(config)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode == 0 and again.stdout.strip() == "removed 0 item(s)", again
    assert sorted(p.name for p in metrics_dir.iterdir()) == files
