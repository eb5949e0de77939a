"""teledrop's metadata store for many hosts: peewee on PostgreSQL, through psycopg 3.

Each process has its own pool of at most ``max_connections`` connections, opened lazily
(a gunicorn worker opens its own after fork; a store used before a fork starts a new pool
in the child) and checked on checkout, so a database restart costs the requests in
flight at most, never a worker. An operation takes a connection for its own duration and
gives it back: gthread runs more threads than there are connections, and a thread holds
none between requests. Every race is settled by one statement (see
:mod:`teledrop.plugins.sql_metadata`). The schema version lives in the one-row table
``teledrop_schema``; hosts that start at once migrate one at a time, under an advisory lock.
"""

from __future__ import annotations

from typing import Any

from teledrop import hookimpl

from .settings import DEFAULT_DSN, PostgresMetaSettings

__all__ = ["DEFAULT_DSN", "PostgresMetaSettings", "PostgresMetadata"]


def __getattr__(name: str) -> Any:
    """``PostgresMetadata`` is imported when first asked for: it loads peewee's pool and
    psycopg, which a server on other backends never needs."""
    if name == "PostgresMetadata":
        from .metadata import PostgresMetadata
        return PostgresMetadata
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def teledrop_config_schema() -> dict[str, type]:
    return {"postgres_meta": PostgresMetaSettings}


@hookimpl
def teledrop_metadata_backends() -> dict[str, Any]:
    return {"postgres_meta": _open}


def _open(settings: PostgresMetaSettings, config: Any) -> Any:
    from .metadata import PostgresMetadata
    return PostgresMetadata.from_settings(settings, config)
