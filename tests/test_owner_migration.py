"""sqlite_meta's schema 1 → 2 migration (owners and tokens), on a database built by hand the way
teledrop before owners left it.

A schema-1 row survives with the new fields at their defaults and is served over HTTP as
before; ``user_version`` moves on (through 2) with the owner columns and the token store in place; the
migrated database takes owners, private drops and passwords; a second start changes nothing;
a migration that fails halfway leaves schema 1 untouched; two gunicorn workers migrating at
once do it once; and a database from a newer teledrop still refuses to start, with one line.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from teledrop.core.errors import StartupError
from teledrop.core.owners import create_token
from teledrop.web.app import service_of
from teledrop_sqlite_meta import SCHEMA_VERSION
from tests.http_helpers import JSON
from tests.live_server import live_server
from tests.support.startup import assert_refused_with_one_line, start_refused
from tests.support.owners import bearer, listed_slugs, owner_upload
from tests.support.schema_v1 import V1_COLUMNS, CONTENT, DELETE_TOKEN, SLUG, build_v1

NEW_COLUMNS = {"owner", "title", "description", "private", "password_hash", "pw_failures",
               "pw_window"}


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, args).fetchall()


def user_version(db: Path) -> int:
    return query(db, "PRAGMA user_version")[0][0]


def columns(db: Path, table: str) -> set[str]:
    return {row[1] for row in query(db, f"PRAGMA table_info({table})")}


def stored_row(db: Path) -> dict[str, Any]:
    with closing(sqlite3.connect(db)) as conn:
        conn.row_factory = sqlite3.Row
        return dict(conn.execute("SELECT * FROM drops WHERE slug = ?", (SLUG,)).fetchone())


@pytest.fixture
def migrated(make_app: Callable[..., Flask], data_dir: Path) -> tuple[Flask, dict[str, Any]]:
    row = build_v1(data_dir)
    return make_app(), row


def test_the_v1_row_survives_with_defaults_for_the_new_fields(
        migrated: tuple[Flask, dict[str, Any]], data_dir: Path) -> None:
    app, row = migrated
    stored = stored_row(data_dir / "teledrop.db")
    assert {c: stored[c] for c in V1_COLUMNS} == row
    assert {c: stored[c] for c in NEW_COLUMNS} == {
        "owner": None, "title": "", "description": "", "private": 0, "password_hash": None,
        "pw_failures": 0, "pw_window": 0}
    drop = service_of(app).metadata.get(SLUG)
    assert drop is not None and drop.owner is None and drop.private is False


def test_the_v1_drop_is_served_over_http_as_before(migrated: tuple[Flask, dict[str, Any]],
                                                   data_dir: Path) -> None:
    app, row = migrated
    client = app.test_client()
    info = client.get(f"/api/drops/{SLUG}").get_json()
    assert {k: info[k] for k in ("filename", "size", "content_type", "hash", "max_downloads",
                                 "downloads")} == \
        {k: row[k] for k in ("filename", "size", "content_type", "hash", "max_downloads",
                             "downloads")}
    assert (info["title"], info["description"], info["private"], info["has_password"]) == \
        ("", "", False, False)
    response = client.get(f"/{SLUG}")
    assert response.status_code == 200 and response.get_data() == CONTENT
    assert stored_row(data_dir / "teledrop.db")["downloads"] == row["downloads"] + 1
    deleted = client.delete(f"/{SLUG}", headers={"X-Delete-Token": DELETE_TOKEN})
    assert deleted.status_code == 204
    assert query(data_dir / "teledrop.db", "SELECT count(*) FROM drops") == [(0,)]


def test_user_version_moves_on_with_owner_columns_and_token_store(
        migrated: tuple[Flask, dict[str, Any]], data_dir: Path) -> None:
    db = data_dir / "teledrop.db"
    assert user_version(db) == SCHEMA_VERSION  # through 2, and on to the newest
    assert columns(db, "drops") == set(V1_COLUMNS) | NEW_COLUMNS
    assert {"name", "token_hash", "created_at"} <= columns(db, "tokens")
    indexed = {row[0] for row in query(db, "SELECT sql FROM sqlite_master WHERE type = 'index' "
                                           "AND tbl_name = 'drops' AND sql IS NOT NULL")}
    assert any("owner" in sql for sql in indexed)
    assert any("UNIQUE" in sql and "slug" in sql for sql in indexed)


def test_the_migrated_database_takes_owners_private_drops_and_passwords(
        migrated: tuple[Flask, dict[str, Any]]) -> None:
    app, _ = migrated
    client = app.test_client()
    token = create_token(service_of(app), "alice")
    mine = owner_upload(client, token, b"new", "new.txt", private="true", password="pw",
                        title="after the migration")
    assert listed_slugs(client, token) == [mine["slug"]]
    assert client.get(f"/{mine['slug']}").status_code == 404
    assert client.get(f"/{mine['slug']}", headers=bearer(token, False)).get_data() == b"new"
    # The old anonymous drop belongs to nobody: no owner can edit it.
    edit = client.patch(f"/api/drops/{SLUG}", json={"title": "claimed"}, headers=bearer(token))
    assert edit.status_code == 404


def test_a_second_start_changes_nothing(make_app: Callable[..., Flask], data_dir: Path,
                                        migrated: tuple[Flask, dict[str, Any]]) -> None:
    db = data_dir / "teledrop.db"
    schema = query(db, "SELECT sql FROM sqlite_master ORDER BY name")
    before = stored_row(db)
    again = make_app()
    assert user_version(db) == SCHEMA_VERSION
    assert query(db, "SELECT sql FROM sqlite_master ORDER BY name") == schema
    assert stored_row(db) == before
    assert again.test_client().get(f"/{SLUG}").get_data() == CONTENT


def test_a_migration_that_fails_halfway_leaves_schema_1(make_app: Callable[..., Flask],
                                                        data_dir: Path) -> None:
    db = data_dir / "teledrop.db"
    build_v1(data_dir)
    # A column the migration wants to add already exists: its third statement fails.
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("ALTER TABLE drops ADD COLUMN description TEXT")
        conn.commit()
    with pytest.raises(StartupError) as refused:
        make_app()
    assert "\n" not in str(refused.value) and "description" in str(refused.value)
    assert user_version(db) == 1
    assert columns(db, "drops") == set(V1_COLUMNS) | {"description"}
    assert "tokens" not in {row[0] for row in query(db, "SELECT name FROM sqlite_master")}


def test_a_newer_schema_refuses_to_start_and_is_left_alone(make_app: Callable[..., Flask],
                                                           data_dir: Path) -> None:
    db = data_dir / "teledrop.db"
    build_v1(data_dir, version=SCHEMA_VERSION + 1)
    before = stored_row(db)
    with pytest.raises(StartupError) as refused:
        make_app()
    message = str(refused.value)
    assert "\n" not in message
    assert f"schema version {SCHEMA_VERSION + 1}" in message and "upgrade" in message
    assert user_version(db) == SCHEMA_VERSION + 1
    assert columns(db, "drops") == set(V1_COLUMNS)
    assert stored_row(db) == before


@pytest.mark.gunicorn
def test_two_gunicorn_workers_migrate_a_schema_1_database(tmp_path: Path) -> None:
    build_v1(tmp_path / "data")
    with live_server(tmp_path, server={"workers": 2}) as server:
        info = server.request("GET", f"/api/drops/{SLUG}", headers=JSON)
        assert info.status_code == 200 and info.json()["has_password"] is False
        assert server.request("GET", f"/{SLUG}").content == CONTENT
        fresh = server.request("POST", "/", files={"file": ("n.txt", b"n")},
                               data={"title": "new"}, headers=JSON)
        assert fresh.status_code == 201 and fresh.json()["title"] == "new"
        server.data.assert_consistent(timeout=0)
    assert user_version(tmp_path / "data" / "teledrop.db") == SCHEMA_VERSION


@pytest.mark.gunicorn
@pytest.mark.parametrize("command", ["gunicorn", "serve"])
def test_a_server_on_a_newer_schema_refuses_to_start_with_one_line(tmp_path: Path,
                                                                   command: str) -> None:
    build_v1(tmp_path / "data", version=SCHEMA_VERSION + 1)
    _, status, stderr = start_refused(tmp_path, command, {})
    assert_refused_with_one_line(status, stderr, "metadata.plugin",
                                 f"schema version {SCHEMA_VERSION + 1}")
    assert user_version(tmp_path / "data" / "teledrop.db") == SCHEMA_VERSION + 1
