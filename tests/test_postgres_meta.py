"""PostgresMetadata honours the metadata contract against a real PostgreSQL, and holds up
as the store of many hosts: a schema version it migrates once however many hosts start
together and refuses to run past, a pool that survives a database restart and stays within
``max_connections``, a full disk as 507, a DSN whose password is never printed, a clear
start-up error when the server cannot be reached, and an HTTP round trip on top of it."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from flask import Flask

import teledrop.plugins.sql_metadata.store as sql_store
import teledrop_postgres_meta
import teledrop_postgres_meta.metadata
from teledrop.cli import main
from teledrop.core.config import Config, load_config
from teledrop.core.drop import now
from teledrop.core.errors import MetadataFull, MetadataUnavailable, SlugTaken, StartupError
from teledrop.core.interfaces import DropQuery, Metadata
from teledrop.plugins.sql_metadata import SCHEMA_VERSION
from teledrop.testing import MetadataContract, sample_drop
from teledrop.testing.metadata import race, sample_upload
from teledrop.web import create_app
from teledrop.web.app import service_of
from teledrop_postgres_meta import DEFAULT_DSN, PostgresMetadata
from tests.http_helpers import JSON, assert_json_error, post_file, upload
from tests.support.entry_points import is_teledrop_setting
from tests.services.postgres import PostgresServer, ThrowawayPostgres, free_port
from tests.live_server import live_server, wait_until
from tests.support.startup import assert_refused_with_one_line, start_refused


#: Apps and servers started here load postgres_meta besides the suite's own plugins.
pytestmark = pytest.mark.entry_points("postgres_meta")


@pytest.fixture
def app_on(make_config: Callable[..., Config]) -> Iterator[Callable[..., Flask]]:
    """``app_on(dsn, **settings)``: an app whose metadata is postgres_meta on ``dsn``."""
    with contextlib.ExitStack() as services:
        def make(dsn: str = DEFAULT_DSN, **settings: Any) -> Flask:
            app = create_app(make_config(metadata={"plugin": "postgres_meta"},
                                         plugins={"postgres_meta": {"dsn": dsn, **settings}}))
            services.callback(service_of(app).close)
            app.testing = True
            return app

        yield make


@pytest.fixture
def store(postgres_dsn: str) -> Iterator[PostgresMetadata]:
    metadata = PostgresMetadata(postgres_dsn)
    yield metadata
    metadata.close()


class TestPostgresMetadataContract(MetadataContract):
    @pytest.fixture
    def metadata(self, store: PostgresMetadata) -> PostgresMetadata:
        return store


def query(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def tables(dsn: str) -> set[str]:
    return {name for (name,) in query(dsn, "SELECT tablename FROM pg_tables "
                                           "WHERE schemaname = 'public'")}


def connections(dsn: str, conn: psycopg.Connection[Any] | None = None) -> int:
    """How many sessions the server has open on this DSN's database (``conn``'s, or the
    one opened to ask, excluded)."""
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    sql = ("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
           "AND pid <> pg_backend_pid()")
    if conn is None:
        return query(dsn, sql, name)[0][0]
    return conn.execute(sql, (name,)).fetchone()[0]  # type: ignore[index]


# -- schema and migrations ----------------------------------------------------------------

def test_a_new_database_gets_the_schema_at_the_current_version(store: PostgresMetadata,
                                                               postgres_dsn: str) -> None:
    assert {"drops", "tokens", "teledrop_schema"} <= tables(postgres_dsn)
    assert query(postgres_dsn, "SELECT version FROM teledrop_schema") == [(SCHEMA_VERSION,)]


def test_a_second_start_changes_nothing(store: PostgresMetadata, postgres_dsn: str) -> None:
    drop = sample_drop()
    store.insert(drop)
    schema = query(postgres_dsn, "SELECT table_name, column_name, data_type FROM "
                                 "information_schema.columns WHERE table_schema = 'public' "
                                 "ORDER BY 1, 2")
    again = PostgresMetadata(postgres_dsn)
    try:
        assert again.get(drop.slug) is not None
        assert query(postgres_dsn, "SELECT table_name, column_name, data_type FROM "
                                   "information_schema.columns WHERE table_schema = 'public' "
                                   "ORDER BY 1, 2") == schema
        assert query(postgres_dsn, "SELECT version FROM teledrop_schema") == [(SCHEMA_VERSION,)]
    finally:
        again.close()


def test_a_newer_schema_refuses_to_start_with_one_line(store: PostgresMetadata,
                                                       postgres_dsn: str) -> None:
    store.close()
    query(postgres_dsn, "UPDATE teledrop_schema SET version = %s", SCHEMA_VERSION + 1)
    with pytest.raises(MetadataUnavailable) as refused:
        PostgresMetadata(postgres_dsn)
    message = str(refused.value)
    assert "\n" not in message
    assert f"schema version {SCHEMA_VERSION + 1}" in message and "upgrade" in message
    assert query(postgres_dsn, "SELECT version FROM teledrop_schema") == [(SCHEMA_VERSION + 1,)]


def _start_store(dsn: str, results: Any) -> None:
    """One host starting: its own process, its own pool."""
    try:
        PostgresMetadata(dsn).close()
        results.put("ok")
    except BaseException as exc:  # noqa: BLE001 - sent to the parent
        results.put(f"{type(exc).__name__}: {exc}")


def test_hosts_starting_at_once_on_a_new_database_create_the_schema_once(
        postgres_dsn: str) -> None:
    hosts = 6
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    starts = [ctx.Process(target=_start_store, args=(postgres_dsn, results))
              for _ in range(hosts)]
    for process in starts:
        process.start()
    outcomes = [results.get(timeout=60) for _ in starts]
    for process in starts:
        process.join(timeout=60)
    assert outcomes == ["ok"] * hosts
    assert query(postgres_dsn, "SELECT version FROM teledrop_schema") == [(SCHEMA_VERSION,)]
    assert {"drops", "tokens"} <= tables(postgres_dsn)


class _NextVersion(PostgresMetadata):
    """A teledrop one schema version ahead: its migration adds a column."""

    def add_column(self) -> None:
        self.db.execute_sql('ALTER TABLE "drops" ADD COLUMN "note" TEXT')

    def add_column_then_fail(self) -> None:
        self.add_column()
        self.db.execute_sql('SELECT "no_such_column" FROM "drops"')


@pytest.mark.parametrize("step", ["add_column", "add_column_then_fail"])
def test_the_next_migration_is_one_entry_and_all_or_nothing(
        store: PostgresMetadata, postgres_dsn: str, step: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    drop = sample_drop()
    store.insert(drop)
    monkeypatch.setattr(sql_store, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setattr(_NextVersion, "migrations",
                        {SCHEMA_VERSION + 1: getattr(_NextVersion, step)})
    columns = "SELECT column_name FROM information_schema.columns WHERE table_name = 'drops'"
    if step == "add_column":
        _NextVersion(postgres_dsn).close()
        assert ("note",) in query(postgres_dsn, columns)
        assert query(postgres_dsn, "SELECT version FROM teledrop_schema") == \
            [(SCHEMA_VERSION + 1,)]
    else:
        with pytest.raises(MetadataUnavailable, match="no_such_column"):
            _NextVersion(postgres_dsn)
        assert ("note",) not in query(postgres_dsn, columns)  # the DDL was rolled back too
        assert query(postgres_dsn, "SELECT version FROM teledrop_schema") == [(SCHEMA_VERSION,)]
    assert query(postgres_dsn, "SELECT slug FROM drops") == [(drop.slug,)]


def test_schema_2_gains_the_uploads_table_and_keeps_its_drops(
        store: PostgresMetadata, postgres_dsn: str) -> None:
    drop = sample_drop()
    store.insert(drop)
    query(postgres_dsn, "DROP TABLE uploads")  # as schema 2 left it
    query(postgres_dsn, "UPDATE teledrop_schema SET version = 2")
    migrated = PostgresMetadata(postgres_dsn)
    try:
        assert query(postgres_dsn, "SELECT version FROM teledrop_schema") == [(4,)]
        assert migrated.get(drop.slug).blob_id == drop.blob_id
        upload = sample_upload()
        migrated.insert_upload(upload)
        assert migrated.get_upload(upload.id) == upload
    finally:
        migrated.close()


def test_schema_3_uploads_become_tus_ones(store: PostgresMetadata, postgres_dsn: str) -> None:
    upload = sample_upload()
    store.insert_upload(upload)
    query(postgres_dsn, 'ALTER TABLE uploads DROP COLUMN "kind"')  # as schema 3 left it
    query(postgres_dsn, "UPDATE teledrop_schema SET version = 3")
    migrated = PostgresMetadata(postgres_dsn)
    try:
        assert query(postgres_dsn, "SELECT version FROM teledrop_schema") == [(4,)]
        assert migrated.get_upload(upload.id) == upload and upload.kind == "tus"
        direct = sample_upload(kind="direct")
        migrated.insert_upload(direct)
        assert migrated.get_upload(direct.id) == direct
    finally:
        migrated.close()


def test_a_version_without_a_migration_refuses_to_start(store: PostgresMetadata,
                                                        postgres_dsn: str) -> None:
    query(postgres_dsn, "UPDATE teledrop_schema SET version = 1")
    with pytest.raises(MetadataUnavailable, match="schema version 1, which this teledrop "
                                                  "cannot migrate"):
        PostgresMetadata(postgres_dsn)


# -- errors -------------------------------------------------------------------------------

def test_a_record_the_table_refuses_is_not_a_taken_slug(store: PostgresMetadata) -> None:
    broken = sample_drop(slug="x" * 65)  # VARCHAR(64)
    with pytest.raises(MetadataUnavailable, match="too long"):
        store.insert(broken)
    nulled = sample_drop(filename=None)
    with pytest.raises(MetadataUnavailable, match="null value") as refused:
        store.insert(nulled)
    assert not isinstance(refused.value, SlugTaken)
    assert store.get(nulled.slug) is None


def test_a_dropped_table_is_unavailable_not_a_raw_error(store: PostgresMetadata,
                                                        postgres_dsn: str) -> None:
    query(postgres_dsn, "DROP TABLE drops")
    for call in (store.check, lambda: store.get("x"), lambda: store.insert(sample_drop()),
                 store.total_size, lambda: store.claim_download("x", now())):
        with pytest.raises(MetadataUnavailable, match="drops"):
            call()


@pytest.fixture
def restartable_dsn(restartable_postgres: ThrowawayPostgres) -> Iterator[str]:
    """A database of its own on a server the test may stop and start."""
    dsn = restartable_postgres.create_database()
    yield dsn
    if not restartable_postgres.running():
        restartable_postgres.start()
    restartable_postgres.drop_database(dsn)


@pytest.fixture
def tiny_tablespace(restartable_postgres: ThrowawayPostgres) -> Iterator[str]:
    """A 1 MiB tmpfs the server may put tables in (needs root to mount)."""
    if os.geteuid() != 0:
        pytest.fail("mounting a small tmpfs needs root: the suite runs as root (make test)")
    mount = restartable_postgres.root / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M,uid=postgres,gid=postgres,mode=700",
                    "tmpfs", str(mount)], check=True)
    name = f"tiny_{os.getpid()}_{time.monotonic_ns()}"
    try:
        restartable_postgres.admin(f"CREATE TABLESPACE {name} LOCATION '{mount}'")
        yield name
    finally:
        restartable_postgres.admin(f"DROP TABLESPACE IF EXISTS {name}")
        subprocess.run(["umount", str(mount)], check=True)
        mount.rmdir()


def fill(metadata: Metadata) -> MetadataFull:
    """Insert drops, large then small, until not even a small one fits; the last error."""
    for filename_size in (1500, 100, 1):
        with pytest.raises(MetadataFull) as full:
            for _ in range(5000):
                metadata.insert(sample_drop(filename="f" * filename_size))
    return full.value


def test_a_full_disk_is_metadata_full_and_the_rest_goes_on(tiny_tablespace: str,
                                                            restartable_dsn: str) -> None:
    dsn = restartable_dsn
    metadata = PostgresMetadata(dsn)
    try:
        kept = sample_drop()
        metadata.insert(kept)
        query(dsn, f"ALTER TABLE drops SET TABLESPACE {tiny_tablespace}")
        full = fill(metadata)
        assert full.status == 507 and full.code == "metadata_full"
        assert "could not extend file" in str(full)
        assert metadata.get(kept.slug) is not None  # reads go on
    finally:
        metadata.close()


# -- the pool -----------------------------------------------------------------------------

def fill_pool(metadata: PostgresMetadata, size: int) -> None:
    """Make the pool hold ``size`` connections, all idle again once this returns."""
    barrier = threading.Barrier(size)

    def take() -> None:
        with metadata.connection():
            barrier.wait()
            metadata.check()

    threads = [threading.Thread(target=take) for _ in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_the_pool_survives_a_server_restart(restartable_postgres: ThrowawayPostgres,
                                            restartable_dsn: str) -> None:
    dsn = restartable_dsn
    metadata = PostgresMetadata(dsn, max_connections=3)
    try:
        drop = sample_drop(max_downloads=None)
        metadata.insert(drop)
        fill_pool(metadata, 3)  # all idle when the server goes away
        settled(dsn, 3)
        restartable_postgres.stop()
        with pytest.raises(MetadataUnavailable) as down:
            metadata.get(drop.slug)
        assert "connection" in str(down.value) and "\n" not in str(down.value)
        with pytest.raises(MetadataUnavailable):
            metadata.check()
        restartable_postgres.start()
        # every dead connection is found on checkout: no request fails after the restart
        for expected in range(1, 7):
            claimed = metadata.claim_download(drop.slug, now())
            assert claimed is not None and claimed.downloads == expected
        metadata.check()
    finally:
        if not restartable_postgres.running():
            restartable_postgres.start()
        metadata.close()


@pytest.mark.alone  # 20 requests in the half second after the restart
def test_a_restart_mid_traffic_fails_only_requests_while_it_is_down(
        restartable_postgres: ThrowawayPostgres, restartable_dsn: str) -> None:
    metadata = PostgresMetadata(restartable_dsn, max_connections=2)
    drop = sample_drop(max_downloads=None)
    metadata.insert(drop)
    stop = threading.Event()
    log: list[tuple[float, str]] = []

    def traffic() -> None:
        while not stop.is_set():
            try:
                metadata.claim_download(drop.slug, now())
                log.append((time.monotonic(), "ok"))
            except MetadataUnavailable:
                log.append((time.monotonic(), "503"))
            except BaseException as exc:  # noqa: BLE001 - any other error fails the test
                log.append((time.monotonic(), repr(exc)))
            time.sleep(0.005)

    workers = [threading.Thread(target=traffic) for _ in range(4)]
    try:
        for worker in workers:
            worker.start()
        time.sleep(0.3)
        restartable_postgres.stop()
        time.sleep(0.5)
        restartable_postgres.start()
        back = time.monotonic()
        time.sleep(0.5)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        if not restartable_postgres.running():
            restartable_postgres.start()
    try:
        outcomes = {outcome for _, outcome in log}
        assert outcomes <= {"ok", "503"}, outcomes
        assert "503" in outcomes  # the outage was seen
        # once the server is back, only a request begun while it was down may fail
        late = [outcome for at, outcome in log if at > back]
        assert late.count("503") <= len(workers) and late[-20:] == ["ok"] * 20
        counted = metadata.get(drop.slug)
        assert counted is not None and counted.downloads == sum(1 for _, o in log if o == "ok")
    finally:
        metadata.close()


def settled(dsn: str, expected: int, conn: psycopg.Connection[Any] | None = None) -> None:
    """Wait until the server counts ``expected`` sessions on the database: a backend
    outlives its client's close by a moment. Asked over ``conn`` when given, so that no
    session opened to ask is still closing when the caller counts next."""
    deadline = time.monotonic() + 10
    while connections(dsn, conn) != expected:
        assert time.monotonic() < deadline, \
            f"{connections(dsn, conn)} sessions, not {expected}"
        time.sleep(0.02)


@contextlib.contextmanager
def thread_waiting_in(context: Callable[[], contextlib.AbstractContextManager[Any]]
                      ) -> Iterator[None]:
    """A thread that calls ``context()``, enters it and stays there until the block ends."""
    inside, leave = threading.Event(), threading.Event()

    def run() -> None:
        with context():
            inside.set()
            leave.wait(30)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert inside.wait(30)
        yield
    finally:
        leave.set()
        thread.join()


def test_more_threads_than_connections_share_the_pool(postgres_dsn: str) -> None:
    metadata = PostgresMetadata(postgres_dsn, max_connections=2)
    try:
        drop = sample_drop(max_downloads=None)
        metadata.insert(drop)
        seen: list[int] = []
        done = threading.Event()
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            # the start-up's closed connection has left the server (asked over the
            # watcher's own connection: a session opened to ask would linger too)
            settled(postgres_dsn, 1, conn)

            def watch() -> None:
                while not done.is_set():
                    seen.append(connections(postgres_dsn, conn))
                    time.sleep(0.01)

            watcher = threading.Thread(target=watch)
            watcher.start()
            try:
                # no thread closes the pool's idle connections on its way out: a closed
                # backend lingers on the server for a moment, counted beside the two left
                outcomes = race(12, lambda: [metadata.claim_download(drop.slug, now())
                                             for _ in range(25)], metadata, close=False)
            finally:
                done.set()
                watcher.join()
        assert [o for o in outcomes if isinstance(o, BaseException)] == []
        assert metadata.get(drop.slug).downloads == 12 * 25  # type: ignore[union-attr]
        assert seen and max(seen) <= 2
    finally:
        metadata.close()
    settled(postgres_dsn, 0)  # close() closed every connection


@pytest.mark.alone  # a free connection within a second
def test_a_thread_holds_no_connection_between_operations(postgres_dsn: str) -> None:
    metadata = PostgresMetadata(postgres_dsn, max_connections=1)
    try:
        drop = sample_drop()
        metadata.insert(drop)
        # a thread that made one request and lives on, idle
        with thread_waiting_in(lambda: contextlib.nullcontext(metadata.get(drop.slug))):
            started = time.monotonic()
            assert metadata.get(drop.slug) is not None  # the one connection is free
            assert time.monotonic() - started < 1
    finally:
        metadata.close()


def test_a_pool_exhausted_past_its_wait_is_unavailable(postgres_dsn: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(teledrop_postgres_meta.metadata, "POOL_WAIT", 0.3)
    metadata = PostgresMetadata(postgres_dsn, max_connections=1)
    with thread_waiting_in(metadata.connection):  # a long operation on the only connection
        with pytest.raises(MetadataUnavailable, match="(?i)max connections"):
            metadata.count()
    try:
        assert metadata.count() == 0  # free again
    finally:
        metadata.close()


def _use_after_fork(metadata: PostgresMetadata, slug: str, results: Any) -> None:
    try:
        claimed = metadata.claim_download(slug, now())
        results.put("ok" if claimed is not None else "none")
    except BaseException as exc:  # noqa: BLE001 - sent to the parent
        results.put(repr(exc))


def test_a_child_process_opens_its_own_pool(store: PostgresMetadata) -> None:
    drop = sample_drop(max_downloads=None)
    store.insert(drop)
    assert store.claim_download(drop.slug, now()) is not None  # a pooled connection, idle
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    children = [ctx.Process(target=_use_after_fork, args=(store, drop.slug, results))
                for _ in range(3)]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=60)
    assert outcomes == ["ok"] * 3
    # the parent's pooled connection was neither shared nor closed by the children
    assert store.claim_download(drop.slug, now()).downloads == 5  # type: ignore[union-attr]


# -- configuration and start-up -----------------------------------------------------------

def test_config_masks_the_password_of_the_dsn(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if is_teledrop_setting(name):
            monkeypatch.delenv(name)
    path = tmp_path / "teledrop.toml"
    path.write_text('[metadata]\nplugin = "postgres_meta"\n[plugins.postgres_meta]\n'
                    'dsn = "postgresql://teledrop:hunter2-s3cret@db.internal:5432/teledrop"\n'
                    'max_connections = 4\n')
    result = CliRunner().invoke(main, ["config", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    effective = tomllib.loads(result.output)["plugins"]["postgres_meta"]
    assert effective == {"dsn": "postgresql://teledrop:****@db.internal:5432/teledrop",
                         "max_connections": 4}
    monkeypatch.setenv("TELEDROP_PLUGINS__POSTGRES_META__DSN",
                       "host=db.internal dbname=teledrop password='hunter2 s3cret' user=t")
    result = CliRunner().invoke(main, ["config", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output and "s3cret" not in result.output
    assert tomllib.loads(result.output)["plugins"]["postgres_meta"]["dsn"] == \
        "host=db.internal dbname=teledrop password=**** user=t"


def test_the_defaults_are_the_documented_ones() -> None:
    settings = teledrop_postgres_meta.PostgresMetaSettings()
    assert (settings.dsn, settings.max_connections) == (
        "postgresql://teledrop@127.0.0.1:5432/teledrop", 8)


@pytest.mark.parametrize(("table", "key", "problem"), [
    ({"max_connections": 0}, "max_connections", "at least 1"),
    ({"dsn": "host=127.0.0.1 user=teledrop"}, "dsn", "names no database"),
    ({"dsn": "postgresql://u:pw@h/d?bogus=1"}, "dsn", "not a PostgreSQL connection string"),
])
def test_bad_settings_stop_start_up_with_one_line(app_on: Callable[..., Flask],
                                                  table: dict[str, Any], key: str,
                                                  problem: str) -> None:
    with pytest.raises(StartupError) as refused:
        app_on(**table)
    message = str(refused.value)
    assert f"plugins.postgres_meta.{key}" in message and problem in message
    assert "\n" not in message and "pw" not in message


def test_an_unreachable_server_stops_start_up_with_one_line(
        app_on: Callable[..., Flask]) -> None:
    dsn = f"postgresql://teledrop:hunter2@127.0.0.1:{free_port()}/teledrop"
    started = time.monotonic()
    with pytest.raises(StartupError) as refused:
        app_on(dsn)
    message = str(refused.value)
    assert "\n" not in message and "hunter2" not in message
    assert "metadata.plugin" in message and "postgres_meta" in message
    assert "refused" in message.lower()
    assert time.monotonic() - started < 10


def test_a_missing_database_stops_start_up_with_one_line(
        app_on: Callable[..., Flask], postgres_server: PostgresServer) -> None:
    dsn = psycopg.conninfo.make_conninfo(postgres_server.dsn, dbname="no_such_teledrop_db")
    with pytest.raises(StartupError, match='database "no_such_teledrop_db" does not exist'):
        app_on(dsn)


@pytest.mark.gunicorn
def test_a_server_with_an_unreachable_database_refuses_to_start(tmp_path: Path) -> None:
    dsn = f"postgresql://teledrop:hunter2@127.0.0.1:{free_port()}/teledrop"
    _, status, stderr = start_refused(tmp_path, "serve", {
        "metadata": {"plugin": "postgres_meta"}, "plugins": {"postgres_meta": {"dsn": dsn}}})
    assert_refused_with_one_line(status, stderr, "metadata.plugin", "postgres_meta")
    assert "hunter2" not in stderr


# -- over HTTP ----------------------------------------------------------------------------

@pytest.fixture
def pg_app(app_on: Callable[..., Flask], postgres_dsn: str) -> Flask:
    return app_on(postgres_dsn, max_connections=3)


def test_upload_download_and_delete_over_http(pg_app: Flask) -> None:
    assert isinstance(service_of(pg_app).metadata, PostgresMetadata)
    client = pg_app.test_client()
    assert client.get("/healthz").status_code == 200
    created = upload(client, b"on postgres\n", "pg.txt", title="Élan")
    response = client.get(f"/{created['slug']}")
    assert response.status_code == 200 and response.get_data() == b"on postgres\n"
    info = client.get(f"/api/drops/{created['slug']}", headers=JSON).get_json()
    assert (info["downloads"], info["title"]) == (1, "Élan")
    wrong = client.delete(f"/{created['slug']}", headers={"X-Delete-Token": "nope", **JSON})
    assert_json_error(wrong, 403, "forbidden")
    deleted = client.delete(f"/{created['slug']}",
                            headers={"X-Delete-Token": created["delete_token"]})
    assert deleted.status_code == 204
    assert client.get(f"/{created['slug']}").status_code == 404
    assert service_of(pg_app).metadata.count() == 0


def test_the_last_downloads_are_raced_over_http(pg_app: Flask) -> None:
    created = upload(pg_app.test_client(), b"three times", "r.txt", max_downloads="3")
    barrier = threading.Barrier(10)

    def fetch(_: int) -> int:
        client = pg_app.test_client()
        barrier.wait()  # all at once
        response = client.get(f"/{created['slug']}")
        response.close()
        return response.status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(fetch, range(10)))
    assert sorted(statuses) == [200] * 3 + [410] * 7
    assert service_of(pg_app).metadata.get(created["slug"]).downloads == 3  # type: ignore[union-attr]


def test_a_database_that_went_away_is_503_then_recovers(
        app_on: Callable[..., Flask], restartable_postgres: ThrowawayPostgres,
        restartable_dsn: str) -> None:
    app = app_on(restartable_dsn)
    client = app.test_client()
    created = upload(client, b"kept", "k.txt")
    try:
        restartable_postgres.stop()
        down = client.get(f"/{created['slug']}", headers=JSON)
        reason = assert_json_error(down, 503, "metadata_unavailable")
        assert reason.startswith("metadata store error (PostgreSQL database ")
        assert reason == " ".join(reason.split())  # one line, whatever the driver said
        assert client.get("/healthz").status_code == 503
    finally:
        restartable_postgres.start()
    assert client.get("/healthz").status_code == 200
    assert client.get(f"/{created['slug']}").get_data() == b"kept"


def test_a_full_metadata_disk_is_507_and_leaves_no_file(
        app_on: Callable[..., Flask], tiny_tablespace: str, restartable_dsn: str,
        data_dir: Path) -> None:
    dsn = restartable_dsn
    app = app_on(dsn)
    metadata = service_of(app).metadata
    query(dsn, f"ALTER TABLE drops SET TABLESPACE {tiny_tablespace}")
    fill(metadata)
    before = metadata.count()
    response = post_file(app.test_client(), b"no room", "x.txt", headers=JSON)
    assert_json_error(response, 507, "metadata_full")
    assert metadata.count() == before
    blobs = data_dir / "files" / "blobs"
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))



@pytest.mark.parametrize("icu", [True, False], ids=["icu", "database-locale"])
def test_the_search_folds_case_with_icu_or_a_utf8_database_locale(
        postgres_server: PostgresServer, icu: bool) -> None:
    """ICU folds whatever the database's locale (this one's ctype is C); a server built
    without ICU folds with the database's own locale, which must then be a UTF-8 one."""
    name = f"teledrop_test_ctype_{os.getpid()}_{int(icu)}"
    ctype = "C" if icu else "C.UTF-8"
    postgres_server.admin(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\' '
                          f"LC_COLLATE 'C' LC_CTYPE '{ctype}'")
    dsn = psycopg.conninfo.make_conninfo(postgres_server.dsn, dbname=name)
    metadata = PostgresMetadata(dsn)
    try:
        assert metadata._folds_with_icu is True  # this server has ICU
        metadata._folds_with_icu = icu
        drop = sample_drop(owner="o", filename="Élan-Report.txt")
        metadata.insert(drop)
        total, page = metadata.list_owned(DropQuery(owner="o", at=now(), search="éLAN"))
        assert (total, [d.slug for d in page]) == (1, [drop.slug])
    finally:
        metadata.close()
        postgres_server.drop_database(dsn)


