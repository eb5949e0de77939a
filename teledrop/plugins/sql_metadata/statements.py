"""The SQL of every operation on one drop, a token or the whole table, written once.

peewee builds a query's SQL text anew on each call, which was half of a download's CPU time
(17 columns); these are built once per store with the dialect's placeholder. Each that
decides a race is one statement, so the database settles it: a taken slug by UNIQUE, the
last download and a password attempt by ``UPDATE … RETURNING``, a delete by
``DELETE … RETURNING``, and a delete or an edit by its condition on the blob id the caller
read (a slug freed and taken again meanwhile belongs to another drop).
"""

from __future__ import annotations

from collections.abc import Iterable

from .schema import FIELDS, UPLOAD_FIELDS

COLUMNS = ", ".join(f'"{name}"' for name in FIELDS)
UPLOAD_COLUMNS = ", ".join(f'"{name}"' for name in UPLOAD_FIELDS)
#: Counting a download, with ``?`` for the slug and the time: the condition that it has
#: not expired comes with it; the caller adds the limit and ``RETURNING``.
COUNT_DOWNLOAD = ('UPDATE "drops" SET "downloads" = "downloads" + 1 '
                  'WHERE "slug" = ? AND "expires_at" > ? ')
#: Expired or out of downloads at ``?``.
_GONE = '("expires_at" <= ? OR ("max_downloads" IS NOT NULL AND "downloads" >= "max_downloads"))'
#: The drop under a slug whose blob is the one read, or (a ``NULL`` blob id) any.
_SAME_DROP = '"slug" = ? AND "blob_id" = COALESCE(?, "blob_id")'


class Statements:
    """The statements of one dialect: ``param`` is its placeholder (``?``, ``%s``)."""

    def __init__(self, param: str) -> None:
        self.param = param
        self.select = self._sql(f'SELECT {COLUMNS} FROM "drops" WHERE "slug" = ?')
        # the password-throttling columns start at 0 (peewee's defaults live in Python)
        self.insert = self._sql(f'INSERT INTO "drops" ({COLUMNS}, "pw_failures", "pw_window") '
                                f'VALUES ({", ".join("?" * len(FIELDS))}, 0, 0)')
        self.claim_download = self._sql(
            f'{COUNT_DOWNLOAD}AND ("max_downloads" IS NULL OR "downloads" < "max_downloads") '
            f'RETURNING {COLUMNS}')
        self.select_same = self._sql(f'SELECT {COLUMNS} FROM "drops" WHERE {_SAME_DROP}')
        self.delete = self._sql(f'DELETE FROM "drops" WHERE {_SAME_DROP} RETURNING {COLUMNS}')
        self.delete_if_gone = self._sql(
            f'DELETE FROM "drops" WHERE "slug" = ? AND {_GONE} RETURNING {COLUMNS}')
        self.list_gone = self._sql(f'SELECT {COLUMNS} FROM "drops" WHERE {_GONE} ORDER BY "id"')
        self.every_drop = f'SELECT {COLUMNS} FROM "drops" ORDER BY "id"'
        self.blob_ids = 'SELECT "blob_id" FROM "drops" UNION SELECT "blob_id" FROM "uploads"'
        self.count = 'SELECT COUNT(*) FROM "drops"'
        self.total_size = 'SELECT COALESCE(SUM("size"), 0) FROM "drops"'
        # one statement: the window restarts, or the attempt is added to it
        self.note_password_failure = self._sql(
            'UPDATE "drops" SET '
            '"pw_failures" = CASE WHEN "pw_window" <= ? THEN 1 ELSE "pw_failures" + 1 END, '
            '"pw_window" = CASE WHEN "pw_window" <= ? THEN ? ELSE "pw_window" END '
            'WHERE "slug" = ? RETURNING "pw_failures"')
        self.forgive_password_failure = self._sql(
            'UPDATE "drops" SET "pw_failures" = "pw_failures" - 1 '
            'WHERE "slug" = ? AND "pw_failures" > 0')
        self.password_failures = self._sql(
            'SELECT "pw_failures", "pw_window" FROM "drops" WHERE "slug" = ?')
        self.add_token = self._sql(
            'INSERT INTO "tokens" ("name", "token_hash", "created_at") VALUES (?, ?, ?)')
        self.list_tokens = ('SELECT "name", "token_hash", "created_at" FROM "tokens" '
                            'ORDER BY "created_at", "id"')
        self.revoke_token = self._sql('DELETE FROM "tokens" WHERE "name" = ? RETURNING "name"')
        self.token_owner = self._sql('SELECT "name" FROM "tokens" WHERE "token_hash" = ?')
        self.insert_upload = self._sql(f'INSERT INTO "uploads" ({UPLOAD_COLUMNS}) '
                                       f'VALUES ({", ".join("?" * len(UPLOAD_FIELDS))})')
        self.select_upload = self._sql(f'SELECT {UPLOAD_COLUMNS} FROM "uploads" WHERE "id" = ?')
        # one statement: a second request for the same upload, on any host, finds it taken
        self.lease_upload = self._sql(
            'UPDATE "uploads" SET "lease_holder" = ?, "lease_until" = ? '
            'WHERE "id" = ? AND "expires_at" > ? AND "slug" IS NULL '
            'AND ("lease_holder" IS NULL OR "lease_until" <= ?) '
            f'RETURNING {UPLOAD_COLUMNS}')
        self.delete_upload = self._sql(
            f'DELETE FROM "uploads" WHERE "id" = ? RETURNING {UPLOAD_COLUMNS}')
        self.expired_uploads = self._sql(
            f'SELECT {UPLOAD_COLUMNS} FROM "uploads" WHERE "expires_at" <= ? '
            'ORDER BY "created_at", "id"')

    def _sql(self, template: str) -> str:
        return template.replace("?", self.param)

    def update(self, names: Iterable[str]) -> str:
        """Set the named columns of the same drop (see ``select_same``), returning it."""
        assignments = ", ".join(f'"{name}" = ?' for name in names)
        return self._sql(f'UPDATE "drops" SET {assignments} WHERE {_SAME_DROP} '
                         f'RETURNING {COLUMNS}')

    def update_upload(self, names: Iterable[str]) -> str:
        """Set the named columns of an upload, only while the given holder leases it."""
        assignments = ", ".join(f'"{name}" = ?' for name in names)
        return self._sql(f'UPDATE "uploads" SET {assignments} '
                         f'WHERE "id" = ? AND "lease_holder" = ? RETURNING {UPLOAD_COLUMNS}')
