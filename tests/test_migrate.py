"""``teledrop migrate`` through the real command line, from one local_storage + sqlite_meta
data dir to another: every field of every live drop arrives under its slug, links,
passwords, delete tokens and owners' tokens work on the target's app, a second run skips
everything, and every failure (a target that breaks on the Nth file or insert, Ctrl-C, a
corrupt source file, a slug the target holds with another file) fails that drop alone,
leaves nothing behind in the target and is completed by a rerun."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask

from teledrop import composition
from teledrop.cli import main
from teledrop.core.config import load_config
from teledrop.core.drop import Drop, now
from teledrop.core.interfaces import TokenRecord
from teledrop.core.migrate import Migration
from teledrop.core.service import Teledrop
from teledrop.web import create_app
from teledrop.web.app import service_of
from tests.http_helpers import put_file
from tests.live_server import TELEDROP_SCRIPT, DataDir, install_plugins
from tests.plugins.memory import MemoryPlugin
from tests.support.entry_points import also_load, entry_points_env, is_teledrop_setting

MiB = 1024 * 1024
PASSWORD = "open sesame"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the config files under test decide (and the variables a test sets)."""
    for name in list(os.environ):
        if is_teledrop_setting(name):
            monkeypatch.delenv(name)


@dataclass
class Side:
    """One teledrop's data dir and the config file that names it."""

    data: DataDir
    config: Path

    @contextmanager
    def app(self) -> Iterator[Flask]:
        app = create_app(load_config(str(self.config), environ={}))
        app.testing = True
        try:
            yield app
        finally:
            service_of(app).close()

    def drops(self) -> dict[str, Drop]:
        with self.service() as service:
            return {drop.slug: drop for drop in service.metadata.iter_drops()}

    def tokens(self) -> list[TokenRecord]:
        with self.service() as service:
            return service.metadata.list_tokens()

    @contextmanager
    def service(self) -> Iterator[Teledrop]:
        service = composition.start(load_config(str(self.config), environ={}))
        try:
            yield service
        finally:
            service.close()


def side(tmp_path: Path, name: str, storage: str = "local_storage",
         metadata: str = "sqlite_meta", **settings: dict[str, Any]) -> Side:
    """A data dir under ``tmp_path/name`` and its config, with ``settings`` added to the
    backends' tables."""
    data = DataDir(tmp_path / name)
    tables = {storage: {"root": str(data.files), **settings.get(storage, {})},
              metadata: {"path": str(data.db_path), **settings.get(metadata, {})}}
    text = f'[storage]\nplugin = "{storage}"\n[metadata]\nplugin = "{metadata}"\n'
    for table, values in tables.items():
        text += f"[plugins.{table}]\n" + "".join(f"{key} = {value!r}\n"
                                                 for key, value in values.items())
    config = tmp_path / f"{name}.toml"
    config.write_text(text.replace("'", '"'))
    return Side(data, config)


@pytest.fixture
def source(tmp_path: Path) -> Side:
    return side(tmp_path, "source")


@pytest.fixture
def target(tmp_path: Path) -> Side:
    return side(tmp_path, "target")