@pytest.mark.gunicorn
def test_gunicorn_workers_share_the_database_and_outlive_its_restart(
        tmp_path: Path, restartable_postgres: ThrowawayPostgres, restartable_dsn: str) -> None:
    """Two workers, each with its own pool opened after fork: the last downloads are
    settled by the database; while it is down requests are 503 and a worker that boots
    meanwhile starts anyway; once it is back the same server serves again."""
    with live_server(tmp_path, server={"workers": 2, "threads": 4},
                     metadata={"plugin": "postgres_meta"},
                     plugins={"postgres_meta": {"dsn": restartable_dsn,
                                                "max_connections": 2}}) as server:
        assert wait_until(lambda: len(server.worker_pids()) == 2, 30)
        created = server.request("POST", "/", files={"file": ("w.txt", b"workers")},
                                 data={"max_downloads": "5"}, headers=JSON)
        assert created.status_code == 201, created.text
        slug = created.json()["slug"]
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda _: server.request("GET", f"/{slug}").status_code,
                                     range(16)))
        assert sorted(statuses) == [200] * 5 + [410] * 11
        assert query(restartable_dsn, "SELECT downloads FROM drops") == [(5,)]
        kept = server.request("PUT", "/kept.txt", data=b"kept", headers=JSON).json()["slug"]
        try:
            restartable_postgres.stop()
            down = server.request("GET", f"/{kept}", headers=JSON)
            assert down.status_code == 503
            assert down.json()["error"]["code"] == "metadata_unavailable"
            assert server.request("GET", "/healthz").status_code == 503
            victim = server.worker_pids()[0]
            os.kill(victim, signal.SIGKILL)
            assert wait_until(lambda: victim not in server.worker_pids()
                              and len(server.worker_pids()) == 2, 30)
            for _ in range(6):  # the new worker among them
                assert server.request("GET", f"/{kept}").status_code == 503
        finally:
            restartable_postgres.start()
        for _ in range(8):  # every worker's pool, every pooled connection
            again = server.request("GET", f"/{kept}")
            assert again.status_code == 200 and again.content == b"kept"
        assert server.proc.poll() is None
        assert "Traceback" not in server.log() and "failed to start" not in server.log()


