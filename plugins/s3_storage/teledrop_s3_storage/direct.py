"""Direct uploads (see :class:`teledrop.core.interfaces.DirectUploads`): a multipart
upload on a fresh blob's final key, one presigned ``UploadPart`` URL per part, and the
listing, completion and abort of that upload. Its state is the multipart upload's id.

Nothing is visible under the key before CompleteMultipartUpload. Until then the upload is
staging, listed for gc like a streamed upload's (with its blob id, so gc leaves a recorded
one alone).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from teledrop.core.errors import BlobMissing, DirectUploadInvalid, TooLarge
from teledrop.core.interfaces import DirectStart, StoredPart
from teledrop.core.units import format_size

from .errors import error_code, s3_error, s3_errors
from .parts import MAX_PART_SIZE, initial_part_size
from .settings import MAX_PRESIGN_EXPIRES

if TYPE_CHECKING:
    from .storage import S3Storage

#: What S3 answers a completion whose parts it will not take.
_REFUSED_PARTS = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall",
                            "EntityTooLarge", "NoSuchUpload"})


class DirectUploadsMixin:
    """The direct-upload methods of :class:`~.storage.S3Storage`."""

    def start_direct(self: S3Storage, size: int, expires_in: int) -> DirectStart:
        part_size = initial_part_size(self.settings.part_size, size, self.max_parts)
        count = max(1, -(-size // part_size))
        if count > self.max_parts or part_size > MAX_PART_SIZE:
            raise TooLarge(f"the file is larger than the storage can take in one object "
                           f"({format_size(self.max_parts * MAX_PART_SIZE)})")
        blob_id = uuid.uuid4().hex
        key = self.key(blob_id)
        with s3_errors("starting a direct upload"):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket,
                                                            Key=key)["UploadId"]
        try:
            with s3_errors("presigning a direct upload's parts"):
                urls = [self.client.generate_presigned_url(
                    "upload_part", ExpiresIn=min(expires_in, MAX_PRESIGN_EXPIRES),
                    Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id,
                            "PartNumber": number})
                    for number in range(1, count + 1)]
        except BaseException:
            self.abort_upload(key, upload_id)
            raise
        return DirectStart(blob_id, upload_id, part_size, urls)

    def list_direct_parts(self: S3Storage, blob_id: str, state: str) -> list[StoredPart]:
        parts = []
        try:
            pages = self.client.get_paginator("list_parts").paginate(
                Bucket=self.bucket, Key=self.key(blob_id), UploadId=state)
            for page in pages:
                parts.extend(StoredPart(part["PartNumber"], part["Size"], part["ETag"])
                             for part in page.get("Parts", []))
        except ClientError as exc:
            if error_code(exc) in ("NoSuchUpload", "NoSuchKey", "404"):
                raise BlobMissing("the direct upload is gone from the storage") from exc
            raise s3_error(exc, "listing a direct upload's parts") from exc
        except (BotoCoreError, OSError) as exc:
            raise s3_error(exc, "listing a direct upload's parts") from exc
        return sorted(parts, key=lambda part: part.number)

    def complete_direct(self: S3Storage, blob_id: str, state: str,
                        parts: list[StoredPart]) -> None:
        listed: list[dict[str, Any]] = [{"PartNumber": part.number, "ETag": part.etag}
                                        for part in parts]
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key(blob_id), UploadId=state,
                MultipartUpload={"Parts": listed})
        except ClientError as exc:
            if error_code(exc) in _REFUSED_PARTS:
                raise DirectUploadInvalid(f"the storage refused the parts: {error_code(exc)} "
                                          f"{exc.response.get('Error', {}).get('Message', '')}"
                                          .strip()) from exc
            raise s3_error(exc, "completing a direct upload") from exc
        except (BotoCoreError, OSError) as exc:
            raise s3_error(exc, "completing a direct upload") from exc

    def abort_direct(self: S3Storage, blob_id: str, state: str) -> None:
        self.abort_upload(self.key(blob_id), state)
