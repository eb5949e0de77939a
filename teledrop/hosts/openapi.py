"""``GET /openapi.json``: the HTTP interface as an OpenAPI 3.1 document.

Tests validate real responses against it, so it stays honest.
"""

from __future__ import annotations

from typing import Any

from teledrop import __version__
from teledrop.core.drop import JSON_FIELDS
from teledrop.core.interfaces import SORT_KEYS
from teledrop.core.manage import DEFAULT_PAGE_SIZE, DEFAULT_SORT, EDITABLE, FILTERS, \
    MAX_PAGE_SIZE, ORDERS
from teledrop.core.options import MAX_DESCRIPTION, MAX_TITLE
from teledrop.core.slugs import CUSTOM_SLUG_RULE
from teledrop.core.passwords import PASSWORD_HEADER
from teledrop.core.upload import OPTION_NAMES, SECRET_OPTIONS


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    }


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "bad request, option, slug, filename or body",
        401: "token missing or wrong, or the drop's password missing or wrong",
        403: "wrong delete token", 404: "no such drop", 405: "method not allowed",
        408: "the request body sent nothing for limits.idle_timeout",
        409: "slug taken", 410: "expired or out of downloads",
        411: "neither Content-Length nor Transfer-Encoding: chunked", 413: "over max_upload_size",
        412: "Tus-Resumable missing or not 1.0.0",
        415: "the body is not application/offset+octet-stream (tus), or a plugin refused "
             "the file's type",
        416: "range not satisfiable",
        422: "a plugin inspecting the file refused it (content_refused, or the plugin's code)",
        423: "another request is continuing this upload",
        429: "too many wrong passwords for this drop",
        501: "the storage backend cannot stage resumable uploads",
        503: "storage or metadata unavailable", 507: "storage full",
    }
    return {str(status): _error(reasons[status]) for status in statuses}


#: What each upload option means; every name core takes has one (a new one fails here).
_OPTION_DESCRIPTIONS = {
    "slug": f"custom slug: {CUSTOM_SLUG_RULE}",
    "expires": "seconds, or a number with s m h d",
    "max_downloads": "an integer >= 1",
    "title": f"up to {MAX_TITLE} characters",
    "description": f"up to {MAX_DESCRIPTION} characters",
    "private": "true: only the owner's token reads it (needs an upload token)",
    "password": "a password readers must give (never in the query string)",
}
_OPTIONS = [
    *({"name": name, "in": "query", "required": False,
       "description": _OPTION_DESCRIPTIONS[name], "schema": {"type": "string"}}
      for name in OPTION_NAMES if name not in SECRET_OPTIONS),
    {"name": PASSWORD_HEADER, "in": "header", "required": False,
     "description": _OPTION_DESCRIPTIONS["password"], "schema": {"type": "string"}},
]
_READER = [
    {"name": PASSWORD_HEADER, "in": "header", "required": False,
     "description": "the drop's password (or HTTP Basic with any user name)",
     "schema": {"type": "string"}},
]
_BYTES = {"type": "string", "contentMediaType": "application/octet-stream"}
_SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"},
         "example": "report-q3"}
_UPLOAD_ERRORS = _errors(400, 401, 408, 409, 413, 422, 503, 507)
_CREATED = {
    "description": "the drop was created",
    "headers": {
        "Location": {"schema": {"type": "string"}},
        "X-Delete-Token": {"schema": {"type": "string"}},
    },
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/CreatedDrop"}},
        "text/plain": {"schema": {"type": "string", "description": "the link and a newline"}},
    },
}
_FILE = {
    "description": "the file's bytes",
    "headers": {name: {"schema": {"type": "string"}} for name in
                ("ETag", "Last-Modified", "Accept-Ranges", "Content-Disposition")},
    # the file's own type
    "content": {"*/*": {"schema": {"type": "string"}}},
}
_DOWNLOAD_RESPONSES = {
    "200": _FILE,
    "206": {**_FILE, "description": "one byte range of the file"},
    "304": {"description": "not modified (If-None-Match)"},
    # 507: a download is counted, which a full metadata store cannot write
    **_errors(400, 401, 404, 410, 416, 429, 503, 507),
}
_PREVIEW = {"name": "preview", "in": "query", "required": False, "allowEmptyValue": True,
            "description": "show a safe type (image, PDF, text, audio, video) inline",
            "schema": {"type": "string"}}
