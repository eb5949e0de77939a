"""The tables every SQL metadata store keeps, and the version of their layout."""

from __future__ import annotations

import peewee

#: The layout a new store is created at; a store at an older one is migrated to it.
SCHEMA_VERSION = 4

#: The columns that make a :class:`~teledrop.core.drop.Drop`, in the order of every
#: statement that reads or writes one.
FIELDS = ("slug", "blob_id", "filename", "size", "content_type", "hash", "created_at",
          "expires_at", "max_downloads", "downloads", "delete_token_hash", "custom_slug",
          "owner", "title", "description", "private", "password_hash")

#: The columns that make an :class:`~teledrop.core.interfaces.UploadState`, in order.
UPLOAD_FIELDS = ("id", "blob_id", "length", "offset", "metadata", "filename", "content_type",
                 "options", "owner", "created_at", "expires_at", "storage_state",
                 "lease_holder", "lease_until", "slug", "kind")

#: What ``Metadata.update`` may change.
UPDATABLE = frozenset({"title", "description", "expires_at", "max_downloads", "private",
                       "password_hash"})


def bind_models(db: peewee.Database) -> tuple[type[peewee.Model], ...]:
    """The drops table, the token store and the resumable uploads, bound to one database
    (several stores may live in one process)."""

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

    # schema 3: resumable uploads
    class UploadRow(peewee.Model):
        id = peewee.CharField(max_length=64, primary_key=True)
        blob_id = peewee.CharField(max_length=64)
        length = peewee.BigIntegerField(null=True)
        offset = peewee.BigIntegerField()
        metadata = peewee.TextField()
        filename = peewee.TextField()
        content_type = peewee.CharField(max_length=255)
        options = peewee.TextField()
        owner = peewee.CharField(max_length=80, null=True)
        created_at = peewee.BigIntegerField()
        expires_at = peewee.BigIntegerField(index=True)
        storage_state = peewee.TextField()
        lease_holder = peewee.CharField(max_length=64, null=True)
        lease_until = peewee.BigIntegerField()
        slug = peewee.CharField(max_length=64, null=True)
        # schema 4: direct uploads beside tus ones
        kind = peewee.CharField(max_length=16, default="tus")

        class Meta:
            database = db
            table_name = "uploads"

    return DropRow, TokenRow, UploadRow
