"""A slug freed and taken again between teledrop's read of a drop and its write (another
host deleted the drop and an upload took its custom slug meanwhile) is never hit: deleting
and editing name the blob they read, and the store acts only on that drop."""

from __future__ import annotations

import dataclasses

import pytest
from flask import Flask

from teledrop.core.drop import Drop
from teledrop.core.owners import create_token
from teledrop.testing import sample_drop
from teledrop.web.app import service_of
from tests.http_helpers import JSON, upload
from tests.plugins.memory import MemoryMetadata, MemoryPlugin
from tests.support.owners import bearer, owner_upload, patch


def retake_after_read(metadata: MemoryMetadata, monkeypatch: pytest.MonkeyPatch, slug: str,
                      owner: str | None) -> Drop:
    """The next read of ``slug`` sees the drop as it is; right after it, another host
    deletes that drop and a new one (same owner: only the blob tells them apart) takes the
    slug. :returns: the newcomer, as stored."""
    newcomer = sample_drop(slug=slug, owner=owner, title="the newcomer")
    real_get = metadata.get

    def get(wanted: str) -> Drop | None:
        drop = real_get(wanted)
        if wanted == slug:
            monkeypatch.setattr(metadata, "get", real_get)
            metadata.delete(slug)
            metadata.insert(newcomer)
        return drop

    monkeypatch.setattr(metadata, "get", get)
    return dataclasses.replace(newcomer, delete_token=None)


@pytest.fixture
def alice(memory_app: Flask) -> str:
    return create_token(service_of(memory_app), "alice")


def test_a_delete_by_token_leaves_the_drop_that_took_the_slug(
        memory_app: Flask, memory: MemoryPlugin, monkeypatch: pytest.MonkeyPatch) -> None:
    client = memory_app.test_client()
    created = upload(client, b"first", slug="taken-again")
    newcomer = retake_after_read(memory.metadata, monkeypatch, "taken-again", None)
    response = client.delete("/taken-again",
                             headers={"X-Delete-Token": created["delete_token"], **JSON})
    assert response.status_code == 404
    assert memory.metadata.get("taken-again") == newcomer


OWNER_WRITES = {
    "delete": lambda client, token: client.delete("/taken-again", headers=bearer(token)),
    "edit": lambda client, token: patch(client, "taken-again",
                                        {"title": "meant for the first", "private": True}, token),
}


@pytest.mark.parametrize("write", list(OWNER_WRITES))
def test_an_owners_write_leaves_the_drop_that_took_the_slug(
        memory_app: Flask, memory: MemoryPlugin, alice: str, write: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    client = memory_app.test_client()
    owner_upload(client, alice, b"first", slug="taken-again")
    newcomer = retake_after_read(memory.metadata, monkeypatch, "taken-again", "alice")
    assert OWNER_WRITES[write](client, alice).status_code == 404
    assert memory.metadata.get("taken-again") == newcomer


def test_without_a_race_the_same_requests_succeed(memory_app: Flask, alice: str) -> None:
    client = memory_app.test_client()
    owner_upload(client, alice, b"first", slug="not-raced")
    edit = patch(client, "not-raced", {"title": "edited"}, alice)
    assert edit.status_code == 200 and edit.get_json()["title"] == "edited"
    assert client.delete("/not-raced", headers=bearer(alice)).status_code == 204