_DOWNLOAD = {"name": "download", "in": "query", "required": False, "allowEmptyValue": True,
             "description": "the bytes, even to a browser navigation (which otherwise gets "
                            "the drop's landing page)",
             "schema": {"type": "string"}}
_PASSWORD_FORM = {"required": True, "content": {"application/x-www-form-urlencoded": {
    "schema": {"type": "object", "required": ["password"],
               "properties": {"password": {"type": "string"}}}}}}


def _download(summary: str) -> dict[str, Any]:
    return {"summary": summary, "parameters": [_PREVIEW, _DOWNLOAD, *_READER],
            "security": _ANYONE_OR_OWNER, "responses": _DOWNLOAD_RESPONSES}


def _password_download(summary: str) -> dict[str, Any]:
    return {"summary": summary, "parameters": [_PREVIEW, _DOWNLOAD], "requestBody": _PASSWORD_FORM,
            "security": _ANYONE_OR_OWNER,
            "responses": {**_DOWNLOAD_RESPONSES, **_errors(405, 408)}}


_OWNER = [{"uploadToken": []}]
#: Anyone, or an owner by their token: an upload then belongs to them, and they read and
#: delete their drops without a password or a delete token.
_ANYONE_OR_OWNER = [{}, *_OWNER]
_PAGE_PARAMS = [
    {"name": name, "in": "query", "required": False, "schema": schema}
    for name, schema in (
        ("page", {"type": "integer", "minimum": 1}),
        ("page_size", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE,
                       "default": DEFAULT_PAGE_SIZE}),
        ("sort", {"enum": list(SORT_KEYS), "default": DEFAULT_SORT}),
        ("order", {"enum": list(ORDERS), "default": ORDERS[0]}),
        *((name, {"type": "boolean"}) for name in FILTERS),
        ("q", {"type": "string", "description": "search filenames and titles"}),
    )
]
_EDITS: dict[str, Any] = {
    "title": {"type": "string", "maxLength": MAX_TITLE},
    "description": {"type": "string", "maxLength": MAX_DESCRIPTION},
    "expires": {"type": ["string", "integer"], "description": "from now"},
    "max_downloads": {"type": ["integer", "null"], "minimum": 1},
    "private": {"type": "boolean"},
    "password": {"type": ["string", "null"], "description": "null or \"\" clears it"},
}
_PATCH_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "additionalProperties": False,
    "properties": {name: _EDITS[name] for name in EDITABLE}}}}}
_DROP_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/Drop"}}}
#: The schema of each field of a drop as JSON; every field core shows has one.
_FIELDS: dict[str, Any] = {
    "slug": {"type": "string"},
    "url": {"type": "string"},
    "filename": {"type": "string"},
    "size": {"type": "integer", "minimum": 0},
    "content_type": {"type": "string"},
    "hash": {"type": "string", "pattern": "^[a-z0-9_-]+:[0-9a-f]+$"},
    "created_at": {"type": "string", "format": "date-time"},
    "expires_at": {"type": "string", "format": "date-time"},
    "max_downloads": {"type": ["integer", "null"], "minimum": 1},
    "downloads": {"type": "integer", "minimum": 0},
    "title": {"type": "string", "maxLength": MAX_TITLE},
    "description": {"type": "string", "maxLength": MAX_DESCRIPTION},
    "private": {"type": "boolean"},
    "has_password": {"type": "boolean"},
}
_DROP_PROPERTIES = {name: _FIELDS[name] for name in JSON_FIELDS}


def _raw_upload(summary: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": _OPTIONS,
        "security": _ANYONE_OR_OWNER,
        "requestBody": {"content": {"application/octet-stream": {"schema": _BYTES}}},
        "responses": {"201": _CREATED, **_UPLOAD_ERRORS, **_errors(411)},
    }


def _tus_headers(*names: str) -> dict[str, Any]:
    return {name: {"schema": {"type": "string"}} for name in ("Tus-Resumable", *names)}


_TUS_VERSION = [{"name": "Tus-Resumable", "in": "header", "required": True,
                 "schema": {"const": "1.0.0"}}]
