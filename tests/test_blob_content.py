"""A ``teledrop_commit_drop`` wrapper reads the published file through its ``content``
argument, whatever the storage: on local_storage and on s3_storage (a real SeaweedFS), for
a streamed and a resumable upload; and what it read is the drop's bytes."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from teledrop.core.config import Config
from teledrop.web.app import service_of
from tests.http_helpers import JSON, post_file, records
from tests.plugins.inspectors import ReadInChain
from tests.services.seaweedfs import S3Endpoint

#: more than one S3 part of 5 MiB, and not a multiple of any read size
DATA = bytes(range(251)) * (6 * 1024 * 1024 // 251 + 3)
TUS = {"Tus-Resumable": "1.0.0"}


def upload_both_ways(app: Flask) -> None:
    client = app.test_client()
    assert post_file(client, DATA, "a.bin", headers=JSON).status_code == 201
    meta = "filename " + base64.b64encode(b"b.bin").decode()
    url = client.post("/api/uploads", headers={**TUS, "Upload-Length": str(len(DATA)),
                                               "Upload-Metadata": meta}).headers["Location"]
    half = len(DATA) // 2
    for offset, piece in ((0, DATA[:half]), (half, DATA[half:])):
        response = client.patch(url, data=piece, headers={
            **TUS, "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset)})
        assert response.status_code == 204, response.data


def test_a_wrapper_reads_the_file_on_local_storage(make_app: Callable[..., Flask]) -> None:
    reader = ReadInChain()
    app = make_app([reader])
    upload_both_ways(app)
    assert sorted(reader.read) == sorted(d.blob_id for d in records(app))
    assert all(data == DATA for data in reader.read.values())


@pytest.mark.entry_points("s3_storage")
def test_a_wrapper_reads_the_file_on_s3_storage(make_app: Callable[..., Flask],
                                                make_config: Callable[..., Config],
                                                s3_server: S3Endpoint, s3_bucket: str) -> None:
    reader = ReadInChain()
    table: dict[str, Any] = s3_server.storage_settings(s3_bucket, part_size="5MiB")
    app = make_app([reader], config=make_config(storage={"plugin": "s3_storage"},
                                                plugins={"s3_storage": table}))
    assert type(service_of(app).storage).__module__.startswith("teledrop_s3_storage")
    client = app.test_client()
    assert post_file(client, DATA, "a.bin", headers=JSON).status_code == 201
    (drop,) = records(app)
    assert reader.read == {drop.blob_id: DATA}
