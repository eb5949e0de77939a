"""The ``[plugins.s3_storage]`` table."""

from __future__ import annotations

from dataclasses import dataclass

from teledrop.core.config import parsed
from teledrop.core.units import format_size, parse_duration, parse_size

from .parts import MAX_PART_SIZE, MIN_PART_SIZE

ADDRESSING_STYLES = ("auto", "path", "virtual")
DOWNLOAD_MODES = ("proxy", "redirect")
#: SigV4 presigned URLs live at most a week.
MAX_PRESIGN_EXPIRES = 7 * 86400


@dataclass(frozen=True)
class S3StorageSettings:
    #: must exist: start-up fails with one line naming it otherwise.
    bucket: str = "teledrop"
    #: empty: AWS; e.g. "http://127.0.0.1:8333".
    endpoint_url: str = ""
    #: empty: the SDK's default.
    region: str = ""
    #: key prefix inside the bucket, e.g. "drops/".
    prefix: str = ""
    #: empty: the SDK's credential chain (env, files, instance role).
    access_key_id: str = ""
    secret_access_key: str = ""
    #: "path" for most self-hosted servers, "virtual", or "auto".
    addressing_style: str = "auto"
    #: multipart part size; grows for files that would pass 10,000 parts.
    part_size: int = parsed(parse_size, "16MiB")
    #: "proxy": bytes stream through teledrop; "redirect": 302 to a presigned URL.
    downloads: str = "proxy"
    #: lifetime of a presigned URL.
    presign_expires: int = parsed(parse_duration, "60s")

    def check(self) -> dict[str, str]:
        problems = {}
        if not self.bucket:
            problems["bucket"] = "cannot be empty"
        if self.endpoint_url and not self.endpoint_url.startswith(("http://", "https://")):
            problems["endpoint_url"] = (f"must start with http:// or https://, "
                                        f"got {self.endpoint_url!r}")
        if self.prefix.startswith("/"):
            problems["prefix"] = "must not start with '/'"
        if bool(self.access_key_id) != bool(self.secret_access_key):
            problems["access_key_id"] = ("set both access_key_id and secret_access_key, "
                                         "or neither (the SDK's credential chain)")
        if self.addressing_style not in ADDRESSING_STYLES:
            problems["addressing_style"] = f"expected one of {', '.join(ADDRESSING_STYLES)}"
        if not MIN_PART_SIZE <= self.part_size <= MAX_PART_SIZE:
            problems["part_size"] = (f"must be between {format_size(MIN_PART_SIZE)} and "
                                     f"{format_size(MAX_PART_SIZE)} (S3's limits)")
        if self.downloads not in DOWNLOAD_MODES:
            problems["downloads"] = f"expected one of {', '.join(DOWNLOAD_MODES)}"
        if not 1 <= self.presign_expires <= MAX_PRESIGN_EXPIRES:
            problems["presign_expires"] = "must be between 1s and 7d"
        return problems
