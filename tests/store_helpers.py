"""Putting drops and debris into a real app's store, for the gc and CLI tests."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

from flask import Flask

from teledrop.core.drop import Drop
from teledrop.core.service import Teledrop
from teledrop.web.app import service_of


def upload(app: Flask, data: bytes = b"payload", **query: Any) -> Drop:
    response = app.test_client().put("/f.bin", data=data, query_string=query,
                                     headers={"Accept": "application/json"})
    assert response.status_code == 201, response.data
    drop = service_of(app).metadata.get(response.json["slug"])
    assert drop is not None
    return drop


def download(app: Flask, drop: Drop) -> None:
    response = app.test_client().get(f"/{drop.slug}")
    assert response.status_code == 200
    response.close()


def blob_file(root: Path, blob_id: str) -> Path:
    return root / "blobs" / blob_id[:2] / blob_id


def aged(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def debris(root: Path, seconds_old: float) -> Path:
    """A staging file as a killed worker leaves it."""
    path = root / "staging" / f"{uuid.uuid4().hex}.part"
    path.write_bytes(b"half an upload")
    return aged(path, seconds_old)


def orphan(service: Teledrop, root: Path, seconds_old: float) -> str:
    """A published blob without a record (its upload died between publish and insert)."""
    writer = service.storage.stage()
    writer.write(b"no record")
    writer.publish()
    aged(blob_file(root, writer.blob_id), seconds_old)
    return writer.blob_id
