"""Upload tokens: with ``[auth] upload_tokens`` set, uploads need ``Authorization: Bearer``."""

from __future__ import annotations

from teledrop import hookimpl
from teledrop.core.config import Config
from teledrop.core.errors import Unauthorized
from teledrop.core.tokens import token_in
from teledrop.core.upload import UploadRequest


@hookimpl
def teledrop_authorize_upload(request: UploadRequest, config: Config) -> None:
    tokens = config.auth.upload_tokens
    if not tokens:
        return
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("an upload token is required: Authorization: Bearer <token>")
    if not token_in(token.strip(), tokens):
        raise Unauthorized("the upload token is not valid")
