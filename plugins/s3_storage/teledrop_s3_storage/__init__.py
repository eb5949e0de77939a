"""teledrop storage on an S3-compatible bucket (AWS S3, SeaweedFS, MinIO, Ceph RGW, R2...).

Layout in the bucket::

    {prefix}blobs/<blob_id>                 published objects (blob ids are uuid4 hex)
    {prefix}resumable/<blob_id>/<offset>    a resumable upload's bytes past its last part

An upload is a multipart upload on its blob's final key, published by completing it (one
PutObject for a file smaller than a part); see :mod:`.writer`, and :mod:`.resumable` for
uploads sent over many requests. Downloads either stream
through teledrop (``proxy``) or are redirected to a presigned GET (``redirect``).
"""

from __future__ import annotations

from typing import Any

from teledrop import hookimpl

from .settings import S3StorageSettings

__all__ = ["S3Storage", "S3StorageSettings"]


def __getattr__(name: str) -> Any:
    """``S3Storage`` is imported when first asked for: it loads boto3, which a server on
    other backends never needs."""
    if name == "S3Storage":
        from .storage import S3Storage
        return S3Storage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def teledrop_config_schema() -> dict[str, type]:
    return {"s3_storage": S3StorageSettings}


@hookimpl
def teledrop_storage_backends() -> dict[str, Any]:
    return {"s3_storage": _open}


def _open(settings: S3StorageSettings, config: Any) -> Any:
    from .storage import S3Storage
    return S3Storage.from_settings(settings, config)
