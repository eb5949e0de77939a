"""Upload tokens: with ``[auth] upload_tokens`` (or ``require_token``) set, uploads need
``Authorization: Bearer`` with a configured token or one from the token store. teledrop
has already identified the request's owner (and refused an unknown token)."""

from __future__ import annotations

from teledrop import hookimpl
from teledrop.core.config import Config
from teledrop.core.errors import Unauthorized
from teledrop.core.upload import UploadRequest


@hookimpl
def teledrop_authorize_upload(request: UploadRequest, config: Config) -> None:
    if config.auth.tokens_required and request.owner is None:
        raise Unauthorized("an upload token is required: Authorization: Bearer <token>")
