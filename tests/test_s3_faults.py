"""What a client sees when the object store refuses to store (a real SeaweedFS with no room
left for a new bucket's volumes), and that nothing is left behind."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from teledrop.core.config import Config
from teledrop.core.errors import StorageFull, StorageUnavailable
from teledrop_s3_storage import S3Storage, S3StorageSettings
from teledrop_s3_storage.parts import MIB
from tests.http_helpers import put_file
from tests.services.seaweedfs import SeaweedFS

pytestmark = pytest.mark.entry_points("s3_storage")


class NoRoomSeaweedFS(SeaweedFS):
    """A volume server allowed one volume: the readiness probe's bucket takes it, and every
    other bucket (a collection of its own) gets none, so SeaweedFS refuses each write."""

    def command(self) -> list[str]:
        kept = [arg for arg in super().command()
                if not arg.startswith(("-volume.max=", "-master.volumeSizeLimitMB="))]
        return [*kept, "-volume.max=1", "-master.volumeSizeLimitMB=8"]


@pytest.fixture(scope="module")
def no_room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = NoRoomSeaweedFS(tmp_path_factory.mktemp("seaweedfs-no-room"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bucket(no_room: SeaweedFS) -> str:
    name = f"teledrop-test-{uuid.uuid4().hex[:16]}"
    no_room.endpoint.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def storage(no_room: SeaweedFS, bucket: str) -> Iterator[S3Storage]:
    store = S3Storage(S3StorageSettings(**no_room.endpoint.storage_settings(
        bucket, part_size=5 * MIB)))
    yield store
    store.close()


def left_in(server: SeaweedFS, bucket: str) -> dict[str, list[str]]:
    client = server.endpoint.client()
    return {"objects": [item["Key"] for item in
                        client.list_objects_v2(Bucket=bucket).get("Contents", [])],
            "uploads": [upload["Key"] for upload in
                        client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]}


NOTHING = {"objects": [], "uploads": []}


def refused(action: Callable[[], Any]) -> StorageUnavailable:
    with pytest.raises(StorageUnavailable) as raised:
        action()
    assert not isinstance(raised.value, StorageFull)  # SeaweedFS does not say it is full
    assert raised.value.status == 503
    assert "InternalError" in raised.value.message  # what the store answered, named
    return raised.value


def test_a_multipart_upload_the_store_refuses_is_503_and_aborted(
        storage: S3Storage, no_room: SeaweedFS, bucket: str) -> None:
    writer = storage.stage()

    def write_and_publish() -> None:
        for _ in range(3):
            writer.write(b"p" * (5 * MIB))
        writer.publish()

    error = refused(write_and_publish)
    assert "uploading part 1" in error.message  # the upload began: its first part failed
    writer.close()
    assert left_in(no_room, bucket) == NOTHING
    assert list(storage.list_staging()) == []


def test_a_small_file_the_store_refuses_is_503_and_leaves_nothing(
        storage: S3Storage, no_room: SeaweedFS, bucket: str) -> None:
    writer = storage.stage()
    writer.write(b"small")
    error = refused(writer.publish)
    assert "storing a file" in error.message
    assert left_in(no_room, bucket) == NOTHING
    assert list(storage.list_staging()) == []


@pytest.mark.parametrize("size", [100, 12 * MIB], ids=["one-put", "multipart"])
def test_an_upload_the_store_refuses_answers_503_naming_it(
        make_app: Callable[..., Flask], make_config: Callable[..., Config],
        no_room: SeaweedFS, bucket: str, size: int) -> None:
    table = no_room.endpoint.storage_settings(bucket, part_size="5MiB")
    app = make_app(config=make_config(storage={"plugin": "s3_storage"},
                                      plugins={"s3_storage": table}))
    response = put_file(app.test_client(), "/refused.bin", b"r" * size,
                        headers={"Accept": "application/json"})
    assert response.status_code == 503, response.data
    error = response.json["error"]
    assert error["code"] == "storage_unavailable"
    assert "InternalError" in error["message"]
    assert left_in(no_room, bucket) == NOTHING
