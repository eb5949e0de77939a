"""Owner helpers shared by the owner API's tests: bearer headers, uploads as an owner,
two store tokens on one app (and its ``owners`` fixture), listings and PATCH."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
import pytest
from flask import Flask
from werkzeug.test import TestResponse
from teledrop.core.owners import create_token
from teledrop.web.app import service_of
from tests.http_helpers import (
    DROP_FIELDS,
    JSON,
    created_json,
    post_file,
)


def bearer(token: str, accept_json: bool = True) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    return {**headers, **JSON} if accept_json else headers


def owner_upload(client: Any, token: str, data: bytes = b"hello", filename: str = "hello.txt",
                 headers: Mapping[str, str] | None = None, **fields: str) -> dict[str, Any]:
    """``curl -H 'Authorization: Bearer T' -F file=@x -F k=v``: the drop as JSON."""
    response = post_file(client, data, filename, fields=fields,
                         headers={**bearer(token), **(headers or {})})
    return created_json(response)


def owner_of(app: Flask, slug: str) -> str | None:
    drop = service_of(app).metadata.get(slug)
    assert drop is not None, slug
    return drop.owner


@dataclass(frozen=True)
class Owners:
    """Two store tokens on one app."""

    alice: str
    bob: str


def two_owners(app: Flask) -> Owners:
    service = service_of(app)
    return Owners(create_token(service, "alice"), create_token(service, "bob"))


@pytest.fixture
def owners(app: Flask) -> Owners:
    return two_owners(app)


def listing(client: Any, token: str, **params: str) -> dict[str, Any]:
    response = client.get("/api/drops", headers=bearer(token), query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"total", "page", "page_size", "drops"}
    for drop in body["drops"]:
        assert set(drop) == DROP_FIELDS
    return body


def listed_slugs(client: Any, token: str, **params: str) -> list[str]:
    return [drop["slug"] for drop in listing(client, token, **params)["drops"]]


def patch(client: Any, slug: str, body: Any, token: str | None, **kwargs: Any) -> TestResponse:
    headers = bearer(token) if token is not None else dict(JSON)
    return client.patch(f"/api/drops/{slug}", json=body, headers=headers, **kwargs)


def as_owner(client: Any, slug: str, token: str) -> dict[str, Any]:
    response = client.get(f"/api/drops/{slug}", headers=bearer(token))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()