_UPLOAD_ID = {"name": "upload_id", "in": "path", "required": True, "schema": {"type": "string"}}
_OFFSET_BODY = {"content": {"application/offset+octet-stream": {"schema": _BYTES}}}
_TUS_PROGRESS = ("Upload-Offset", "Upload-Expires", "X-Drop-Url", "X-Delete-Token")
_TUS_PATCH = {
    "summary": "append the bytes at Upload-Offset; the last ones create the drop",
    "parameters": [*_TUS_VERSION, *(
        {"name": name, "in": "header", "required": required,
         "schema": {"type": "string", "pattern": "^[0-9]+$"}}
        for name, required in (("Upload-Offset", True), ("Upload-Length", False)))],
    "requestBody": _OFFSET_BODY,
    "responses": {"204": {"description": "appended (X-Drop-Url once complete)",
                          "headers": _tus_headers(*_TUS_PROGRESS)},
                  **_errors(400, 404, 408, 409, 412, 413, 415, 422, 423, 503, 507)},
}
_TUS_TERMINATE = {"summary": "terminate the upload: everything staged is removed",
                  "parameters": _TUS_VERSION,
                  "responses": {"204": {"description": "terminated",
                                        "headers": _tus_headers()},
                                **_errors(404, 412, 423, 501, 503)}}
_TUS_HEAD = {"summary": "where the upload stands", "parameters": _TUS_VERSION,
             "responses": {"200": {"description": "its offset, length and metadata",
                                   "headers": _tus_headers(
                                       "Upload-Offset", "Upload-Length", "Upload-Defer-Length",
                                       "Upload-Metadata", "Upload-Expires", "Cache-Control")},
                           **_errors(404, 412)}}


def _tus_paths() -> dict[str, Any]:
    """Resumable uploads over tus 1.0 (docs/resumable.md)."""
    return {
        "/api/uploads": {
            "options": {"summary": "the tus versions, extensions and maximum size",
                        "responses": {"204": {"description": "what this server speaks",
                                              "headers": _tus_headers(
                                                  "Tus-Version", "Tus-Extension",
                                                  "Tus-Max-Size")}}},
            "post": {
                "summary": "create a resumable upload (and send its first bytes)",
                "security": _ANYONE_OR_OWNER,
                "parameters": [*_TUS_VERSION, *(
                    {"name": name, "in": "header", "required": False, "description": what,
                     "schema": {"type": "string"}}
                    for name, what in (
                        ("Upload-Length", "the file's size"),
                        ("Upload-Defer-Length", "1: the size comes with a later PATCH"),
                        ("Upload-Metadata", "key base64 pairs: filename, filetype, and "
                                            + ", ".join(n for n in OPTION_NAMES
                                                        if n not in SECRET_OPTIONS)),
                        (PASSWORD_HEADER, _OPTION_DESCRIPTIONS["password"])))],
                "requestBody": _OFFSET_BODY,
                "responses": {"201": {"description": "created; its URL is in Location",
                                      "headers": _tus_headers("Location", *_TUS_PROGRESS)},
                              **_errors(400, 401, 408, 409, 412, 413, 415, 422, 423, 501,
                                        503, 507)},
            },
        },
        "/api/uploads/{upload_id}": {
            "parameters": [_UPLOAD_ID],
            "options": {"summary": "as OPTIONS /api/uploads (a browser's preflight)",
                        "responses": {"204": {"description": "what this server speaks",
                                              "headers": _tus_headers("Tus-Version")}}},
            "head": _TUS_HEAD,
            "get": {"summary": "the drop a complete upload became",
                    "responses": {"200": {"description": "the drop", "content": _DROP_JSON},
                                  **_errors(404, 409, 503)}},
            "patch": _TUS_PATCH,
            "delete": _TUS_TERMINATE,
            "post": {**_TUS_PATCH,
                     "summary": "PATCH, DELETE or HEAD, named by X-HTTP-Method-Override",
                     "parameters": [*_TUS_PATCH["parameters"],
                                    {"name": "X-HTTP-Method-Override", "in": "header",
                                     "required": True,
                                     "schema": {"enum": ["PATCH", "DELETE", "HEAD"]}}],
                     "responses": {**_TUS_TERMINATE["responses"], **_TUS_HEAD["responses"],
                                   **_TUS_PATCH["responses"], **_errors(405)}},
        },
    }


_DIRECT_ID = {"name": "upload_id", "in": "path", "required": True,
              "schema": {"type": "string"}}
_NO_DIRECT = _error("direct_uploads_unavailable: the storage cannot take direct uploads "
                    "(upload through teledrop instead)")
