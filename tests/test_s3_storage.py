"""The S3 storage against a real S3 server (SeaweedFS unless TELEDROP_TEST_S3_ENDPOINT)."""

from __future__ import annotations

import io
import os
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from teledrop_s3_storage import S3Storage
from teledrop_s3_storage.parts import (
    MAX_PART_SIZE,
    MAX_PARTS,
    MIB,
    capacity,
    initial_part_size,
    part_size,
)

from teledrop.core.errors import BlobMissing, StorageUnavailable, TooLarge
from teledrop.testing import ResumableStagingContract, StorageContract
from tests.live_server import wait_until
from tests.services.seaweedfs import S3Endpoint, SeaweedFS
from tests.support.s3 import (  # noqa: F401 (own_storage is a fixture)
    make_storage,
    objects_of,
    own_storage,
    pattern,
    uploads_of,
)


@pytest.fixture
def storage(s3_server: S3Endpoint, s3_bucket: str) -> Iterator[S3Storage]:
    store = make_storage(s3_server, s3_bucket, part_size=5 * MIB)
    yield store
    store.close()


class TestS3Storage(StorageContract):
    @pytest.fixture
    def storage(self, storage: S3Storage) -> S3Storage:
        return storage


class TestS3StorageResumable(ResumableStagingContract):
    @pytest.fixture
    def storage(self, storage: S3Storage) -> S3Storage:
        return storage


# -- helpers -------------------------------------------------------------------------------







def write_all(writer: Any, data: bytes, chunk: int = 256 * 1024) -> None:
    view = memoryview(data)
    for start in range(0, len(data), chunk):
        writer.write(view[start:start + chunk])


# -- publishing: multipart, one PutObject, nothing visible before --------------------------

def test_a_file_of_several_parts_is_one_multipart_upload_completed_at_publish(
        storage: S3Storage, s3_server: S3Endpoint, s3_bucket: str) -> None:
    client = s3_server.client()
    data = pattern(12 * MIB)  # parts of 5, 5 and 2 MiB
    writer = storage.stage()
    write_all(writer, data)
    (upload,) = uploads_of(client, s3_bucket)
    assert upload["Key"] == f"blobs/{writer.blob_id}"
    assert objects_of(client, s3_bucket) == []  # nothing visible before publish
    writer.publish()
    head = client.head_object(Bucket=s3_bucket, Key=f"blobs/{writer.blob_id}")
    assert head["ETag"].endswith('-3"')  # S3's mark of a three-part object
    assert head["ContentLength"] == len(data)
    assert uploads_of(client, s3_bucket) == []
    with storage.open(writer.blob_id) as f:
        assert f.read() == data


def test_a_file_below_one_part_is_one_put_at_publish(
        storage: S3Storage, s3_server: S3Endpoint, s3_bucket: str) -> None:
    client = s3_server.client()
    data = pattern(5 * MIB - 1)
    writer = storage.stage()
    write_all(writer, data)
    assert uploads_of(client, s3_bucket) == []
    assert objects_of(client, s3_bucket) == []
    writer.publish()
    head = client.head_object(Bucket=s3_bucket, Key=f"blobs/{writer.blob_id}")
    assert "-" not in head["ETag"]  # a plain PutObject's ETag is the MD5 alone
    assert head["ContentLength"] == len(data)
    assert uploads_of(client, s3_bucket) == []


def test_a_file_of_exactly_one_part_round_trips(storage: S3Storage) -> None:
    data = pattern(5 * MIB)
    writer = storage.stage()
    writer.write(data)
    writer.publish()
    with storage.open(writer.blob_id) as f:
        assert f.read() == data


@pytest.mark.parametrize("finish", ["discard", "close"])
def test_an_unpublished_multipart_upload_is_aborted(
        storage: S3Storage, s3_server: S3Endpoint, s3_bucket: str, finish: str) -> None:
    client = s3_server.client()
    writer = storage.stage()
    write_all(writer, pattern(11 * MIB))  # two parts sent, a third one filling
    assert len(uploads_of(client, s3_bucket)) == 1
    getattr(writer, finish)()
    assert uploads_of(client, s3_bucket) == []
    assert objects_of(client, s3_bucket) == []


def test_discard_after_a_multipart_publish_deletes_the_object(
        storage: S3Storage, s3_server: S3Endpoint, s3_bucket: str) -> None:
    client = s3_server.client()
    writer = storage.stage()
    write_all(writer, pattern(6 * MIB))
    writer.publish()
    writer.discard()
    assert objects_of(client, s3_bucket) == []
    assert uploads_of(client, s3_bucket) == []


