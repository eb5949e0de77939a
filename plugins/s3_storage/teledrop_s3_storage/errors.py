"""botocore's failures as teledrop's errors: a missing object is :class:`BlobMissing`, a
server out of space :class:`StorageFull`, anything else (unreachable, 5xx, refused
credentials) :class:`StorageUnavailable` (503)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from urllib3.exceptions import HTTPError as Urllib3Error

from teledrop.core.errors import BlobMissing, StorageFull, StorageUnavailable, TeledropError, \
    TooLarge

MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
FULL_CODES = frozenset({"QuotaExceeded", "InsufficientStorage", "XMinioStorageFull",
                        "StorageFull", "507"})
TOO_LARGE_CODES = frozenset({"EntityTooLarge"})


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def s3_error(exc: Exception, doing: str) -> TeledropError:
    """The teledrop error for ``exc``, raised while ``doing`` (e.g. "uploading a part")."""
    if isinstance(exc, ClientError):
        code, status = error_code(exc), http_status(exc)
        message = exc.response.get("Error", {}).get("Message") or code or str(status)
        if code in MISSING_CODES:
            return BlobMissing(f"the stored file is missing ({doing})")
        if code in FULL_CODES or status == 507:
            return StorageFull(f"the storage is full ({doing}): {message}")
        if code in TOO_LARGE_CODES:
            return TooLarge(f"the object store refused the file as too large: {message}")
        return StorageUnavailable(f"storage error while {doing}: {code or status} {message}")
    if isinstance(exc, NoCredentialsError):
        return StorageUnavailable(f"no S3 credentials while {doing}: set access_key_id and "
                                  "secret_access_key, or the SDK's credential chain")
    return StorageUnavailable(f"cannot reach the object store while {doing}: {exc}")


@contextmanager
def s3_errors(doing: str) -> Iterator[None]:
    """Translate what botocore (or urllib3, while streaming a body) raises inside."""
    try:
        yield
    except (ClientError, BotoCoreError, Urllib3Error, OSError) as exc:
        raise s3_error(exc, doing) from exc