@pytest.fixture
def faults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Nth-failing backends, installed as a third-party distribution."""
    install_plugins(tmp_path / "site", {"migrate_faults": "tests.plugins.migrate_faults"})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    also_load(monkeypatch, "migrate_faults")


def migrate(source: Side, target: Side | Path, *args: str) -> Result:
    to = target.config if isinstance(target, Side) else target
    result = CliRunner().invoke(main, ["migrate", "--config", str(source.config),
                                       "--to", str(to), *args])
    assert "Traceback" not in result.output
    return result


def put(app: Flask, data: bytes, name: str = "f.bin", headers: dict[str, str] | None = None,
        **query: Any) -> dict[str, Any]:
    response = put_file(app.test_client(), f"/{name}", data, query=query,
                        headers={"Accept": "application/json", **(headers or {})})
    assert response.status_code == 201, response.data
    return response.json


def summary(result: Result) -> list[str]:
    return result.stdout.splitlines()[-2:]


def assert_clean(side: Side) -> None:
    """No staging debris, no file without its record, no record without its file."""
    assert side.data.problems() == []


@pytest.fixture
def owned(source: Side) -> dict[str, Any]:
    """A source with one drop of each kind, alice's token and her drops:
    ``{"token": alice's token, "drops": {slug: upload answer}, "bytes": {slug: bytes}}``."""
    secret = CliRunner().invoke(main, ["token", "create", "alice", "--config",
                                       str(source.config)]).stdout.strip()
    CliRunner().invoke(main, ["token", "create", "bob", "--config", str(source.config)])
    alice = {"Authorization": f"Bearer {secret}"}
    payloads = {
        "plain": (b"plain bytes\n" * 1000, {}, {}),
        "custom": (os.urandom(700_000), {}, {"slug": "q3-report", "title": "Q3",
                                             "description": "the numbers"}),
        "password": (b"behind a password", {"X-Drop-Password": PASSWORD}, {}),
        "private": (b"alice's own", alice, {"private": "true", "title": "mine"}),
        "limited": (b"three times", alice, {"max_downloads": "3", "expires": "2h"}),
        "empty": (b"", {}, {}),
    }
    drops, contents = {}, {}
    with source.app() as app:
        for name, (data, headers, query) in payloads.items():
            drop = put(app, data, f"{name}.bin", headers, **query)
            drops[name], contents[drop["slug"]] = drop, data
        response = app.test_client().get(f"/{drops['limited']['slug']}")  # downloads = 1
        assert response.status_code == 200
        response.close()
    return {"token": secret, "drops": drops, "bytes": contents}


# -- what is copied ----------------------------------------------------------------------------

def test_every_field_of_every_drop_and_token_is_copied_under_its_slug(
        source: Side, target: Side, owned: dict[str, Any]) -> None:
    result = migrate(source, target)
    assert result.exit_code == 0, result.output
    assert summary(result) == [
        f"copied 6 drop(s) ({sum(map(len, owned['bytes'].values()))} bytes), skipped 0, "
        "failed 0; 0 expired or exhausted not copied",
        "copied 2 token(s), skipped 0, failed 0"]
    before, after = source.drops(), target.drops()
    assert sorted(after) == sorted(before)
    for slug, drop in before.items():
        copy = after[slug]
        for field in dataclasses.fields(Drop):
            if field.name != "blob_id":
                assert getattr(copy, field.name) == getattr(drop, field.name), (slug, field.name)
        assert target.data.blob_path(copy.blob_id).read_bytes() == owned["bytes"][slug]
    limited = after[owned["drops"]["limited"]["slug"]]
    assert (limited.downloads, limited.max_downloads, limited.owner) == (1, 3, "alice")
    assert after["q3-report"].custom_slug and after["q3-report"].title == "Q3"
    assert after[owned["drops"]["password"]["slug"]].password_hash is not None
    assert target.tokens() == source.tokens()
    assert [token.name for token in target.tokens()] == ["alice", "bob"]
    assert_clean(target)


def test_links_passwords_delete_tokens_and_owners_work_on_the_target(
        source: Side, target: Side, owned: dict[str, Any]) -> None:
    assert migrate(source, target).exit_code == 0
    drops, alice = owned["drops"], {"Authorization": f"Bearer {owned['token']}"}
    with target.app() as app:
        client = app.test_client()
        for name in ("plain", "custom", "empty", "limited"):
            slug = drops[name]["slug"]
            response = client.get(f"/{slug}")
            assert response.status_code == 200, name
            assert response.data == owned["bytes"][slug]
            assert response.headers["Content-Disposition"] == f"attachment; filename={name}.bin"
        # the link as the source printed it, with its filename
        assert client.get("/q3-report/custom.bin").data == owned["bytes"]["q3-report"]
        locked = drops["password"]["slug"]
        assert client.get(f"/{locked}").status_code == 401
        assert client.get(f"/{locked}", headers={"X-Drop-Password": "wrong"}).status_code == 401
        opened = client.get(f"/{locked}", headers={"X-Drop-Password": PASSWORD})
        assert opened.status_code == 200 and opened.data == b"behind a password"
        private = drops["private"]["slug"]
        assert client.get(f"/{private}").status_code == 404
        assert client.get(f"/{private}", headers=alice).data == b"alice's own"
        listed = client.get("/api/drops", headers=alice)
        assert listed.status_code == 200 and listed.json["total"] == 2
        # downloads left: 3 - 1 at the source - 1 above
        assert client.get(f"/{drops['limited']['slug']}").status_code == 200
        assert client.get(f"/{drops['limited']['slug']}").status_code == 410
        plain = drops["plain"]
        assert client.delete(f"/{plain['slug']}",
                             headers={"X-Delete-Token": "not it"}).status_code == 403
        assert client.delete(f"/{plain['slug']}",
                             headers={"X-Delete-Token": plain["delete_token"]}).status_code == 204
        assert client.get(f"/{plain['slug']}").status_code == 404
        uploaded = put(app, b"new", headers=alice)  # alice's token is alice's on the target
        assert service_of(app).metadata.get(uploaded["slug"]).owner == "alice"


def test_a_second_run_skips_everything_and_changes_nothing(
        source: Side, target: Side, owned: dict[str, Any]) -> None:
    assert migrate(source, target).exit_code == 0
    before = target.data.snapshot()
    again = migrate(source, target)
    assert again.exit_code == 0, again.output
    assert summary(again) == ["copied 0 drop(s) (0 bytes), skipped 6, failed 0; "
                              "0 expired or exhausted not copied",
                              "copied 0 token(s), skipped 2, failed 0"]
    assert target.data.snapshot() == before


def test_expired_and_exhausted_drops_are_not_copied(source: Side, target: Side) -> None:
    with source.app() as app:
        expired, exhausted, live = (put(app, b"x") for _ in range(3))
        service_of(app).metadata.update(expired["slug"], {"expires_at": now() - 1})
        service_of(app).metadata.update(exhausted["slug"], {"max_downloads": 1})
        app.test_client().get(f"/{exhausted['slug']}").close()
    result = migrate(source, target)
    assert result.exit_code == 0, result.output
    assert summary(result)[0] == ("copied 1 drop(s) (1 bytes), skipped 0, failed 0; "
                                  "2 expired or exhausted not copied")
    assert list(target.drops()) == [live["slug"]]


def test_a_token_name_the_target_has_is_skipped_and_kept(source: Side, target: Side) -> None:
    for where in (source, target):
        CliRunner().invoke(main, ["token", "create", "alice", "--config", str(where.config)])
    theirs = target.tokens()
    result = migrate(source, target)
    assert result.exit_code == 0, result.output
    assert summary(result)[1] == "copied 0 token(s), skipped 1, failed 0"
    assert target.tokens() == theirs != source.tokens()


def test_a_dry_run_lists_everything_and_writes_nothing(
        source: Side, target: Side, owned: dict[str, Any]) -> None:
    # something already there, to be skipped
    CliRunner().invoke(main, ["token", "create", "bob", "--config", str(target.config)])
    first = migrate(source, target, "--dry-run")
    assert first.exit_code == 0, first.output
    out = first.stdout.splitlines()
    assert "would copy token alice" in out
    assert "would skip token bob (already in the target)" in out
    for slug, data in owned["bytes"].items():
        assert f"would copy drop {slug} ({len(data)} bytes)" in out
    assert summary(first)[1] == "would copy 1 token(s), would skip 1, would fail 0"
    assert target.data.records() == [] and target.data.blob_files() == {}
    assert target.data.staging_files() == []
    assert [token.name for token in target.tokens()] == ["bob"]
    # once copied, a dry run says each would be skipped
    assert migrate(source, target).exit_code == 0
    again = migrate(source, target, "--dry-run")
    assert "would skip drop q3-report (already in the target)" in again.stdout.splitlines()


def test_any_pair_of_backends_works_both_ways(tmp_path: Path, source: Side, target: Side,
                                             owned: dict[str, Any]) -> None:
    """Through the interfaces alone: into in-memory backends (a plugin whose files are not
    real files), then from them into another data dir, every record unchanged."""
    memory = MemoryPlugin()
    config = load_config(str(source.config), environ={}, overrides={
        "storage": {"plugin": "memory"}, "metadata": {"plugin": "memory"}})
    in_memory = composition.start(config, [memory])
    try:
        for here, there in ((source.service(), nullcontext(in_memory)),
                            (nullcontext(in_memory), target.service())):
            with here as src, there as dst:
                outcomes = list(Migration(src, dst).run())
            assert {o.status for o in outcomes} == {"copied"}, outcomes
    finally:
        in_memory.close()
    assert len(memory.storage.blobs) == 6 and memory.storage.staging == {}
    before, after = source.drops(), target.drops()
    assert {slug: dataclasses.replace(drop, blob_id="") for slug, drop in after.items()} == \
        {slug: dataclasses.replace(drop, blob_id="") for slug, drop in before.items()}
    assert target.tokens() == source.tokens()
    assert_clean(target)


# -- failures --------------------------------------------------------------------------------

def three_drops(source: Side) -> list[str]:
    with source.app() as app:
        return [put(app, bytes([n]) * (100_000 + n))["slug"] for n in range(3)]


@pytest.mark.parametrize("fault", ["EIO", "interrupt"])
def test_a_target_failing_on_the_nth_file_leaves_nothing_and_a_rerun_completes(
        tmp_path: Path, source: Side, faults: None, fault: str) -> None:
    slugs = three_drops(source)
    broken = side(tmp_path, "target", storage="nth_failing_storage",
                  nth_failing_storage={"fail_at": 2, "fault": fault})
    result = migrate(source, broken)
    assert result.exit_code == 1, result.output
    assert_clean(broken)
    if fault == "EIO":  # that drop fails, the next one is copied
        assert [line for line in result.stderr.splitlines() if line.startswith("failed ")] == \
            [f"failed drop {slugs[1]}: storage error while writing: Input/output error"]
        assert sorted(broken.drops()) == sorted([slugs[0], slugs[2]])
        assert summary(result)[0].startswith("copied 2 drop(s) (200002 bytes), skipped 0, "
                                             "failed 1;")
    else:  # Ctrl-C stops the run once the file in flight is cleaned up
        assert "Aborted!" in result.output
        assert list(broken.drops()) == [slugs[0]]
    healed = side(tmp_path, "target")  # the same data dir, the fault gone
    rerun = migrate(source, healed)
    assert rerun.exit_code == 0, rerun.output
    assert sorted(healed.drops()) == sorted(slugs)
    assert_clean(healed)
    for slug, drop in source.drops().items():
        assert healed.data.blob_path(healed.drops()[slug].blob_id).read_bytes() == \
            source.data.blob_path(drop.blob_id).read_bytes()


@pytest.mark.parametrize("where", ["storage", "metadata"])
def test_a_killed_run_leaves_only_what_gc_removes_and_a_rerun_completes(
        tmp_path: Path, source: Side, where: str) -> None:
    """SIGKILL mid-file leaves its staging file; SIGKILL between publish and insert, a
    file without a record. Neither is visible under a slug; gc removes both."""
    slugs = three_drops(source)
    backend = {"storage": "nth_failing_storage", "metadata": "nth_failing_sqlite"}[where]
    broken = side(tmp_path, "target", **{where: backend},
                  **{backend: {"fail_at": 2, "fault": "kill"}})
    env = {name: value for name, value in os.environ.items() if not is_teledrop_setting(name)}
    env.update(install_plugins(tmp_path / "site",
                               {"migrate_faults": "tests.plugins.migrate_faults"}))
    env.update(entry_points_env("migrate_faults"))
    killed = subprocess.run([str(TELEDROP_SCRIPT), "migrate", "--config", str(source.config),
                             "--to", str(broken.config)], env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = {"storage": "staging debris: ", "metadata": "file without record: "}[where]
    problems = broken.data.problems()
    assert len(problems) == 1 and problems[0].startswith(left), problems
    assert [record["slug"] for record in broken.data.records()] == [slugs[0]]
    healed = side(tmp_path, "target")
    assert migrate(source, healed).exit_code == 0
    collected = CliRunner().invoke(main, ["gc", "--staging-older-than", "0s",
                                          "--config", str(healed.config)])
    assert collected.exit_code == 0 and collected.stdout.splitlines()[-1] == "removed 1 item(s)"
    assert sorted(healed.drops()) == sorted(slugs)
    assert_clean(healed)


@pytest.mark.parametrize(("fault", "copied"), [("refuse", [0, 2]), ("lost", [0, 1, 2])])
def test_a_failed_insert_discards_the_published_file_unless_it_landed(
        tmp_path: Path, source: Side, faults: None, fault: str, copied: list[int]) -> None:
    """``refuse``: nothing inserted, so the file goes; ``lost``: inserted, but the answer
    was an error, so the record (read back) and its file stay: a copy."""
    slugs = three_drops(source)
    broken = side(tmp_path, "target", metadata="nth_failing_sqlite",
                  nth_failing_sqlite={"fail_at": 2, "fault": fault})
    result = migrate(source, broken)
    failed = f"failed drop {slugs[1]}: metadata store error: connection lost"
    refused = fault == "refuse"
    assert result.exit_code == (1 if refused else 0), result.output
    assert (failed in result.stderr) == refused, result.stderr
    assert sorted(broken.drops()) == sorted(slugs[n] for n in copied)
    assert_clean(broken)
    assert len(broken.data.blob_files()) == len(copied)


def test_an_insert_that_cannot_be_checked_keeps_its_file_for_the_rerun(
        tmp_path: Path, source: Side, faults: None) -> None:
    slugs = three_drops(source)
    broken = side(tmp_path, "target", metadata="nth_failing_sqlite",
                  nth_failing_sqlite={"fail_at": 2, "fault": "unknown"})
    result = migrate(source, broken)
    assert result.exit_code == 1, result.output
    assert any(line.startswith(f"failed drop {slugs[1]}: ") and "is kept in case the record landed" in line
               for line in result.stderr.splitlines()), result.stderr
    # The record did land: discarding its file would have broken the link.
    assert sorted(broken.drops()) == sorted(slugs)
    assert_clean(broken)
    rerun = migrate(source, side(tmp_path, "target"))
    assert rerun.exit_code == 0 and summary(rerun)[0].startswith("copied 0 drop(s) (0 bytes), "
                                                                 "skipped 3")


@pytest.mark.parametrize("damage", [
    lambda data: bytes([data[0] ^ 1]) + data[1:],  # same size, other bytes
    lambda data: data[:-1],
    lambda data: data + b"!",
], ids=["same-size", "truncated", "longer"])
def test_a_corrupt_source_file_fails_that_drop_alone(source: Side, target: Side,
                                                     damage: Any) -> None:
    slugs = three_drops(source)
    bad = source.drops()[slugs[1]]
    path = source.data.blob_path(bad.blob_id)
    path.write_bytes(damage(path.read_bytes()))
    result = migrate(source, target)
    assert result.exit_code == 1, result.output
    failures = [line for line in result.stderr.splitlines() if line.startswith("failed ")]
    assert len(failures) == 1 and failures[0].startswith(
        f"failed drop {slugs[1]}: the source file does not match its record: "), failures
    assert sorted(target.drops()) == sorted([slugs[0], slugs[2]])
    assert_clean(target)
    assert len(target.data.blob_files()) == 2


def test_a_missing_source_file_fails_that_drop_alone(source: Side, target: Side) -> None:
    slugs = three_drops(source)
    source.data.blob_path(source.drops()[slugs[0]].blob_id).unlink()
    result = migrate(source, target)
    assert result.exit_code == 1, result.output
    assert f"failed drop {slugs[0]}: blob " in result.stderr and " is missing" in result.stderr
    assert sorted(target.drops()) == sorted(slugs[1:])
    assert_clean(target)


def test_a_slug_the_target_holds_with_another_file_is_a_failure_and_untouched(
        source: Side, target: Side) -> None:
    with source.app() as app:
        put(app, b"the source's report", slug="report")
        other = put(app, b"another")
    with target.app() as app:
        put(app, b"the target's own report", slug="report")
    before = target.drops()["report"]
    snapshot = target.data.snapshot()
    for args in (("--dry-run",), ()):
        result = migrate(source, target, *args)
        assert result.exit_code == 1, result.output
        verb = "would fail" if args else "failed"
        assert any(line.startswith(f"{verb} drop report: the target holds another file under "
                                   "this slug") for line in result.stderr.splitlines()), result
    assert target.drops()["report"] == before
    assert target.data.blob_path(before.blob_id).read_bytes() == b"the target's own report"
    assert target.data.snapshot().records["report"] == snapshot.records["report"]
    assert sorted(target.drops()) == sorted(["report", other["slug"]])


def test_a_drop_hashed_with_an_unknown_algorithm_fails(source: Side, target: Side) -> None:
    with source.app() as app:
        slug = put(app, b"odd")["slug"]
        metadata = service_of(app).metadata
        drop = metadata.get(slug)
        metadata.delete(slug)
        metadata.insert(dataclasses.replace(drop, hash="md5:" + "0" * 32))
    result = migrate(source, target)
    assert result.exit_code == 1
    assert f"failed drop {slug}: recorded with md5, which no hasher here computes" \
        in result.stderr
    assert target.drops() == {}
    assert_clean(target)


# -- the configs -----------------------------------------------------------------------------

def test_env_overrides_apply_to_the_source_and_never_to_the_target(
        tmp_path: Path, source: Side, target: Side, monkeypatch: pytest.MonkeyPatch) -> None:
    slugs = three_drops(source)
    decoy = side(tmp_path, "decoy")  # what the source's file names; the env points elsewhere
    monkeypatch.setenv("TELEDROP_CONFIG", str(decoy.config))
    for name, value in (("LOCAL_STORAGE__ROOT", source.data.files),
                        ("SQLITE_META__PATH", source.data.db_path)):
        # Applied to the target too, these would copy the source onto itself: all skipped.
        monkeypatch.setenv(f"TELEDROP_PLUGINS__{name}", f'"{value}"')
    result = CliRunner().invoke(main, ["migrate", "--to", str(target.config)])
    assert result.exit_code == 0, result.output
    assert summary(result)[0].startswith("copied 3 drop(s)")
    assert sorted(target.drops()) == sorted(slugs)
    assert decoy.data.records() == []


def test_a_broken_target_config_is_one_line(tmp_path: Path, source: Side) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[storage]\nplugin = "nowhere"\n')
    result = migrate(source, broken)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert str(broken) in result.output and "storage.plugin" in result.output
    as_source = CliRunner().invoke(main, ["migrate", "--config", str(broken),
                                          "--to", str(source.config)])
    assert as_source.exit_code == 1 and len(as_source.output.strip().splitlines()) == 1
    assert str(broken) in as_source.output and "Traceback" not in as_source.output
    missing = migrate(source, tmp_path / "nope.toml")
    assert missing.exit_code == 1 and "no such file" in missing.output
    no_target = CliRunner().invoke(main, ["migrate", "--config", str(source.config)])
    assert no_target.exit_code == 2 and "--to" in no_target.output


# -- streaming and progress --------------------------------------------------------------------

def test_memory_stays_flat_for_a_file_much_larger_than_the_chunk(
        source: Side, target: Side) -> None:
    chunk = 64 * 1024
    with source.app() as app:
        small, big = (put(app, os.urandom(size))["slug"] for size in (MiB, 16 * MiB))

    def peak_copying(slug: str) -> int:
        with source.service() as src, target.service() as dst:
            migration = Migration(src, dst, chunk_size=chunk)
            drop = src.metadata.get(slug)
            tracemalloc.start()
            try:
                outcome = migration.copy_drop(drop)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
        assert outcome.status == "copied", outcome
        return peak

    small_peak, big_peak = peak_copying(small), peak_copying(big)
    assert big_peak < 8 * chunk, big_peak  # a few chunks, never the file
    assert big_peak - small_peak < 2 * chunk, (small_peak, big_peak)
    assert target.data.blob_path(target.drops()[big].blob_id).stat().st_size == 16 * MiB


def test_the_progress_bar_counts_bytes_and_failures_get_lines_of_their_own(
        source: Side, target: Side) -> None:
    slugs = three_drops(source)
    path = source.data.blob_path(source.drops()[slugs[0]].blob_id)
    path.write_bytes(b"damaged")
    result = migrate(source, target, "--progress")
    assert result.exit_code == 1
    stderr = result.stderr.split("\n")
    assert any(line.rsplit("\r", 1)[-1].startswith(f"failed drop {slugs[0]}: ")
               for line in stderr), stderr
    last = stderr[-2].rsplit("\r", 1)[-1]  # the bar as finish() left it
    assert last.startswith("migrate  [") and " 100% " in last and "293.0/293.0 KiB" in last
    quiet = migrate(source, side(source.data.root.parent, "elsewhere"))
    assert "migrate  [" not in quiet.stderr  # not a terminal: no bar by default