def test_the_prefix_is_where_every_key_goes(
        s3_server: S3Endpoint, s3_bucket: str) -> None:
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="blobs/" + "a" * 32, Body=b"not ours")
    store = make_storage(s3_server, s3_bucket, prefix="drops/", part_size=5 * MIB)
    try:
        small, large = store.stage(), store.stage()
        small.write(b"small")
        small.publish()
        write_all(large, pattern(6 * MIB))
        assert {u["Key"] for u in uploads_of(client, s3_bucket)} == \
            {f"drops/blobs/{large.blob_id}"}
        assert {item.name.split(".")[0] for item in store.list_staging()} == {large.blob_id}
        large.publish()
        assert set(objects_of(client, s3_bucket)) == {
            "blobs/" + "a" * 32, f"drops/blobs/{small.blob_id}", f"drops/blobs/{large.blob_id}"}
        assert {item.name for item in store.list_blobs()} == {small.blob_id, large.blob_id}
    finally:
        store.close()


# -- part sizes ------------------------------------------------------------------------------

def parts_needed(base: int, size: int) -> int:
    """How many parts a writer that started with ``base`` uses for ``size`` bytes."""
    number, stored = 0, 0
    while stored < size:
        number += 1
        stored += part_size(base, number)
    return number


def test_the_part_size_is_the_configured_one_without_a_hint_or_for_small_files() -> None:
    assert initial_part_size(16 * MIB, None) == 16 * MIB
    assert initial_part_size(16 * MIB, 0) == 16 * MIB
    assert initial_part_size(16 * MIB, 10 * 1024**3) == 16 * MIB
    assert initial_part_size(16 * MIB, 16 * MIB * MAX_PARTS) == 16 * MIB


def test_the_part_size_grows_so_a_declared_size_fits_in_the_part_limit() -> None:
    one_tib = 1024**4
    grown = initial_part_size(16 * MIB, one_tib)
    assert grown > 16 * MIB and grown % MIB == 0
    assert grown * MAX_PARTS >= one_tib
    assert (grown - MIB) * MAX_PARTS < one_tib  # no larger than it must be
    assert initial_part_size(16 * MIB, 16 * MIB * MAX_PARTS + 1) == 17 * MIB
    for size in (200 * 1024**3, one_tib, 5 * one_tib, 5 * one_tib - 1):
        assert parts_needed(initial_part_size(5 * MIB, size), size) <= MAX_PARTS
    assert initial_part_size(5 * MIB, 100 * one_tib) == MAX_PART_SIZE  # S3's largest part


def test_without_a_hint_parts_grow_near_the_limit_and_never_past_it() -> None:
    base = 16 * MIB
    assert [part_size(base, n) for n in (1, 5000, 9000)] == [base] * 3
    assert part_size(base, 9001) == 2 * base
    assert part_size(base, 9101) == 4 * base
    assert all(part_size(base, n) <= part_size(base, n + 1) for n in range(1, MAX_PARTS))
    assert part_size(base, MAX_PARTS) == MAX_PART_SIZE
    # 16 MiB parts alone would stop at 156 GiB; growing, the writer takes over 1 TiB
    assert capacity(base) > 1024**4
    assert parts_needed(base, capacity(base)) == MAX_PARTS


def test_a_file_past_the_last_part_is_refused_and_leaves_nothing(
        storage: S3Storage, s3_server: S3Endpoint, s3_bucket: str) -> None:
    client = s3_server.client()
    storage.max_parts = 2  # S3 has 10,000; the writer counts the same way
    writer = storage.stage()
    write_all(writer, pattern(10 * MIB))  # parts 1 and 2, full
    with pytest.raises(TooLarge):
        writer.write(b"one byte too many")
    writer.close()
    assert uploads_of(client, s3_bucket) == []
    assert objects_of(client, s3_bucket) == []


def test_an_upload_of_exactly_the_last_part_completes(storage: S3Storage) -> None:
    storage.max_parts = 2
    data = pattern(10 * MIB)
    writer = storage.stage()
    write_all(writer, data)
    writer.publish()
    with storage.open(writer.blob_id) as f:
        assert f.read() == data


def test_a_size_hint_grows_the_parts(
        storage: S3Storage, s3_server: S3Endpoint, s3_bucket: str) -> None:
    client = s3_server.client()
    storage.max_parts = 2
    data = pattern(14 * MIB)
    writer = storage.stage(size_hint=len(data))  # two parts of 7 MiB
    write_all(writer, data)
    writer.publish()
    head = client.head_object(Bucket=s3_bucket, Key=f"blobs/{writer.blob_id}", PartNumber=1)
    assert head["ContentLength"] == 7 * MIB
    with storage.open(writer.blob_id) as f:
        assert f.read() == data