def test_a_single_host_migrates_onto_postgres(tmp_path: Path, postgres_dsn: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``teledrop migrate`` from the default backends to postgres_meta: the drop, its
    counts and its delete token work on the target; a rerun skips it."""
    for name in list(os.environ):
        if is_teledrop_setting(name):
            monkeypatch.delenv(name)
    source, target = tmp_path / "source.toml", tmp_path / "target.toml"
    source.write_text(f'[plugins.local_storage]\nroot = "{tmp_path / "a"}"\n'
                      f'[plugins.sqlite_meta]\npath = "{tmp_path / "a.db"}"\n')
    target.write_text(f'[metadata]\nplugin = "postgres_meta"\n'
                      f'[plugins.local_storage]\nroot = "{tmp_path / "b"}"\n'
                      f'[plugins.postgres_meta]\ndsn = "{postgres_dsn}"\n')
    single = create_app(load_config(str(source), environ={}))
    created = upload(single.test_client(), b"moving up", "m.txt", max_downloads="4")
    assert single.test_client().get(f"/{created['slug']}").status_code == 200
    service_of(single).close()
    run = ["migrate", "--config", str(source), "--to", str(target)]
    result = CliRunner().invoke(main, run)
    assert result.exit_code == 0, result.output
    scaled = create_app(load_config(str(target), environ={}))
    try:
        client = scaled.test_client()
        assert isinstance(service_of(scaled).metadata, PostgresMetadata)
        info = client.get(f"/api/drops/{created['slug']}", headers=JSON).get_json()
        assert (info["downloads"], info["max_downloads"]) == (1, 4)
        assert client.get(f"/{created['slug']}").get_data() == b"moving up"
        again = CliRunner().invoke(main, run)
        assert again.exit_code == 0 and "skip" in again.output, again.output
        deleted = client.delete(f"/{created['slug']}",
                                headers={"X-Delete-Token": created["delete_token"]})
        assert deleted.status_code == 204
    finally:
        service_of(scaled).close()
