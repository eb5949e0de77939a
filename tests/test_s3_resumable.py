"""Resumable staging on S3 against a real S3 server (SeaweedFS), looked at from the bucket
with boto3: full parts go to the final key's multipart upload and are named in the resume
state (never read from listings), the bytes past them are a tail object, gc's sweep of
stale multipart uploads never touches a resumable blob's, and removing one leaves nothing.
The contract itself runs in test_s3_storage.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from teledrop_s3_storage import S3Storage
from teledrop_s3_storage.parts import MIB
from teledrop_s3_storage.resumable import Staged

from teledrop.core.errors import BlobMissing, StorageUnavailable
from tests.services.seaweedfs import S3Endpoint, SeaweedFS
from tests.support.s3 import (  # noqa: F401 (own_storage is a fixture)
    make_storage,
    objects_of,
    own_storage,
    pattern,
    uploads_of,
)

PART = 5 * MIB


@pytest.fixture
def storage(s3_server: S3Endpoint, s3_bucket: str) -> Iterator[S3Storage]:
    store = make_storage(s3_server, s3_bucket, part_size=PART, prefix="p/")
    yield store
    store.close()


@pytest.fixture
def client(s3_server: S3Endpoint) -> Iterator[Any]:
    made = s3_server.client()
    yield made
    made.close()


def staged(storage: S3Storage, data: bytes) -> tuple[str, str]:
    writer = storage.stage_resumable(size_hint=len(data))
    writer.write(data)
    state = writer.sync()
    writer.close()
    return writer.blob_id, state


def test_full_parts_go_to_the_final_key_and_the_rest_is_a_tail(
        storage: S3Storage, client: Any, s3_bucket: str) -> None:
    data = pattern(2 * PART + 123)
    blob_id, state = staged(storage, data)
    recorded = Staged.loads(state)
    assert [size for size, _ in recorded.parts] == [PART, PART]
    (upload,) = uploads_of(client, s3_bucket)
    assert upload["Key"] == f"p/blobs/{blob_id}" and upload["UploadId"] == recorded.upload_id
    listed = client.list_parts(Bucket=s3_bucket, Key=upload["Key"],
                               UploadId=recorded.upload_id)["Parts"]
    assert [(p["Size"], p["ETag"]) for p in listed] == recorded.parts
    tail = f"p/resumable/{blob_id}/{len(data)}"
    # nothing under blobs/ yet; the tail of the record before stays until the next resume
    assert sorted(objects_of(client, s3_bucket)) == [f"p/resumable/{blob_id}/0", tail]
    assert client.get_object(Bucket=s3_bucket, Key=tail)["Body"].read() == data[2 * PART:]
    storage.remove_resumable(blob_id, state)


def test_a_resume_reads_the_tail_back_and_fills_its_part(
        storage: S3Storage, client: Any, s3_bucket: str) -> None:
    data = pattern(3 * PART)
    blob_id, state = staged(storage, data[:PART + 1000])
    writer = storage.resume(blob_id, state, PART + 1000)
    writer.write(data[PART + 1000:2 * PART + 10])
    state = writer.sync()
    writer.close()
    recorded = Staged.loads(state)
    assert [size for size, _ in recorded.parts] == [PART, PART]
    # the creation's tail went when the upload was resumed; the new one holds 10 bytes
    assert sorted(objects_of(client, s3_bucket)) == [
        f"p/resumable/{blob_id}/{2 * PART + 10}", f"p/resumable/{blob_id}/{PART + 1000}"]
    assert client.get_object(Bucket=s3_bucket, Key=f"p/resumable/{blob_id}/{2 * PART + 10}",
                             )["Body"].read() == data[2 * PART:2 * PART + 10]
    writer = storage.resume(blob_id, state, 2 * PART + 10)
    writer.write(data[2 * PART + 10:])
    writer.publish()
    head = client.head_object(Bucket=s3_bucket, Key=f"p/blobs/{blob_id}")
    assert head["ETag"].endswith('-3"') and head["ContentLength"] == len(data)
    with storage.open(blob_id) as f:
        assert f.read() == data
    assert objects_of(client, s3_bucket) == [f"p/blobs/{blob_id}"]
    assert uploads_of(client, s3_bucket) == []


def test_the_last_sync_makes_the_tail_the_last_part(
        storage: S3Storage, client: Any, s3_bucket: str) -> None:
    data = pattern(PART + 4321)
    writer = storage.stage_resumable(size_hint=len(data))
    writer.write(data)
    recorded = Staged.loads(writer.sync(final=True))
    assert [size for size, _ in recorded.parts] == [PART, 4321]
    assert objects_of(client, s3_bucket) == [f"p/resumable/{writer.blob_id}/0"]
    writer.publish()
    assert objects_of(client, s3_bucket) == [f"p/blobs/{writer.blob_id}"]


def test_staged_bytes_in_parts_cannot_be_read_back(storage: S3Storage) -> None:
    """Parts of a multipart upload in progress are not readable on S3: teledrop hashes
    such a blob once published."""
    blob_id, state = staged(storage, pattern(PART + 10))
    assert storage.read_staged(blob_id, state, PART + 10) is None
    small_id, small_state = staged(storage, pattern(1000))
    with storage.read_staged(small_id, small_state, 600) as f:
        assert f.read() == pattern(600)
    for removed in ((blob_id, state), (small_id, small_state)):
        storage.remove_resumable(*removed)


def test_the_stale_multipart_sweep_never_lists_a_resumable_blob(
        storage: S3Storage, client: Any, s3_bucket: str) -> None:
    blob_id, state = staged(storage, pattern(PART + 1))
    streamed = storage.stage()
    streamed.write(pattern(PART + 1))  # a streamed upload's multipart upload
    listed = [item.name for item in storage.list_staging()]
    assert len(listed) == 1 and listed[0].startswith(streamed.blob_id)
    assert blob_id not in {item.name for item in storage.list_staging()}
    assert [item.name for item in storage.list_resumable()] == [blob_id]
    streamed.discard()
    storage.remove_resumable(blob_id, state)


def test_removal_aborts_every_upload_on_the_key_and_deletes_every_tail(
        storage: S3Storage, client: Any, s3_bucket: str) -> None:
    """A host killed after starting a request's parts or tails, before recording them,
    leaves more than its record names: removal takes all of it, and so does removal with
    no record at all (gc of a blob no upload names)."""
    for state_known in (True, False):
        blob_id, state = staged(storage, pattern(PART + 1))
        client.create_multipart_upload(Bucket=s3_bucket, Key=f"p/blobs/{blob_id}")
        doomed = storage.resume(blob_id, state, PART + 1)
        doomed.write(pattern(2 * PART))
        doomed.sync()  # a tail never recorded
        doomed.close()
        storage.remove_resumable(blob_id, state if state_known else "")
        assert objects_of(client, s3_bucket) == [] and uploads_of(client, s3_bucket) == []
        with pytest.raises(BlobMissing):
            storage.resume(blob_id, state, PART + 1)


def test_a_state_that_is_not_this_storage_s_is_blob_missing(storage: S3Storage) -> None:
    blob_id, state = staged(storage, b"x")
    for wrong in ("", "synced 1", '{"part_size": 1}'):
        with pytest.raises(BlobMissing):
            storage.resume(blob_id, wrong, 1)
    storage.remove_resumable(blob_id, state)


def test_a_resume_inside_a_part_already_sent_is_blob_missing(storage: S3Storage) -> None:
    blob_id, state = staged(storage, pattern(PART + 10))
    with pytest.raises(BlobMissing):
        storage.resume(blob_id, state, PART - 1)  # that part's bytes cannot be had again
    writer = storage.resume(blob_id, state, PART)  # a part's end is fine
    assert writer.offset == PART
    writer.discard()


def test_a_part_that_fails_keeps_its_bytes_until_the_store_is_back(
        own_storage: S3Storage, seaweedfs: SeaweedFS) -> None:  # noqa: F811
    """A part that cannot be uploaded stays in the buffer and in the offset: the sync
    after the object store is back keeps it as the tail, and the blob completes."""
    data = pattern(2 * PART + 99)
    writer = own_storage.stage_resumable(size_hint=len(data))
    writer.write(data[:3 * MIB])
    writer.sync()
    with seaweedfs.stopped():
        with pytest.raises(StorageUnavailable):
            writer.write(data[3 * MIB:6 * MIB])
        assert writer.offset == PART  # the part it could not send, not a byte more
        with pytest.raises(StorageUnavailable):
            writer.sync()
    state = writer.sync()
    writer.close()
    assert Staged.loads(state).parts == [] and Staged.loads(state).tail_length == PART
    writer = own_storage.resume(writer.blob_id, state, PART)
    writer.write(data[PART:])
    writer.publish()
    with own_storage.open(writer.blob_id) as f:
        assert f.read() == data
