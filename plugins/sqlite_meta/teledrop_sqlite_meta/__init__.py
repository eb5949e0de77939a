"""teledrop's default metadata store: peewee on SQLite.

WAL mode with a busy timeout, one connection per thread (peewee's default), opened lazily
so that each gunicorn worker opens its own after fork. Every race that matters (a taken
slug, the last download, delete against download) is settled by one SQL statement inside
an ``IMMEDIATE`` transaction. The schema version lives in ``PRAGMA user_version``.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import peewee

from teledrop import hookimpl
from teledrop.core.drop import Drop
from teledrop.core.errors import MetadataFull, MetadataUnavailable, SlugTaken, TokenExists
from teledrop.core.interfaces import DropQuery, TokenRecord

SCHEMA_VERSION = 2
#: UPDATE ... RETURNING, which counts a download in one statement.
MIN_SQLITE = (3, 35, 0)
SYNCHRONOUS_MODES = ("off", "normal", "full", "extra")
T = TypeVar("T")
#: SQLite's answer to a rollback of a transaction it already rolled back itself.
_NO_TRANSACTION = "no transaction is active"


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


def _db_errors(method: Callable[..., T]) -> Callable[..., T]:
    """Every error of the database as MetadataFull (507) or MetadataUnavailable (503).
    sqlite3's own errors count too: a cursor's ``fetchone()`` raises them unwrapped by
    peewee (an ``UPDATE ... RETURNING`` runs there)."""
    @functools.wraps(method)
    def wrapped(*args: Any, **kwargs: Any) -> T:
        try:
            return method(*args, **kwargs)
        except peewee.IntegrityError:
            raise
        except (peewee.DatabaseError, peewee.InterfaceError, sqlite3.Error) as exc:
            if _is_full(exc):
                raise MetadataFull(f"the metadata store's disk is full: {exc}") from exc
            raise MetadataUnavailable(f"metadata store error: {exc}") from exc
    return wrapped


def _is_full(exc: Exception) -> bool:
    """SQLITE_FULL ("database or disk is full"), raw or wrapped by peewee."""
    raw = getattr(exc, "orig", exc)  # peewee keeps sqlite3's error there
    return getattr(raw, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def _model(db: peewee.Database) -> type[peewee.Model]:
    """The drops table, bound to one database (several stores may live in one process)."""

    class DropRow(peewee.Model):
        slug = peewee.CharField(max_length=64, unique=True)
        blob_id = peewee.CharField(max_length=64, index=True)
        filename = peewee.TextField()
        size = peewee.BigIntegerField()
        content_type = peewee.CharField(max_length=255)
        hash = peewee.CharField(max_length=200)
        created_at = peewee.BigIntegerField()
        expires_at = peewee.BigIntegerField(index=True)
        max_downloads = peewee.BigIntegerField(null=True)
        downloads = peewee.BigIntegerField(default=0)
        delete_token_hash = peewee.CharField(max_length=128)
        custom_slug = peewee.BooleanField(default=False)
        # schema 2: owners and what they manage
        owner = peewee.CharField(max_length=80, null=True, index=True)
        title = peewee.CharField(max_length=200, default="")
        description = peewee.TextField(default="")
        private = peewee.BooleanField(default=False)
        password_hash = peewee.CharField(max_length=200, null=True)
        pw_failures = peewee.IntegerField(default=0)
        pw_window = peewee.BigIntegerField(default=0)

        class Meta:
            database = db
            table_name = "drops"

    class TokenRow(peewee.Model):
        name = peewee.CharField(max_length=64, unique=True)
        token_hash = peewee.CharField(max_length=128, unique=True)
        created_at = peewee.BigIntegerField()

        class Meta:
            database = db
            table_name = "tokens"

    return DropRow, TokenRow


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


_FIELDS = ("slug", "blob_id", "filename", "size", "content_type", "hash", "created_at",
           "expires_at", "max_downloads", "downloads", "delete_token_hash", "custom_slug",
           "owner", "title", "description", "private", "password_hash")
_COLUMNS = ", ".join(f'"{name}"' for name in _FIELDS)
#: The statements every upload and download runs, written once: peewee builds a query's
#: SQL text anew on each call, which was half of a download's CPU time (17 columns).
_SELECT_BY_SLUG = f'SELECT {_COLUMNS} FROM "drops" WHERE "slug" = ?'
#: A download is counted by one statement, so the check and the count cannot be split by
#: another download; RETURNING saves a second query per GET. A drop without max_downloads
#: is counted first, by a commit that is not fsynced (see ``claim_download``).
_COUNT = ('UPDATE "drops" SET "downloads" = "downloads" + 1 '
          'WHERE "slug" = ? AND "expires_at" > ? ')
_CLAIM_UNLIMITED = f'{_COUNT}AND "max_downloads" IS NULL RETURNING {_COLUMNS}'
_CLAIM_DOWNLOAD = (f'{_COUNT}AND ("max_downloads" IS NULL OR "downloads" < "max_downloads") '
                   f'RETURNING {_COLUMNS}')
#: The password-throttling columns start at 0 (peewee's defaults live in Python, not SQL).
_INSERT = (f'INSERT INTO "drops" ({_COLUMNS}, "pw_failures", "pw_window") '
           f'VALUES ({", ".join("?" * len(_FIELDS))}, 0, 0)')
#: What ``update`` may change.
_UPDATABLE = frozenset({"title", "description", "expires_at", "max_downloads", "private",
                        "password_hash"})


class SqliteMetadata:
    def __init__(self, path: str, busy_timeout: int = 5000, synchronous: str = "full") -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise MetadataUnavailable(
                f"SQLite {sqlite3.sqlite_version} is too old: sqlite_meta needs "
                f"{'.'.join(map(str, MIN_SQLITE))} or newer (UPDATE ... RETURNING)")
        self.path = os.path.abspath(path)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.db = peewee.SqliteDatabase(
            self.path,
            timeout=busy_timeout / 1000,
            pragmas={
                "journal_mode": "wal",
                "busy_timeout": busy_timeout,
                "synchronous": synchronous.lower(),
                "foreign_keys": 1,
            },
        )
        self.synchronous = synchronous.lower()
        self._relax_counts = SYNCHRONOUS_MODES.index(self.synchronous) > \
            SYNCHRONOUS_MODES.index("normal")
        self.Row, self.Token = _model(self.db)
        #: Each column's SQLite value into its Python one (0/1 into a bool, for example).
        self._converters = [(name, getattr(self.Row, name).python_value) for name in _FIELDS]
        self._migrate()
        # Connections are per thread and must be opened after fork: drop this one.
        self.db.close()

    @classmethod
    def from_settings(cls, settings: SqliteMetaSettings, config: Any) -> SqliteMetadata:
        return cls(settings.path, settings.busy_timeout, settings.synchronous)

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """An ``IMMEDIATE`` transaction. After some errors (a full disk) SQLite has rolled
        the transaction back itself, and peewee's rollback then fails with "no transaction
        is active": the error that caused it is raised instead."""
        try:
            with self.db.atomic("IMMEDIATE"):
                yield
        except peewee.OperationalError as exc:
            cause: BaseException | None = exc
            while cause is not None and _NO_TRANSACTION in str(cause):
                cause = cause.__context__
            if cause is None or cause is exc:
                raise
            raise cause from None

    @_db_errors
    def _migrate(self) -> None:
        # Up to date: no write lock needed, so a worker can start while another process
        # (a backup, a long transaction) holds it.
        if self.db.execute_sql("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        with self._tx():
            version = self.db.execute_sql("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise MetadataUnavailable(
                    f"{self.path} has schema version {version}; this teledrop knows "
                    f"{SCHEMA_VERSION} (upgrade teledrop)")
            if version == 0:
                self.db.create_tables([self.Row, self.Token])
            elif version == 1:
                for statement in _MIGRATE_TO_2:
                    self.db.execute_sql(statement)
                self.db.create_tables([self.Token])
            if version < SCHEMA_VERSION:
                self.db.execute_sql(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _drop(self, row: Any) -> Drop:
        return Drop(**{name: getattr(row, name) for name in _FIELDS})

    def _drop_from_tuple(self, values: tuple[Any, ...]) -> Drop:
        return Drop(**{name: convert(value) for (name, convert), value
                       in zip(self._converters, values)})

    def _one(self, sql: str, params: tuple[Any, ...]) -> Drop | None:
        row = self.db.execute_sql(sql, params).fetchone()
        return None if row is None else self._drop_from_tuple(row)

    @_db_errors
    def insert(self, drop: Drop) -> None:
        # One statement in autocommit: atomic, and it takes the write lock at once.
        try:
            self.db.execute_sql(_INSERT, tuple(getattr(drop, name) for name in _FIELDS))
        except peewee.IntegrityError as exc:
            if "drops.slug" not in str(exc):  # a broken record is a bug, not a taken slug
                raise MetadataUnavailable(f"metadata store refused the drop: {exc}") from exc
            raise SlugTaken(f"the slug {drop.slug!r} is already taken") from None

    @_db_errors
    def get(self, slug: str) -> Drop | None:
        return self._one(_SELECT_BY_SLUG, (slug,))

    @_db_errors
    def claim_download(self, slug: str, at: int) -> Drop | None:
        """Count a download. The count of a drop without max_downloads is a statistic: it is
        committed with ``synchronous = normal`` (durable against a crash of teledrop, not
        of the machine), which spares each such GET a WAL fsync. A limited drop's count
        decides who gets the file, so it keeps the configured ``synchronous``."""
        if self._relax_counts:
            self.db.execute_sql("PRAGMA synchronous = normal")
            try:
                drop = self._one(_CLAIM_UNLIMITED, (slug, at))
            finally:
                self.db.execute_sql(f"PRAGMA synchronous = {self.synchronous}")
            if drop is not None:
                return drop
        return self._one(_CLAIM_DOWNLOAD, (slug, at))

    def _gone(self, at: int) -> Any:
        Row = self.Row
        return (Row.expires_at <= at) | (Row.max_downloads.is_null(False)
                                         & (Row.downloads >= Row.max_downloads))

    @_db_errors
    def delete(self, slug: str) -> Drop | None:
        return self._delete_where(self.Row.slug == slug)

    @_db_errors
    def delete_if_gone(self, slug: str, at: int) -> Drop | None:
        return self._delete_where((self.Row.slug == slug) & self._gone(at))

    def _delete_where(self, condition: Any) -> Drop | None:
        with self._tx():
            row = self.Row.get_or_none(condition)
            if row is None:
                return None
            self.Row.delete().where(self.Row.id == row.id).execute()
            return self._drop(row)

    @_db_errors
    def list_gone(self, at: int) -> list[Drop]:
        return [self._drop(row) for row in self.Row.select().where(self._gone(at))]

    @_db_errors
    def iter_drops(self) -> Iterator[Drop]:
        return iter([self._drop(row) for row in self.Row.select().order_by(self.Row.id)])

    @_db_errors
    def blob_ids(self) -> set[str]:
        return {row.blob_id for row in self.Row.select(self.Row.blob_id)}

    @_db_errors
    def count(self) -> int:
        return self.Row.select().count()

    @_db_errors
    def total_size(self) -> int:
        return self.db.execute_sql('SELECT COALESCE(SUM("size"), 0) FROM "drops"').fetchone()[0]

    @_db_errors
    def update(self, slug: str, changes: Mapping[str, Any]) -> Drop | None:
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise ValueError(f"cannot update {', '.join(sorted(unknown))}")
        with self._tx():
            if changes:
                self.Row.update(**changes).where(self.Row.slug == slug).execute()
            row = self.Row.get_or_none(self.Row.slug == slug)
            return None if row is None else self._drop(row)

    @_db_errors
    def list_owned(self, query: DropQuery) -> tuple[int, list[Drop]]:
        Row = self.Row
        where = Row.owner == query.owner
        if query.private is not None:
            where &= Row.private == query.private
        if query.has_password is not None:
            where &= Row.password_hash.is_null(not query.has_password)
        if query.expired is not None:
            where &= (Row.expires_at <= query.at) if query.expired else (Row.expires_at > query.at)
        if query.search:
            # instr, not LIKE: a search for "%" or "_" means those characters
            needle = query.search.lower()
            where &= ((peewee.fn.instr(peewee.fn.lower(Row.filename), needle) > 0)
                      | (peewee.fn.instr(peewee.fn.lower(Row.title), needle) > 0))
        column = getattr(Row, query.sort)
        ordering = column.asc() if query.order == "asc" else column.desc()
        tiebreak = Row.id.asc() if query.order == "asc" else Row.id.desc()
        selected = Row.select().where(where)
        total = selected.count()
        page = selected.order_by(ordering, tiebreak).paginate(query.page, query.page_size)
        return total, [self._drop(row) for row in page]

    @_db_errors
    def note_password_failure(self, slug: str, at: int, window: int) -> int:
        Row = self.Row
        with self._tx():
            fresh = Row.pw_window <= at - window
            (Row.update(pw_failures=peewee.Case(None, [(fresh, 1)], Row.pw_failures + 1),
                        pw_window=peewee.Case(None, [(fresh, at)], Row.pw_window))
             .where(Row.slug == slug).execute())
            row = Row.get_or_none(Row.slug == slug)
            return 0 if row is None else row.pw_failures

    @_db_errors
    def forgive_password_failure(self, slug: str) -> None:
        Row = self.Row
        with self._tx():
            (Row.update(pw_failures=Row.pw_failures - 1)
             .where((Row.slug == slug) & (Row.pw_failures > 0)).execute())

    @_db_errors
    def password_failures(self, slug: str, at: int, window: int) -> int:
        row = self.Row.get_or_none(self.Row.slug == slug)
        if row is None or row.pw_window <= at - window:
            return 0
        return row.pw_failures

    @_db_errors
    def add_token(self, token: TokenRecord) -> None:
        try:
            with self._tx():
                self.Token.insert(name=token.name, token_hash=token.token_hash,
                                  created_at=token.created_at).execute()
        except peewee.IntegrityError:
            raise TokenExists(f"a token named {token.name!r} exists") from None

    @_db_errors
    def list_tokens(self) -> list[TokenRecord]:
        return [TokenRecord(row.name, row.token_hash, row.created_at)
                for row in self.Token.select().order_by(self.Token.created_at, self.Token.id)]

    @_db_errors
    def revoke_token(self, name: str) -> bool:
        with self._tx():
            return bool(self.Token.delete().where(self.Token.name == name).execute())

    @_db_errors
    def token_owner(self, token_hash: str) -> str | None:
        row = self.Token.get_or_none(self.Token.token_hash == token_hash)
        return None if row is None else row.name

    @_db_errors
    def check(self) -> None:
        self.db.execute_sql("SELECT 1 FROM drops LIMIT 1").fetchall()

    def close(self) -> None:
        self.db.close()
