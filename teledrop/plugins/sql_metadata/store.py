"""A metadata store on a SQL database through peewee: everything the dialects share.

A subclass opens ``db`` and says how its dialect differs: the connection an operation runs
on, where the schema version is kept, the transaction a migration runs in, which driver
errors mean a full disk or a taken slug, and how a search folds case.
"""

from __future__ import annotations

import abc
import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, TypeVar

import peewee

from teledrop.core.drop import Drop
from teledrop.core.errors import MetadataFull, MetadataUnavailable, SlugTaken, TeledropError, \
    TokenExists
from teledrop.core.interfaces import TUS, UPLOAD_UPDATABLE, DropQuery, TokenRecord, \
    UploadState

from .schema import FIELDS, SCHEMA_VERSION, UPDATABLE, UPLOAD_FIELDS, bind_models
from .statements import Statements

T = TypeVar("T")


def operation(method: Callable[..., T]) -> Callable[..., T]:
    """A store method run on a connection of its own (see ``SqlMetadata.connection``), every
    backend error it meets, from peewee or from the driver's cursor, turned into
    teledrop's: ``MetadataFull`` (507) for a full disk, else ``MetadataUnavailable`` (503)."""

    @functools.wraps(method)
    def wrapped(self: SqlMetadata, *args: Any, **kwargs: Any) -> T:
        try:
            with self.connection():
                return method(self, *args, **kwargs)
        except TeledropError:
            raise
        except (peewee.PeeweeException, *self.driver_errors) as exc:
            raise self.failure(exc) from exc
    return wrapped


def driver_error(exc: BaseException) -> BaseException:
    """The driver's own error behind peewee's (which keeps it as ``orig``, and may wrap
    its own again: a failed connect inside a statement)."""
    while isinstance(exc, peewee.PeeweeException) \
            and isinstance(getattr(exc, "orig", None), BaseException):
        exc = exc.orig
    return exc


@contextlib.contextmanager
def transaction(db: peewee.Database, **begin: Any) -> Iterator[None]:
    """One transaction. When it fails, its own error is what the caller sees: a rollback
    that fails as well (SQLite rolls back by itself on a full disk, and a second rollback
    says "no transaction is active") never takes its place."""
    with db.manual_commit():
        db.begin(**begin)
        try:
            yield
            db.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                db.rollback()
            raise


