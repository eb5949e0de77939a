"""The store itself: :class:`PostgresMetadata`, its pool, schema and migrations. How it
pools connections and settles races is in the package's docstring; the package imports
this module only when the backend is built."""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Iterator
from typing import Any

import peewee
import psycopg
from playhouse.pool import MaxConnectionsExceeded, PooledPostgresqlDatabase
from psycopg.conninfo import conninfo_to_dict

from teledrop.plugins.sql_metadata import (
    SqlMetadata,
    add_upload_kind,
    add_uploads_table,
    operation,
    transaction,
)

from .settings import DEFAULT_DSN, PostgresMetaSettings

#: Seconds a thread waits for a pooled connection before its request fails (503).
POOL_WAIT = 10
#: Seconds to reach the server, unless the DSN says (``connect_timeout``).
CONNECT_TIMEOUT = 5
#: The advisory lock a migration holds (a constant nothing else in the database takes).
MIGRATION_LOCK = 0x7E1ED209
#: ICU's root collation: a search folds case for all of Unicode whatever the database's
#: locale (lower() under the C locale folds ASCII only).
ICU_COLLATION = '"und-x-icu"'
#: SQLSTATE disk_full (PostgreSQL says "could not extend file").
DISK_FULL = "53100"
#: The UNIQUE index on the slug, as peewee names it.
SLUG_INDEX = "droprow_slug"


#: ``{dsn: (pid, folds with ICU)}``: the schema checks done, by the process that did them.
#: A process forked after one (a gunicorn worker: the master checks the config at start)
#: takes the answer over instead of asking the database, so a worker that boots while the
#: database is down starts anyway, answers 503 until it is back, and never takes the
#: whole server down with a failed boot.
_checked: dict[str, tuple[int, bool]] = {}


class PostgresMetadata(SqlMetadata):
    driver_errors = (psycopg.Error, MaxConnectionsExceeded)
    migrations = {3: add_uploads_table, 4: add_upload_kind}

    def __init__(self, dsn: str = DEFAULT_DSN, max_connections: int = 8) -> None:
        self.dsn = dsn
        self.max_connections = max_connections
        params = conninfo_to_dict(dsn)
        super().__init__(self._open(), f"PostgreSQL database {params.get('dbname')!r}")
        checked_by, self._folds_with_icu = _checked.get(dsn, (os.getpid(), False))
        if checked_by == os.getpid():
            try:
                self.migrate()
                self._folds_with_icu = self._has_icu()
            finally:
                self.db.close_all()  # nothing open across a fork, nor after a failed start
            _checked[dsn] = (os.getpid(), self._folds_with_icu)
        after_fork = weakref.WeakMethod(self._after_fork)
        os.register_at_fork(after_in_child=lambda: (method := after_fork()) and method())

    @classmethod
    def from_settings(cls, settings: PostgresMetaSettings, config: Any) -> PostgresMetadata:
        return cls(settings.dsn, settings.max_connections)

    def _open(self) -> PooledPostgresqlDatabase:
        params: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT,
                                  **conninfo_to_dict(self.dsn)}
        # prefer_psycopg3: peewee takes psycopg2 when both are installed
        return PooledPostgresqlDatabase(params.pop("dbname"), prefer_psycopg3=True,
                                        max_connections=self.max_connections,
                                        timeout=POOL_WAIT, **params)

    def _after_fork(self) -> None:
        """In a new child process: a pool of its own. The parent's connections are left
        alone (psycopg never closes a connection from another process), and so are its
        locks, which another thread may have held at the fork."""
        self.db = self._open()
        self.db.bind([self.Row, self.Token, self.Upload])

    @operation
    def _has_icu(self) -> bool:
        return self.scalar("SELECT 1 FROM pg_collation WHERE collname = %s",
                           (ICU_COLLATION.strip('"'),)) is not None

    def connection(self) -> contextlib.AbstractContextManager[Any]:
        return self.db.connection_context()

    def schema_version(self) -> int:
        if self.scalar("SELECT to_regclass('teledrop_schema')") is None:
            return 0
        return self.scalar('SELECT "version" FROM "teledrop_schema"') or 0

    def set_schema_version(self, version: int) -> None:
        self.db.execute_sql('CREATE TABLE IF NOT EXISTS "teledrop_schema" '
                            '("version" INTEGER NOT NULL)')
        self.db.execute_sql('DELETE FROM "teledrop_schema"')
        self.db.execute_sql('INSERT INTO "teledrop_schema" ("version") VALUES (%s)', (version,))

    @contextlib.contextmanager
    def migration_transaction(self) -> Iterator[None]:
        with transaction(self.db):
            self.db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            yield

    def is_full(self, error: BaseException) -> bool:
        return getattr(error, "sqlstate", None) == DISK_FULL

    def is_slug_clash(self, error: BaseException) -> bool:
        return isinstance(error, psycopg.errors.UniqueViolation) \
            and error.diag.constraint_name == SLUG_INDEX

    def contains(self, column: Any, needle: str) -> Any:
        text = peewee.Cast(peewee.Value(needle), "text")
        if self._folds_with_icu:
            column, text = column.collate(ICU_COLLATION), text.collate(ICU_COLLATION)
        return peewee.fn.strpos(peewee.fn.lower(column), peewee.fn.lower(text)) > 0

    def close(self) -> None:
        self.db.close_idle()