_DIRECT_REQUEST = {"type": "object", "required": ["size"], "additionalProperties": False,
                   "properties": {
                       "size": {"type": "integer", "minimum": 0},
                       "filename": {"type": "string"},
                       "content_type": {"type": "string"},
                       **{name: {"type": ["string", "integer", "boolean", "null"],
                                 "description": _OPTION_DESCRIPTIONS[name]}
                          for name in OPTION_NAMES}}}
_DIRECT_UPLOAD = {"type": "object", "required": ["id", "part_size", "parts", "expires_at"],
                  "additionalProperties": False, "properties": {
                      "id": {"type": "string"},
                      "part_size": {"type": "integer", "minimum": 1},
                      "parts": {"type": "array", "items": {
                          "type": "object", "required": ["number", "url"],
                          "additionalProperties": False, "properties": {
                              "number": {"type": "integer", "minimum": 1},
                              "url": {"type": "string"}}}},
                      "expires_at": {"type": "string", "format": "date-time"}}}
_CLIENT_PARTS = {"type": "object", "required": ["parts"], "properties": {
    "parts": {"type": "array", "items": {
        "type": "object", "required": ["number", "etag"], "properties": {
            "number": {"type": "integer", "minimum": 1}, "etag": {"type": "string"}}}}}}


def _direct_paths() -> dict[str, Any]:
    """Direct uploads: the bytes go straight to the storage (docs/direct-uploads.md)."""
    return {
        "/api/direct-uploads": {
            "post": {
                "summary": "start a direct upload: presigned part URLs for the file",
                "parameters": _OPTIONS,
                "security": _ANYONE_OR_OWNER,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _DIRECT_REQUEST}}},
                "responses": {
                    "201": {"description": "PUT each part to its URL, then complete",
                            "headers": {"Location": {"schema": {"type": "string"}}},
                            "content": {"application/json": {"schema": _DIRECT_UPLOAD}}},
                    **_errors(400, 401, 408, 409, 413, 503, 507), "501": _NO_DIRECT},
            },
        },
        "/api/direct-uploads/{upload_id}/complete": {
            "parameters": [_DIRECT_ID],
            "post": {
                "summary": "check the parts the storage holds and make them a drop",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _CLIENT_PARTS}}},
                "responses": {
                    "201": {**_CREATED, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/CreatedDrop"}}}},
                    "400": _error("direct_upload_invalid: the parts are not the declared "
                                  "file, or it expired (the upload is aborted)"),
                    "409": _error("slug taken (the upload is aborted), or the upload is "
                                  "complete already or being completed"),
                    **_errors(404, 408, 413, 415, 422, 503, 507), "501": _NO_DIRECT},
            },
        },
        "/api/direct-uploads/{upload_id}": {
            "parameters": [_DIRECT_ID],
            "delete": {
                "summary": "abort a direct upload: every part sent is removed",
                "responses": {"204": {"description": "aborted"},
                              "409": _error("a request is completing it"),
                              **_errors(404, 503), "501": _NO_DIRECT},
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "teledrop", "version": __version__,
                 "description": "A self-hosted file drop: upload a file, get a short link."},
        "paths": {
            "/": {
                "get": {"summary": "the upload page (browsers) or usage text (curl)",
                        "responses": {"200": {"description": "page or usage", "content": {
                            "text/html": {"schema": {"type": "string"}},
                            "text/plain": {"schema": {"type": "string"}}}}}},
                "post": {
                    "summary": "upload a file as multipart/form-data",
                    "parameters": _OPTIONS,
                    "security": _ANYONE_OR_OWNER,
                    "requestBody": {"required": True, "content": {"multipart/form-data": {
                        "schema": {"type": "object", "required": ["file"], "properties": {
                            "file": _BYTES,
                            **{name: {"type": "string", "description": _OPTION_DESCRIPTIONS[name]}
                               for name in OPTION_NAMES}}}}}},
                    "responses": {"201": _CREATED, **_UPLOAD_ERRORS},
                },
                "put": _raw_upload("upload a raw body (named 'file')"),
            },
            "/{slug}": {
                "parameters": [_SLUG],
                "get": _download("download a drop (counts as a download); a browser "
                                 "navigation gets the drop's landing page (never counted)"),
                "head": _download("a download's headers (never counted)"),
                "post": _password_download("a password-protected drop from the password "
                                           "form: its landing page for a browser navigation, "
                                           "else the bytes"),
                "put": _raw_upload("upload a raw body under this filename (the path names "
                                   "the file)"),
                "delete": {
                    "summary": "delete a drop with its delete token, or as its owner",
                    "parameters": [{"name": "X-Delete-Token", "in": "header", "required": False,
                                    "schema": {"type": "string"}}],
                    "security": _ANYONE_OR_OWNER,
                    # 405: one of the app's own paths (/healthz, /metrics...) is no drop
                    "responses": {"204": {"description": "deleted"},
                                  **_errors(401, 403, 404, 405, 503, 507)},
                },
            },
            "/{slug}/{name}": {
                "parameters": [_SLUG, {"name": "name", "in": "path", "required": True,
                                       "schema": {"type": "string"}}],
                "get": _download("download a drop under any name"),
                "post": _password_download("the password form, for a drop under any name"),
            },
            "/api/drops": {
                "get": {"summary": "the owner's drops, a page at a time", "security": _OWNER,
                        "parameters": _PAGE_PARAMS,
                        "responses": {"200": {"description": "one page", "content": {
                            "application/json": {"schema": {
                                "$ref": "#/components/schemas/DropPage"}}}},
                            **_errors(400, 401, 503)}},
            },
            "/api/drops/{slug}": {
                "parameters": [_SLUG],
                "get": {"summary": "a drop's metadata", "parameters": _READER,
                        "security": _ANYONE_OR_OWNER,
                        "responses": {"200": {"description": "the drop", "content": _DROP_JSON},
                                      **_errors(400, 401, 404, 410, 429, 503)}},
                "patch": {"summary": "change a drop (its owner only)", "security": _OWNER,
                          "requestBody": _PATCH_BODY,
                          "responses": {"200": {"description": "the drop as changed",
                                                "content": _DROP_JSON},
                                        **_errors(400, 401, 404, 408, 503, 507)}},
            },
            **_tus_paths(),
            **_direct_paths(),
            "/metrics": {
                "get": {"summary": "Prometheus metrics", "responses": {
                    "200": {"description": "text exposition format", "content": {
                        "text/plain": {"schema": {"type": "string"}}}},
                    **_errors(404)}},
            },
            "/static/{filename}": {
                "parameters": [{"name": "filename", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "get": {"summary": "the upload page's script and stylesheet", "responses": {
                    "200": {"description": "the file", "content": {
                        "*/*": {"schema": {"type": "string"}}}},
                    **_errors(404)}},
            },
            "/api/qr.svg": {
                "get": {"summary": "the QR code of one of this server's drop links, as SVG",
                        "parameters": [{"name": "link", "in": "query", "required": True,
                                        "schema": {"type": "string"}}],
                        "responses": {"200": {"description": "the QR code", "content": {
                            "image/svg+xml": {"schema": {"type": "string"}}}},
                            **_errors(400)}},
            },
            "/healthz": {
                "get": {"summary": "storage and metadata reachable, with room for uploads",
                        "responses": {
                            "200": {"description": "ok", "content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/Health"}}}},
                            "503": {"description": "unavailable", "content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/Health"}}}},
                            "507": {"description": "full: less free space than "
                                    "limits.min_free_space", "content": {"application/json": {
                                        "schema": {"$ref": "#/components/schemas/Health"}}}}}},
            },
            "/openapi.json": {
                "get": {"summary": "this document", "responses": {"200": {
                    "description": "OpenAPI 3.1", "content": {"application/json": {
                        "schema": {"type": "object"}}}}}},
            },
        },
        "components": {
            "securitySchemes": {"uploadToken": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Drop": {"type": "object", "required": list(_DROP_PROPERTIES),
                         "properties": _DROP_PROPERTIES, "additionalProperties": False},
                "CreatedDrop": {"type": "object",
                                "required": [*_DROP_PROPERTIES, "delete_token"],
                                "properties": {**_DROP_PROPERTIES,
                                               "delete_token": {"type": "string"}},
                                "additionalProperties": False},
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
                "DropPage": {"type": "object",
                             "required": ["total", "page", "page_size", "drops"],
                             "properties": {
                                 "total": {"type": "integer", "minimum": 0},
                                 "page": {"type": "integer", "minimum": 1},
                                 "page_size": {"type": "integer", "minimum": 1},
                                 "drops": {"type": "array",
                                           "items": {"$ref": "#/components/schemas/Drop"}}}},
                "Health": {"type": "object", "required": ["status"], "properties": {
                    "status": {"enum": ["ok", "unavailable", "full"]},
                    "error": {"type": "object"}}},
            },
        },
    }
