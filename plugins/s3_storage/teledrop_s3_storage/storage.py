"""Blobs as objects of one bucket, under ``{prefix}blobs/{blob_id}``.

Staging is S3's own: an upload in progress is a multipart upload on the blob's final key
(listed for gc with its ``Initiated`` time, removed by aborting it). A writer still below
one part has sent nothing yet; it is listed as staging by the process that holds it, under
its blob id alone.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from teledrop.core.errors import BlobMissing, StorageUnavailable
from teledrop.core.interfaces import StoredItem

from .connection import PerProcess
from .direct import DirectUploadsMixin
from .errors import error_code, http_status, s3_error, s3_errors
from .parts import MAX_PARTS, initial_part_size
from .reader import S3ReadFile
from .settings import S3StorageSettings
from .writer import S3BlobWriter

log = logging.getLogger(__name__)

_BLOB_ID = re.compile(r"[0-9a-f]{32}")
#: ``<blob_id>.<upload id>`` for a multipart upload, ``<blob_id>`` for a writer in memory.
_STAGING_NAME = re.compile(r"(?P<blob_id>[0-9a-f]{32})(?:\.(?P<upload_id>.+))?", re.DOTALL)
_GONE_UPLOAD_CODES = frozenset({"NoSuchUpload", "NoSuchKey", "404"})


class S3Storage(DirectUploadsMixin):
    #: parts per multipart upload: S3's limit (lower only to test what happens past it).
    max_parts = MAX_PARTS

    def __init__(self, settings: S3StorageSettings, threads: int = 8) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self.blobs_prefix = f"{settings.prefix}blobs/"
        self._connection = PerProcess(settings, threads)
        self._writers: weakref.WeakValueDictionary[str, S3BlobWriter] = \
            weakref.WeakValueDictionary()
        self._writers_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: S3StorageSettings, config: Any) -> S3Storage:
        storage = cls(settings, config.server.threads)
        try:
            storage.verify_bucket()
        except BaseException:
            storage.close()
            raise
        return storage

    @property
    def client(self) -> Any:
        return self._connection.client

    @property
    def uploads(self) -> ThreadPoolExecutor:
        """Where parts upload in the background."""
        return self._connection.get().uploads

    @property
    def where(self) -> str:
        return self.settings.endpoint_url or f"AWS S3 ({self.settings.region or 'default region'})"

    def key(self, blob_id: str) -> str:
        if not _BLOB_ID.fullmatch(blob_id):
            raise BlobMissing(f"not a blob id: {blob_id!r}")
        return self.blobs_prefix + blob_id

    # -- writing -------------------------------------------------------------------------

    def stage(self, size_hint: int | None = None) -> S3BlobWriter:
        writer = S3BlobWriter(self, uuid.uuid4().hex,
                              initial_part_size(self.settings.part_size, size_hint,
                                                self.max_parts))
        with self._writers_lock:
            self._writers[writer.blob_id] = writer
        return writer

    def forget(self, writer: S3BlobWriter) -> None:
        """A writer is done (published or discarded): it is no longer this process's."""
        with self._writers_lock:
            if self._writers.get(writer.blob_id) is writer:
                del self._writers[writer.blob_id]

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Abort a multipart upload; one already gone is fine."""
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if error_code(exc) not in _GONE_UPLOAD_CODES:
                raise s3_error(exc, "aborting a multipart upload") from exc
        except (BotoCoreError, OSError) as exc:
            raise s3_error(exc, "aborting a multipart upload") from exc

    # -- reading -------------------------------------------------------------------------

    def open(self, blob_id: str) -> S3ReadFile:
        key = self.key(blob_id)
        with s3_errors(f"opening blob {blob_id}"):
            size = self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        return S3ReadFile(self.client, self.bucket, key, size)

    def presign_download(self, blob_id: str, content_type: str,
                         content_disposition: str) -> str | None:
        """In ``redirect`` mode, a presigned GET of the blob answered with these headers;
        ``None`` in ``proxy`` mode."""
        if self.settings.downloads != "redirect":
            return None
        params = {"Bucket": self.bucket, "Key": self.key(blob_id),
                  "ResponseContentType": content_type,
                  "ResponseContentDisposition": content_disposition}
        with s3_errors("presigning a download"):
            return self.client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=self.settings.presign_expires)

    def delete(self, blob_id: str) -> None:
        key = self.key(blob_id)
        with s3_errors(f"deleting blob {blob_id}"):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    # -- listing for gc ------------------------------------------------------------------

    def _listed(self, operation: str, field: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(blob_id, entry)`` for each entry of a listing under the blobs' prefix whose
        key names a blob (anything else there is not teledrop's)."""
        with s3_errors(f"listing the bucket ({operation})"):
            pages = self.client.get_paginator(operation).paginate(Bucket=self.bucket,
                                                                  Prefix=self.blobs_prefix)
            for page in pages:
                for entry in page.get(field, []):
                    blob_id = entry["Key"][len(self.blobs_prefix):]
                    if _BLOB_ID.fullmatch(blob_id):
                        yield blob_id, entry

    def list_blobs(self) -> Iterator[StoredItem]:
        for blob_id, item in self._listed("list_objects_v2", "Contents"):
            yield StoredItem(blob_id, _age(item["LastModified"]))

    def list_staging(self) -> Iterator[StoredItem]:
        for blob_id, upload in self._listed("list_multipart_uploads", "Uploads"):
            yield StoredItem(f"{blob_id}.{upload['UploadId']}", _age(self._last_activity(upload)),
                             blob_id)
        with self._writers_lock:
            in_memory = [writer for writer in self._writers.values()
                         if writer.upload_id is None and not writer.removed]
        for writer in in_memory:
            yield StoredItem(writer.blob_id, max(0.0, time.time() - writer.created))

    def _last_activity(self, upload: dict[str, Any]) -> datetime:
        """When an in-progress upload last received a part (else when it began): an upload
        still sending is as young as its last part, as a local staging file is as young as
        its last write, so gc never aborts an upload that is making progress. A part reaches
        the bucket only once it is full: a client slower than a part per gc age is judged
        by its last full part."""
        latest = upload["Initiated"]
        with s3_errors("listing an upload's parts"):
            pages = self.client.get_paginator("list_parts").paginate(
                Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            try:
                for page in pages:
                    for part in page.get("Parts", []):
                        latest = max(latest, part["LastModified"])
            except ClientError as exc:
                if error_code(exc) != "NoSuchUpload":  # completed or aborted meanwhile
                    raise
        return latest

    def remove_staging(self, name: str) -> None:
        match = _STAGING_NAME.fullmatch(name)
        if match is None:
            raise ValueError(f"not a staging name: {name!r}")
        with self._writers_lock:
            writer = self._writers.get(match["blob_id"])
        if writer is not None:
            writer.removed = True
        if match["upload_id"] is not None:
            self.abort_upload(self.key(match["blob_id"]), match["upload_id"])

    # -- health --------------------------------------------------------------------------

    def check(self) -> None:
        try:
            self._head_bucket()
        except (BotoCoreError, OSError) as exc:
            raise s3_error(exc, f"checking bucket {self.bucket!r} at {self.where}") from exc

    def free_space(self) -> int | None:
        """Unknown: a bucket has no free space to read (``limits.max_total_size`` caps it)."""
        return None

    def verify_bucket(self) -> None:
        """At start-up: a bucket that does not exist or refuses these credentials stops
        teledrop with one line naming it. An object store that cannot be reached, or that
        answers with a server error (restarting, overloaded), does not: teledrop starts,
        answers 503 meanwhile, and recovers when it is back."""
        try:
            self._head_bucket()
        except StorageUnavailable as exc:
            cause = exc.__cause__
            if not (isinstance(cause, ClientError) and (http_status(cause) or 0) >= 500):
                raise
            log.warning("s3_storage: bucket %r at %s answers %s for now: starting anyway",
                        self.bucket, self.where, http_status(cause))
        except (BotoCoreError, OSError) as exc:
            log.warning("s3_storage: bucket %r at %s cannot be reached yet (%s): starting "
                        "anyway", self.bucket, self.where, exc)

    def _head_bucket(self) -> None:
        """HeadBucket. An answer that refuses it, or no credentials to ask with, raises
        :class:`StorageUnavailable` naming the bucket, the endpoint and what to fix; no
        answer at all raises botocore's error."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            raise StorageUnavailable(self._refusal(exc)) from exc
        except NoCredentialsError as exc:
            raise StorageUnavailable(
                f"no credentials for bucket {self.bucket!r} at {self.where}: set "
                "access_key_id and secret_access_key, or the SDK's credential chain") from exc

    def _refusal(self, exc: ClientError) -> str:
        status = http_status(exc)
        if status == 404 or error_code(exc) == "NoSuchBucket":
            return f"bucket {self.bucket!r} does not exist at {self.where}"
        if status in (401, 403):
            return (f"bucket {self.bucket!r} at {self.where} refused these credentials "
                    "(check access_key_id and secret_access_key)")
        if status == 301:
            return (f"bucket {self.bucket!r} is in another region than "
                    f"{self.settings.region or 'the default one'} (set region)")
        return s3_error(exc, f"checking bucket {self.bucket!r} at {self.where}").message

    def close(self) -> None:
        self._connection.close()


def _age(when: datetime) -> float:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, time.time() - when.timestamp())
