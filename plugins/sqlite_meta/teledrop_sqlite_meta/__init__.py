"""teledrop's default metadata store: peewee on SQLite.

WAL mode with a busy timeout, one connection per thread (peewee's default), opened lazily
so that each gunicorn worker opens its own after fork. Every race that matters (a taken
slug, the last download, delete against download) is settled by one SQL statement (see
:mod:`teledrop.plugins.sql_metadata`). The schema version lives in ``PRAGMA user_version``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from typing import Any

import peewee

from teledrop import hookimpl
from teledrop.core.drop import Drop
from teledrop.core.errors import MetadataUnavailable
from teledrop.plugins.sql_metadata import COLUMNS, COUNT_DOWNLOAD, SCHEMA_VERSION, SqlMetadata, \
    add_upload_kind, add_uploads_table, operation, transaction

__all__ = ["SCHEMA_VERSION", "SqliteMetaSettings", "SqliteMetadata"]

#: UPDATE ... RETURNING, which counts a download in one statement.
MIN_SQLITE = (3, 35, 0)
SYNCHRONOUS_MODES = ("off", "normal", "full", "extra")


@dataclass(frozen=True)
class SqliteMetaSettings:
    path: str = "data/teledrop.db"
    #: milliseconds a writer waits for another process's lock before giving up (503).
    busy_timeout: int = 5000
    #: SQLite's ``synchronous``: "full" makes every committed drop survive a power cut.
    synchronous: str = "full"

    def check(self) -> dict[str, str]:
        problems = {}
        if self.synchronous.lower() not in SYNCHRONOUS_MODES:
            problems["synchronous"] = f"expected one of {', '.join(SYNCHRONOUS_MODES)}"
        if self.busy_timeout < 0:
            problems["busy_timeout"] = "cannot be negative"
        return problems


@hookimpl
def teledrop_config_schema() -> dict[str, type]:
    return {"sqlite_meta": SqliteMetaSettings}


@hookimpl
def teledrop_metadata_backends() -> dict[str, Any]:
    return {"sqlite_meta": SqliteMetadata.from_settings}


#: Schema 1 → 2: the owner columns and the token store.
_MIGRATE_TO_2 = (
    "ALTER TABLE drops ADD COLUMN owner VARCHAR(80)",
    "ALTER TABLE drops ADD COLUMN title VARCHAR(200) NOT NULL DEFAULT ''",
    "ALTER TABLE drops ADD COLUMN description TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE drops ADD COLUMN private INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE drops ADD COLUMN password_hash VARCHAR(200)",
    "ALTER TABLE drops ADD COLUMN pw_failures INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE drops ADD COLUMN pw_window INTEGER NOT NULL DEFAULT 0",
    "CREATE INDEX drops_owner ON drops (owner)",
)


def _migrate_to_2(store: SqlMetadata) -> None:
    for statement in _MIGRATE_TO_2:
        store.db.execute_sql(statement)
    store.db.create_tables([store.Token])


#: A drop without max_downloads, counted by a commit that is not fsynced (see
#: ``claim_download``).
_CLAIM_UNLIMITED = f'{COUNT_DOWNLOAD}AND "max_downloads" IS NULL RETURNING {COLUMNS}'


def _casefold(text: str | None) -> str | None:
    """Case folding for all of Unicode: SQLite's own lower() folds ASCII only."""
    return None if text is None else text.casefold()


class SqliteMetadata(SqlMetadata):
    driver_errors = (sqlite3.Error,)
    migrations = {2: _migrate_to_2, 3: add_uploads_table, 4: add_upload_kind}

    def __init__(self, path: str, busy_timeout: int = 5000, synchronous: str = "full") -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise MetadataUnavailable(
                f"SQLite {sqlite3.sqlite_version} is too old: sqlite_meta needs "
                f"{'.'.join(map(str, MIN_SQLITE))} or newer (UPDATE ... RETURNING)")
        self.path = os.path.abspath(path)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        db = peewee.SqliteDatabase(
            self.path,
            timeout=busy_timeout / 1000,
            pragmas={
                "journal_mode": "wal",
                "busy_timeout": busy_timeout,
                "synchronous": synchronous.lower(),
                "foreign_keys": 1,
            },
        )
        db.register_function(_casefold, "casefold", 1, deterministic=True)
        super().__init__(db, self.path)
        self.synchronous = synchronous.lower()
        self._relax_counts = SYNCHRONOUS_MODES.index(self.synchronous) > \
            SYNCHRONOUS_MODES.index("normal")
        try:
            self.migrate()
        finally:
            # Connections are per thread and must be opened after fork: drop this one
            # (and a failed start leaves none open).
            self.db.close()

    @classmethod
    def from_settings(cls, settings: SqliteMetaSettings, config: Any) -> SqliteMetadata:
        return cls(settings.path, settings.busy_timeout, settings.synchronous)

    def connection(self) -> contextlib.AbstractContextManager[Any]:
        # this thread's own, kept open: opening one (and its pragmas) per call costs more
        return contextlib.nullcontext()

    def schema_version(self) -> int:
        return self.scalar("PRAGMA user_version")

    def set_schema_version(self, version: int) -> None:
        self.db.execute_sql(f"PRAGMA user_version = {int(version)}")

    def migration_transaction(self) -> contextlib.AbstractContextManager[Any]:
        # IMMEDIATE: the write lock at once, so two processes cannot both migrate
        return transaction(self.db, lock_type="IMMEDIATE")

    def is_full(self, error: BaseException) -> bool:
        code = getattr(error, "sqlite_errorcode", None)  # extended: the low byte is primary
        return isinstance(error, sqlite3.Error) and code is not None \
            and code & 0xFF == sqlite3.SQLITE_FULL

    def is_slug_clash(self, error: BaseException) -> bool:
        return "drops.slug" in str(error)

    def contains(self, column: Any, needle: str) -> Any:
        # instr, not LIKE: a search for "%" or "_" means those characters
        return peewee.fn.instr(peewee.fn.casefold(column), needle.casefold()) > 0

    @operation
    def claim_download(self, slug: str, at: int) -> Drop | None:
        """Count a download. The count of a drop without max_downloads is a statistic: it is
        committed with ``synchronous = normal`` (durable against a crash of teledrop, not
        of the machine), which spares each such GET a WAL fsync. A limited drop's count
        decides who gets the file, so it keeps the configured ``synchronous``."""
        if self._relax_counts:
            self.db.execute_sql("PRAGMA synchronous = normal")
            try:
                drop = self.one(_CLAIM_UNLIMITED, (slug, at))
            finally:
                self.db.execute_sql(f"PRAGMA synchronous = {self.synchronous}")
            if drop is not None:
                return drop
        return self.one(self.sql.claim_download, (slug, at))

    def close(self) -> None:
        self.db.close()