# -- memory ----------------------------------------------------------------------------------

def test_memory_is_two_part_buffers_whatever_the_file_size(storage: S3Storage) -> None:
    chunk = bytearray(pattern(256 * 1024))
    storage.check()  # builds the client: its models are loaded once per process
    writer = storage.stage()
    tracemalloc.start()
    try:
        for _ in range(64 * 4):  # 64 MiB: 13 parts of 5 MiB
            writer.write(chunk)
        writer.publish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * 5 * MIB, f"peak {peak / MIB:.1f} MiB"
    with storage.open(writer.blob_id) as f:
        assert f.seek(0, io.SEEK_END) == 64 * MIB


# -- reading -----------------------------------------------------------------------------------

def sent_ranges(storage: S3Storage) -> list[str | None]:
    """The Range header of every GetObject the storage's client sends from now on."""
    ranges: list[str | None] = []

    def note(request: Any, **_: Any) -> None:
        value = request.headers.get("Range")
        ranges.append(value.decode() if isinstance(value, bytes) else value)

    storage.client.meta.events.register("before-send.s3.GetObject", note)
    return ranges


def test_open_seeks_by_asking_s3_for_a_range(storage: S3Storage) -> None:
    data = pattern(12 * MIB)
    writer = storage.stage()
    write_all(writer, data)
    writer.publish()
    ranges = sent_ranges(storage)
    with storage.open(writer.blob_id) as f:
        assert ranges == []  # opening reads nothing
        assert f.seekable() and f.readable()
        with pytest.raises(io.UnsupportedOperation):
            f.fileno()
        assert f.seek(5 * MIB - 10) == 5 * MIB - 10
        assert f.read(20) == data[5 * MIB - 10:5 * MIB + 10]  # across two parts
        assert f.read(5) == data[5 * MIB + 10:5 * MIB + 15]  # the same stream goes on
        assert f.tell() == 5 * MIB + 15
        assert ranges == [f"bytes={5 * MIB - 10}-{12 * MIB - 1}"]  # to the end, exactly
        f.seek(-3, io.SEEK_END)
        assert f.read() == data[-3:]
        assert f.read(1) == b""
        f.seek(0)
        assert f.read(256 * 1024) == data[:256 * 1024]
    assert ranges == [f"bytes={5 * MIB - 10}-{12 * MIB - 1}", f"bytes={12 * MIB - 3}-{12 * MIB - 1}",
                      f"bytes=0-{12 * MIB - 1}"]


def test_an_empty_blob_reads_without_asking_for_a_range(storage: S3Storage) -> None:
    writer = storage.stage()
    writer.publish()
    ranges = sent_ranges(storage)
    with storage.open(writer.blob_id) as f:
        assert f.read() == b""
    assert ranges == []


# -- errors ------------------------------------------------------------------------------------

def test_a_missing_object_is_blob_missing(storage: S3Storage) -> None:
    with pytest.raises(BlobMissing):
        storage.open("0" * 32)
    with pytest.raises(BlobMissing):
        storage.open("../etc/passwd")


def test_a_blob_deleted_while_open_fails_its_read_as_missing(storage: S3Storage) -> None:
    writer = storage.stage()
    writer.write(b"soon gone")
    writer.publish()
    with storage.open(writer.blob_id) as f:
        storage.delete(writer.blob_id)
        with pytest.raises(BlobMissing):
            f.read()




def test_a_stopped_server_is_storage_unavailable(own_storage: S3Storage,
                                                 seaweedfs: SeaweedFS) -> None:
    writer = own_storage.stage()
    writer.write(b"kept")
    writer.publish()
    with seaweedfs.stopped():
        for call in (own_storage.check, lambda: own_storage.open(writer.blob_id),
                     lambda: own_storage.delete(writer.blob_id),
                     lambda: list(own_storage.list_blobs()),
                     lambda: list(own_storage.list_staging())):
            with pytest.raises(StorageUnavailable) as raised:
                call()
            assert not isinstance(raised.value, BlobMissing)
            assert raised.value.status == 503
        small = own_storage.stage()
        small.write(b"never stored")
        with pytest.raises(StorageUnavailable):
            small.publish()
    own_storage.check()  # back by itself: no new client, no restart
    with own_storage.open(writer.blob_id) as f:
        assert f.read() == b"kept"
    assert own_storage.list_blobs and writer.blob_id in {i.name for i in own_storage.list_blobs()}
    assert small.blob_id not in {i.name for i in own_storage.list_blobs()}


