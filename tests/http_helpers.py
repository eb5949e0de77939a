"""Helpers for the HTTP tests that run through Flask's test client: hand-built multipart
bodies, upload shortcuts, and checks of what is left on disk and in the metadata store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import blake3
from flask import Flask
from werkzeug.test import TestResponse

from teledrop.core.drop import Drop
from teledrop.web.app import service_of

BOUNDARY = "td-boundary-7Qx"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
JSON = {"Accept": "application/json"}
#: The fields of a drop as JSON, its owner fields included; uploads add ``delete_token``.
DROP_FIELDS = frozenset({"slug", "url", "filename", "size", "content_type", "hash",
                         "created_at", "expires_at", "max_downloads", "downloads",
                         "title", "description", "private", "has_password"})
ISO_Z = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@dataclass
class Part:
    """One multipart part. ``disposition`` replaces the generated Content-Disposition
    parameters verbatim, for headers a well-behaved client would never send."""

    name: str
    data: bytes = b""
    filename: str | None = None
    content_type: str | None = None
    disposition: bytes | None = None

    def encode(self) -> bytes:
        if self.disposition is not None:
            params = self.disposition
        else:
            params = f'name="{self.name}"'.encode()
            if self.filename is not None:
                params += f'; filename="{self.filename}"'.encode()
        head = b"Content-Disposition: form-data; " + params + b"\r\n"
        if self.content_type is not None:
            head += f"Content-Type: {self.content_type}\r\n".encode()
        return head + b"\r\n" + self.data


def file_part(data: bytes = b"hello", filename: str | None = "hello.txt",
              content_type: str | None = None) -> Part:
    return Part("file", data, filename, content_type)


def field_part(name: str, value: str | bytes) -> Part:
    return Part(name, value.encode() if isinstance(value, str) else value)


def multipart_body(*parts: Part, closed: bool = True) -> bytes:
    """The body bytes; ``closed=False`` leaves out the closing boundary."""
    delimiter = f"--{BOUNDARY}\r\n".encode()
    body = b"".join(delimiter + part.encode() + b"\r\n" for part in parts)
    return body + f"--{BOUNDARY}--\r\n".encode() if closed else body


def post_parts(client: Any, *parts: Part, closed: bool = True,
               headers: Mapping[str, str] | None = None,
               query: Mapping[str, str] | None = None) -> TestResponse:
    return client.post("/", data=multipart_body(*parts, closed=closed), content_type=MULTIPART,
                       headers=dict(headers or {}), query_string=dict(query or {}))


def post_file(client: Any, data: bytes = b"hello", filename: str | None = "hello.txt",
              content_type: str | None = None, fields: Mapping[str, str] | None = None,
              headers: Mapping[str, str] | None = None,
              query: Mapping[str, str] | None = None) -> TestResponse:
    """``curl -F file=@hello.txt [-F k=v ...]``: the file part first, then the fields."""
    parts = [file_part(data, filename, content_type)]
    parts += [field_part(k, v) for k, v in (fields or {}).items()]
    return post_parts(client, *parts, headers=headers, query=query)


def put_file(client: Any, path: str = "/hello.txt", data: bytes = b"hello",
             headers: Mapping[str, str] | None = None,
             query: Mapping[str, str] | None = None) -> TestResponse:
    """``curl -T``: the raw body, with a Content-Length."""
    return client.put(path, data=data, headers=dict(headers or {}),
                      query_string=dict(query or {}))


def created_json(response: TestResponse) -> dict[str, Any]:
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


def post_json(client: Any, data: bytes = b"hello", filename: str = "hello.txt",
              **fields: str) -> TestResponse:
    """An upload through ``POST /`` that asks for JSON; the response, whatever it is."""
    return post_file(client, data, filename, fields=fields, headers=JSON)


def put_json(client: Any, data: bytes = b"hello", path: str = "/hello.txt",
             **query: str) -> TestResponse:
    """An upload through ``PUT`` that asks for JSON; the response, whatever it is."""
    return put_file(client, path, data, headers=JSON, query=query)


def upload(client: Any, data: bytes = b"hello", filename: str = "hello.txt",
           **fields: str) -> dict[str, Any]:
    """Upload through ``POST /`` and return the drop as JSON (delete token included)."""
    return created_json(post_json(client, data, filename, **fields))


def slug_of(response: TestResponse) -> str:
    """The slug named by an upload's ``Location`` (``/{slug}``, after any proxy prefix)."""
    location = response.headers["Location"]
    assert location.startswith("/")
    return location.rsplit("/", 1)[1]


def epoch(iso: str) -> int:
    """Seconds since the epoch of an API timestamp (``2026-11-26T02:19:57Z``)."""
    return int(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
               .timestamp())


def lifetime(drop: Mapping[str, Any]) -> int:
    return epoch(drop["expires_at"]) - epoch(drop["created_at"])


def blake3_hash(data: bytes) -> str:
    return "blake3:" + blake3.blake3(data).hexdigest()


def stored_paths(data_dir: Path) -> set[Path]:
    """Every file local_storage holds: staged and published."""
    root = data_dir / "files"
    return {p for area in ("staging", "blobs") for p in (root / area).rglob("*") if p.is_file()}


def records(app: Flask) -> list[Drop]:
    return list(service_of(app).metadata.iter_drops())


def assert_nothing_stored(app: Flask, data_dir: Path) -> None:
    assert stored_paths(data_dir) == set()
    assert records(app) == []


def assert_text_error(response: TestResponse, status: int) -> str:
    """A plain-text error: the status and exactly one non-empty line."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    body = response.get_data(as_text=True)
    assert body.endswith("\n") and body.count("\n") == 1 and body.strip(), body
    assert "Traceback" not in body
    return body.strip()


def assert_json_error(response: TestResponse, status: int, code: str | None = None) -> str:
    """A JSON error: ``{"error": {"code": ..., "message": ...}}`` and nothing else."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    if code is not None:
        assert body["error"]["code"] == code
    message = body["error"]["message"]
    assert message and "\n" not in message and "Traceback" not in message
    return message
