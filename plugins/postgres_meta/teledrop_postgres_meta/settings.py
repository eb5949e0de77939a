"""The ``[plugins.postgres_meta]`` table. Checking it needs only psycopg's DSN parser, imported
when a table is checked: a server on other backends never loads psycopg."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_DSN = "postgresql://teledrop@127.0.0.1:5432/teledrop"
DSN_FORM = "postgresql://user:password@host:port/database"


@dataclass(frozen=True)
class PostgresMetaSettings:
    dsn: str = DEFAULT_DSN
    #: per process: the pool's bound.
    max_connections: int = 8

    def check(self) -> dict[str, str]:
        problems = {}
        if self.max_connections < 1:
            problems["max_connections"] = "must be at least 1"
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        try:
            if "dbname" not in conninfo_to_dict(self.dsn):
                problems["dsn"] = f"names no database ({DSN_FORM})"
        except psycopg.ProgrammingError:  # its message would quote the password
            problems["dsn"] = f"not a PostgreSQL connection string ({DSN_FORM})"
        return problems