def test_a_part_that_fails_in_the_background_fails_the_upload(
        own_storage: S3Storage, seaweedfs: SeaweedFS) -> None:
    client = seaweedfs.endpoint.client()
    writer = own_storage.stage()
    write_all(writer, pattern(5 * MIB))  # the upload is started, part 1 on its way

    def part_one_stored() -> bool:
        return bool(client.list_parts(Bucket=own_storage.bucket, Key=writer.key,
                                      UploadId=writer.upload_id).get("Parts"))

    assert wait_until(part_one_stored, 30)
    with seaweedfs.stopped():
        write_all(writer, pattern(5 * MIB))  # part 2 goes to a server that is down
        with pytest.raises(StorageUnavailable):
            # the failure shows at the latest at publish, never as a published blob
            for _ in range(200):
                writer.write(b"x" * 1024)
                time.sleep(0.05)
            writer.publish()
        with pytest.raises(StorageUnavailable):
            writer.write(b"more")  # the writer is done
        writer.close()
    # The abort could not reach the server: the upload is debris that gc removes.
    (debris,) = [item for item in own_storage.list_staging()
                 if item.name.startswith(writer.blob_id)]
    own_storage.remove_staging(debris.name)
    assert list(own_storage.list_staging()) == []
    assert list(own_storage.list_blobs()) == []


# -- processes ---------------------------------------------------------------------------------

def test_a_forked_process_builds_its_own_client(storage: S3Storage) -> None:
    """As a gunicorn worker does: the parent's client (and its pooled connections) is
    never used by the child."""
    parent_client = storage.client
    first = storage.stage()
    first.write(b"from the parent")
    first.publish()  # the parent's pool holds a connection now
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        status = 1
        try:
            if storage.client is not parent_client:
                child = storage.stage()
                write_all(child, pattern(6 * MIB))
                child.publish()
                with storage.open(first.blob_id) as f:
                    status = 0 if f.read() == b"from the parent" else 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert storage.client is parent_client
    with storage.open(first.blob_id) as f:
        assert f.read() == b"from the parent"
    assert len(list(storage.list_blobs())) == 2


# -- the test server itself ----------------------------------------------------------------------

def test_the_test_server_refuses_unsigned_and_wrongly_signed_requests(
        s3_server: S3Endpoint, s3_bucket: str) -> None:
    assert requests.get(f"{s3_server.url}/{s3_bucket}/", timeout=10).status_code == 403
    wrong = S3Endpoint(s3_server.url, s3_server.access_key, "not-the-secret")
    with pytest.raises(ClientError) as raised:
        wrong.client().list_objects_v2(Bucket=s3_bucket)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_seaweedfs_stops_and_starts_again_on_its_ports_and_data(seaweedfs: SeaweedFS) -> None:
    client = seaweedfs.endpoint.client()
    bucket = f"teledrop-test-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="kept", Body=b"across a restart")
    upload = client.create_multipart_upload(Bucket=bucket, Key="in-progress")
    ports = dict(seaweedfs.ports)
    with seaweedfs.stopped():
        assert not seaweedfs.running
        with pytest.raises(requests.ConnectionError):
            requests.get(seaweedfs.endpoint.url, timeout=5)
    assert seaweedfs.running and seaweedfs.ports == ports
    assert client.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"across a restart"
    assert [u["UploadId"] for u in client.list_multipart_uploads(Bucket=bucket)["Uploads"]] == \
        [upload["UploadId"]]
    assert all(seconds < 30 for seconds in seaweedfs.start_times), seaweedfs.start_times


def test_a_part_shipped_while_the_storage_shuts_down_is_storage_unavailable(
        s3_server: S3Endpoint, s3_bucket: str) -> None:
    """A worker stopping closes its storage while an upload may still be filling a part:
    that upload fails as a 503, never with the thread pool's own RuntimeError."""
    store = make_storage(s3_server, s3_bucket, part_size=5 * MIB)
    writer = store.stage()
    writer.write(pattern(MIB))
    store._connection.get().uploads.shutdown()  # the close racing this upload, made certain
    with pytest.raises(StorageUnavailable, match="shutting down"):
        write_all(writer, pattern(5 * MIB))
    writer.close()
    assert uploads_of(s3_server.client(), s3_bucket) == []
