"""Download helpers shared by the download tests: a PUT under a given name then its
GET, and the parsed Content-Disposition."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote
from werkzeug.http import parse_options_header
from tests.http_helpers import (
    JSON,
    created_json,
    put_file,
)


def disposition(response: Any) -> tuple[str, dict[str, str]]:
    header = response.headers["Content-Disposition"]
    assert header.isascii() and header.isprintable(), header
    return parse_options_header(header)


def put_named(client: Any, name: str, content_type: str | None = None,
              preview: bool = False) -> Any:
    headers = {**JSON, **({"Content-Type": content_type} if content_type else {})}
    created = created_json(put_file(client, "/" + quote(name, safe=""), b"content",
                                    headers=headers))
    assert created["filename"] == name
    return client.get(f"/{created['slug']}" + ("?preview" if preview else ""))