class SqlMetadata(abc.ABC):
    """The Metadata protocol on a peewee database (``db``)."""

    #: The driver's own errors (a cursor's ``fetchone()`` raises them unwrapped by peewee).
    driver_errors: ClassVar[tuple[type[Exception], ...]] = ()
    #: ``{version: step}``: each step brings a store from ``version - 1`` to ``version``
    #: (inside the migration's transaction). A new schema version is one more entry.
    migrations: ClassVar[Mapping[int, Callable[[SqlMetadata], None]]] = {}

    def __init__(self, db: peewee.Database, location: str) -> None:
        self.db = db
        #: what the store is called in messages (a path, a database name).
        self.location = location
        self.Row, self.Token, self.Upload = bind_models(db)
        self.sql = Statements(db.param)
        #: Each column's stored value into its Python one (0/1 into a bool, for example).
        self._converters = [getattr(self.Row, name).python_value for name in FIELDS]

    # -- what a dialect provides ----------------------------------------------------------

    @abc.abstractmethod
    def connection(self) -> contextlib.AbstractContextManager[Any]:
        """The connection one operation runs on, for its duration."""

    @abc.abstractmethod
    def schema_version(self) -> int:
        """The stored schema version; 0 for an empty database."""

    @abc.abstractmethod
    def set_schema_version(self, version: int) -> None:
        """Record ``version`` (inside the migration's transaction)."""

    @abc.abstractmethod
    def migration_transaction(self) -> contextlib.AbstractContextManager[Any]:
        """A transaction that no other process's migration runs alongside."""

    @abc.abstractmethod
    def is_full(self, error: BaseException) -> bool:
        """Whether the driver's ``error`` means the disk (or the database's quota) is full."""

    @abc.abstractmethod
    def is_slug_clash(self, error: BaseException) -> bool:
        """Whether the driver's integrity ``error`` comes from the UNIQUE slug."""

    @abc.abstractmethod
    def contains(self, column: Any, needle: str) -> Any:
        """A condition: ``column`` contains ``needle``, in any case, for all of Unicode,
        and ``%`` or ``_`` in ``needle`` mean themselves."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release this thread's (or this process's idle) connections."""

    # -- shared machinery -----------------------------------------------------------------

    def failure(self, exc: BaseException) -> TeledropError:
        """teledrop's error for a backend error."""
        reason = " ".join(str(exc).split())  # one line: drivers put tabs and newlines in
        if self.is_full(driver_error(exc)):
            return MetadataFull(f"the metadata store's disk is full ({self.location}): {reason}")
        return MetadataUnavailable(f"metadata store error ({self.location}): {reason}")

    @operation
    def migrate(self) -> None:
        """Create the schema, or bring an older one to ``SCHEMA_VERSION``, once however
        many processes start at the same time."""
        if self.schema_version() == SCHEMA_VERSION:
            return  # no lock taken: a store starts while another holds one
        with self.migration_transaction():
            version = self.schema_version()
            if version > SCHEMA_VERSION:
                raise MetadataUnavailable(
                    f"{self.location} has schema version {version}; this teledrop knows "
                    f"{SCHEMA_VERSION} (upgrade teledrop)")
            if version == SCHEMA_VERSION:
                return  # another process migrated it meanwhile
            if version == 0:
                self.db.create_tables([self.Row, self.Token, self.Upload])
            else:
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    if step not in self.migrations:
                        raise MetadataUnavailable(
                            f"{self.location} has schema version {version}, which this "
                            f"teledrop cannot migrate")
                    self.migrations[step](self)
            self.set_schema_version(SCHEMA_VERSION)

    def drop_of(self, values: tuple[Any, ...]) -> Drop:
        return Drop(**{name: convert(value) for name, convert, value
                       in zip(FIELDS, self._converters, values)})

    def one_upload(self, sql: str, params: tuple[Any, ...]) -> UploadState | None:
        row = self.db.execute_sql(sql, params).fetchone()
        return None if row is None else UploadState(*row)

    def one(self, sql: str, params: tuple[Any, ...]) -> Drop | None:
        row = self.db.execute_sql(sql, params).fetchone()
        return None if row is None else self.drop_of(row)

    def many(self, sql: str, params: tuple[Any, ...] = ()) -> list[Drop]:
        return [self.drop_of(row) for row in self.db.execute_sql(sql, params).fetchall()]

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        row = self.db.execute_sql(sql, params).fetchone()
        return None if row is None else row[0]

    # -- the Metadata protocol ------------------------------------------------------------

    @operation
    def insert(self, drop: Drop) -> None:
        try:
            self.db.execute_sql(self.sql.insert, tuple(getattr(drop, name) for name in FIELDS))
        except peewee.IntegrityError as exc:
            if not self.is_slug_clash(driver_error(exc)):  # a broken record is a bug
                raise MetadataUnavailable(f"metadata store refused the drop: {exc}") from exc
            raise SlugTaken(f"the slug {drop.slug!r} is already taken") from None

    @operation
    def get(self, slug: str) -> Drop | None:
        return self.one(self.sql.select, (slug,))

    @operation
    def claim_download(self, slug: str, at: int) -> Drop | None:
        return self.one(self.sql.claim_download, (slug, at))

    @operation
    def delete(self, slug: str, blob_id: str | None = None) -> Drop | None:
        return self.one(self.sql.delete, (slug, blob_id))

    @operation
    def delete_if_gone(self, slug: str, at: int) -> Drop | None:
        return self.one(self.sql.delete_if_gone, (slug, at))

    @operation
    def list_gone(self, at: int) -> list[Drop]:
        return self.many(self.sql.list_gone, (at,))

    @operation
    def iter_drops(self) -> Iterator[Drop]:
        return iter(self.many(self.sql.every_drop))

    @operation
    def blob_ids(self) -> set[str]:
        return {row[0] for row in self.db.execute_sql(self.sql.blob_ids).fetchall()}

    @operation
    def count(self) -> int:
        return int(self.scalar(self.sql.count))

    @operation
    def total_size(self) -> int:
        return int(self.scalar(self.sql.total_size))  # PostgreSQL's SUM is a numeric

    @operation
    def update(self, slug: str, changes: Mapping[str, Any],
               blob_id: str | None = None) -> Drop | None:
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"cannot update {', '.join(sorted(unknown))}")
        if not changes:
            return self.one(self.sql.select_same, (slug, blob_id))
        values = tuple(getattr(self.Row, name).db_value(value) for name, value in changes.items())
        return self.one(self.sql.update(changes), (*values, slug, blob_id))

    @operation
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
            where &= self.contains(Row.filename, query.search) \
                | self.contains(Row.title, query.search)
        column = getattr(Row, query.sort)
        ordering = column.asc() if query.order == "asc" else column.desc()
        tiebreak = Row.id.asc() if query.order == "asc" else Row.id.desc()
        total = Row.select().where(where).count()
        page = (Row.select(*(getattr(Row, name) for name in FIELDS)).where(where)
                .order_by(ordering, tiebreak).paginate(query.page, query.page_size).dicts())
        return total, [Drop(**row) for row in page]

    @operation
    def note_password_failure(self, slug: str, at: int, window: int) -> int:
        failures = self.scalar(self.sql.note_password_failure,
                               (at - window, at - window, at, slug))
        return 0 if failures is None else failures

    @operation
    def forgive_password_failure(self, slug: str) -> None:
        self.db.execute_sql(self.sql.forgive_password_failure, (slug,))

    @operation
    def password_failures(self, slug: str, at: int, window: int) -> int:
        row = self.db.execute_sql(self.sql.password_failures, (slug,)).fetchone()
        if row is None or row[1] <= at - window:
            return 0
        return row[0]

    @operation
    def add_token(self, token: TokenRecord) -> None:
        try:
            self.db.execute_sql(self.sql.add_token,
                                (token.name, token.token_hash, token.created_at))
        except peewee.IntegrityError:
            raise TokenExists(f"a token named {token.name!r} exists") from None

    @operation
    def list_tokens(self) -> list[TokenRecord]:
        return [TokenRecord(*row) for row in self.db.execute_sql(self.sql.list_tokens).fetchall()]

    @operation
    def revoke_token(self, name: str) -> bool:
        return self.scalar(self.sql.revoke_token, (name,)) is not None

    @operation
    def token_owner(self, token_hash: str) -> str | None:
        return self.scalar(self.sql.token_owner, (token_hash,))

    @operation
    def check(self) -> None:
        self.db.execute_sql('SELECT 1 FROM "drops" LIMIT 1').fetchall()

    @operation
    def insert_upload(self, upload: UploadState) -> None:
        self.db.execute_sql(self.sql.insert_upload,
                            tuple(getattr(upload, name) for name in UPLOAD_FIELDS))

    @operation
    def get_upload(self, upload_id: str) -> UploadState | None:
        return self.one_upload(self.sql.select_upload, (upload_id,))

    @operation
    def lease_upload(self, upload_id: str, holder: str, at: int,
                     until: int) -> UploadState | None:
        return self.one_upload(self.sql.lease_upload, (holder, until, upload_id, at, at))

    @operation
    def update_upload(self, upload_id: str, holder: str,
                      changes: Mapping[str, Any]) -> UploadState | None:
        unknown = set(changes) - UPLOAD_UPDATABLE
        if unknown or not changes:
            raise ValueError(f"cannot update {', '.join(sorted(unknown)) or 'nothing'}")
        return self.one_upload(self.sql.update_upload(changes),
                               (*changes.values(), upload_id, holder))

    @operation
    def delete_upload(self, upload_id: str) -> UploadState | None:
        return self.one_upload(self.sql.delete_upload, (upload_id,))

    @operation
    def list_expired_uploads(self, at: int) -> list[UploadState]:
        return [UploadState(*row)
                for row in self.db.execute_sql(self.sql.expired_uploads, (at,)).fetchall()]


def add_uploads_table(store: SqlMetadata) -> None:
    """Schema 2 → 3: the resumable uploads."""
    store.db.create_tables([store.Upload])


def add_upload_kind(store: SqlMetadata) -> None:
    """Schema 3 → 4: an upload is a tus one or a direct one (the existing ones are tus).
    A table step 3 has just created has the column already."""
    if "kind" not in {column.name for column in store.db.get_columns("uploads")}:
        store.db.execute_sql(
            f"ALTER TABLE \"uploads\" ADD COLUMN \"kind\" VARCHAR(16) NOT NULL DEFAULT '{TUS}'")
