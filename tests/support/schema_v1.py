"""A database as teledrop's first schema left it: sqlite_meta's schema-1 DDL, one row
and its file in local storage."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any
from teledrop.core.drop import now
from tests.http_helpers import blake3_hash


#: The DDL schema 1 of sqlite_meta created (peewee's output for the model of that version).
V1_SCHEMA = (
    'CREATE TABLE "drops" ("id" INTEGER NOT NULL PRIMARY KEY, "slug" VARCHAR(64) NOT NULL, '
    '"blob_id" VARCHAR(64) NOT NULL, "filename" TEXT NOT NULL, "size" INTEGER NOT NULL, '
    '"content_type" VARCHAR(255) NOT NULL, "hash" VARCHAR(200) NOT NULL, '
    '"created_at" INTEGER NOT NULL, "expires_at" INTEGER NOT NULL, "max_downloads" INTEGER, '
    '"downloads" INTEGER NOT NULL, "delete_token_hash" VARCHAR(128) NOT NULL, '
    '"custom_slug" INTEGER NOT NULL)',
    'CREATE UNIQUE INDEX "droprow_slug" ON "drops" ("slug")',
    'CREATE INDEX "droprow_blob_id" ON "drops" ("blob_id")',
    'CREATE INDEX "droprow_expires_at" ON "drops" ("expires_at")',
)


V1_COLUMNS = ("id", "slug", "blob_id", "filename", "size", "content_type", "hash",
              "created_at", "expires_at", "max_downloads", "downloads", "delete_token_hash",
              "custom_slug")


CONTENT = b"kept from schema one\n"


DELETE_TOKEN = "old-delete-token"


SLUG = "from-v1"


def v1_row() -> dict[str, Any]:
    created = now() - 3600
    return {"id": 1, "slug": SLUG, "blob_id": "ab" + "0" * 30, "filename": "old notes.txt",
            "size": len(CONTENT), "content_type": "text/plain", "hash": blake3_hash(CONTENT),
            "created_at": created, "expires_at": created + 7 * 86400, "max_downloads": 5,
            "downloads": 1, "delete_token_hash": hashlib.sha256(DELETE_TOKEN.encode()).hexdigest(),
            "custom_slug": 1}


def build_v1(data_dir: Path, version: int = 1) -> dict[str, Any]:
    """A schema-1 database with one row, and that row's file in local storage."""
    row = v1_row()
    data_dir.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(data_dir / "teledrop.db")) as conn:
        for statement in V1_SCHEMA:
            conn.execute(statement)
        conn.execute(f"INSERT INTO drops ({', '.join(V1_COLUMNS)}) "
                     f"VALUES ({', '.join('?' for _ in V1_COLUMNS)})",
                     [row[c] for c in V1_COLUMNS])
        conn.execute(f"PRAGMA user_version = {version}")
        conn.commit()
    blob = data_dir / "files" / "blobs" / row["blob_id"][:2] / row["blob_id"]
    blob.parent.mkdir(parents=True)
    blob.write_bytes(CONTENT)
    return row
