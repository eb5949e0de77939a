"""The one error hierarchy: each error carries a code, an HTTP status and a message."""

from __future__ import annotations


class TeledropError(Exception):
    """Base of every error a client may see. ``str(err)`` is a one-line reason."""

    code = "error"
    status = 500
    default_message = "internal error"

    def __init__(self, message: str | None = None) -> None:
        self.message = (message or self.default_message).replace("\n", " ")
        super().__init__(self.message)

    def headers(self) -> dict[str, str]:
        """HTTP headers the error's response must carry."""
        return {}


class BadRequest(TeledropError):
    code, status, default_message = "bad_request", 400, "bad request"


class InvalidOption(BadRequest):
    code, default_message = "invalid_option", "invalid option"


class InvalidSlug(BadRequest):
    code, default_message = "invalid_slug", "invalid slug"


class InvalidFilename(BadRequest):
    code, default_message = "invalid_filename", "invalid filename"


class MalformedBody(BadRequest):
    code, default_message = "malformed_body", "malformed request body"


class ClientDisconnected(BadRequest):
    code, default_message = "client_disconnected", "the client went away mid-upload"


class RequestTimeout(TeledropError):
    code, status, default_message = "request_timeout", 408, \
        "the request sent nothing for too long and was dropped"


class UploadTimeout(RequestTimeout):
    code, default_message = "upload_timeout", "the upload stalled and was dropped"


class Unauthorized(TeledropError):
    code, status, default_message = "unauthorized", 401, "a valid upload token is required"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="teledrop"'}


class Forbidden(TeledropError):
    code, status, default_message = "forbidden", 403, "wrong delete token"


class NotFound(TeledropError):
    code, status, default_message = "not_found", 404, "no such drop"


class MethodNotAllowed(TeledropError):
    code, status, default_message = "method_not_allowed", 405, "method not allowed"


class SlugTaken(TeledropError):
    code, status, default_message = "slug_taken", 409, "that slug is already taken"


class OffsetMismatch(TeledropError):
    code, status, default_message = "offset_mismatch", 409, \
        "Upload-Offset is not the upload's offset"


class UploadIncomplete(TeledropError):
    code, status, default_message = "upload_incomplete", 409, "the upload is not complete"


class UploadLocked(TeledropError):
    code, status, default_message = "upload_locked", 423, \
        "another request is continuing this upload"


class DirectUploadInvalid(BadRequest):
    code, default_message = "direct_upload_invalid", \
        "the direct upload does not hold the file it declared"


class DirectUploadBusy(TeledropError):
    code, status, default_message = "direct_upload_busy", 409, \
        "another request is completing this direct upload"


class DirectUploadCompleted(TeledropError):
    code, status, default_message = "direct_upload_completed", 409, \
        "this direct upload is complete already"


class TokenExists(TeledropError):
    code, status, default_message = "token_exists", 409, "a token with that name exists"


class Gone(TeledropError):
    code, status, default_message = "gone", 410, "this drop has expired"


class PasswordRequired(TeledropError):
    code, status, default_message = "password_required", 401, "this drop needs its password"

    def headers(self) -> dict[str, str]:
        # Basic with any user name: `curl -u :PASSWORD` works.
        return {"WWW-Authenticate": 'Basic realm="teledrop drop", charset="UTF-8"'}


class TooManyAttempts(TeledropError):
    code, status, default_message = "too_many_attempts", 429, "too many wrong passwords"

    def __init__(self, message: str | None = None, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class LengthRequired(TeledropError):
    code, status, default_message = "length_required", 411, \
        "send a Content-Length, or the body chunked (Transfer-Encoding: chunked)"


class TooLarge(TeledropError):
    code, status, default_message = "too_large", 413, "the upload exceeds the size limit"


class RangeNotSatisfiable(TeledropError):
    code, status, default_message = "range_not_satisfiable", 416, "range not satisfiable"

    def __init__(self, message: str | None = None, size: int | None = None) -> None:
        super().__init__(message)
        self.size = size

    def headers(self) -> dict[str, str]:
        # RFC 9110 15.5.17: the current length, so the client can ask again.
        return {} if self.size is None else {"Content-Range": f"bytes */{self.size}"}


class UnsupportedMediaType(TeledropError):
    code, status, default_message = "unsupported_media_type", 415, "unsupported content type"


class ContentRefused(TeledropError):
    code, status, default_message = "content_refused", 422, "the file was refused"


class NotImplementedByStorage(TeledropError):
    code, status, default_message = "not_implemented", 501, \
        "the storage backend cannot stage resumable uploads"


class DirectUploadsUnavailable(TeledropError):
    code, status, default_message = "direct_uploads_unavailable", 501, \
        "this storage cannot take direct uploads: upload through teledrop (POST /, PUT, " \
        "or /api/uploads)"


class Unavailable(TeledropError):
    code, status, default_message = "unavailable", 503, "service unavailable"


class MetadataUnavailable(Unavailable):
    code, default_message = "metadata_unavailable", "the metadata store is unavailable"


class StorageUnavailable(Unavailable):
    code, default_message = "storage_unavailable", "the storage is unavailable"


class StorageFull(TeledropError):
    code, status, default_message = "storage_full", 507, "the storage is full"


class MetadataFull(StorageFull):
    code, default_message = "metadata_full", "the metadata store's disk is full"


class BlobMissing(StorageUnavailable):
    code, default_message = "blob_missing", "the stored file is missing"


class StartupError(Exception):
    """Start-up cannot go on (config, plugins, backends). The message is one line."""


class ConfigError(StartupError):
    """A config value is wrong: names the source (file or env var), the key and the problem."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source, self.key, self.problem = source, key, problem
        super().__init__(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")
