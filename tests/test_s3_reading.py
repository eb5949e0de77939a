"""The S3 storage's traffic on a real SeaweedFS: reading an object back in exact ranges,
read ahead; a GetObject that fails after the HeadObject of ``open`` raising while a
download can still answer a clean error; and bodies sent unsigned in signed requests."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from teledrop.core.errors import BlobMissing, StorageUnavailable
from teledrop_s3_storage import S3Storage, S3StorageSettings
from teledrop_s3_storage.parts import MIB
from tests.live_server import wait_until
from tests.services.seaweedfs import S3Endpoint, SeaweedFS

SIZE = 6 * MIB


def make_storage(endpoint: S3Endpoint, bucket: str) -> S3Storage:
    return S3Storage(S3StorageSettings(**endpoint.storage_settings(bucket, part_size=5 * MIB)))


@pytest.fixture
def storage(s3_server: S3Endpoint, s3_bucket: str) -> Iterator[S3Storage]:
    store = make_storage(s3_server, s3_bucket)
    yield store
    store.close()


def published(storage: S3Storage, data: bytes) -> str:
    writer = storage.stage()
    writer.write(data)
    writer.publish()
    return writer.blob_id


class GetObjects:
    """What each GetObject sent and what S3 answered, seen on the client's own events."""

    def __init__(self, storage: S3Storage) -> None:
        self.ranges: list[str] = []
        self.lengths: list[int] = []
        events = storage.client.meta.events
        events.register("before-send.s3.GetObject", self._sent)
        events.register("after-call.s3.GetObject", self._answered)

    def _sent(self, request: Any, **_: Any) -> None:
        value = request.headers.get("Range")
        self.ranges.append(value.decode() if isinstance(value, bytes) else value)

    def _answered(self, parsed: dict[str, Any], **_: Any) -> None:
        self.lengths.append(parsed["ContentLength"])


def test_an_open_range_asks_s3_for_exactly_that_range(storage: S3Storage) -> None:
    data = bytes(range(256)) * (SIZE // 256)
    blob_id = published(storage, data)
    gets = GetObjects(storage)
    with storage.open(blob_id) as f:
        assert gets.ranges == []  # opening asks for no bytes
        f.open_range(5 * MIB - 7, 5 * MIB + 93)
        assert gets.ranges == [f"bytes={5 * MIB - 7}-{5 * MIB + 92}"]  # asked before reading
        assert f.read(60) + f.read() == data[5 * MIB - 7:5 * MIB + 93]
        assert f.read(1) == b""  # the range is served: nothing past it is asked for
        assert f.tell() == 5 * MIB + 93
    assert gets.ranges == [f"bytes={5 * MIB - 7}-{5 * MIB + 92}"]
    assert gets.lengths == [100]  # S3 sent the range and not a byte more


def test_a_seek_after_a_range_reads_on_to_the_end(storage: S3Storage) -> None:
    data = bytes(range(256)) * 40
    blob_id = published(storage, data)
    gets = GetObjects(storage)
    with storage.open(blob_id) as f:
        f.open_range(0, 10)
        assert f.read() == data[:10]
        f.seek(20)
        assert f.read() == data[20:]
        f.open_range(len(data), len(data))  # an empty range asks for nothing
        assert f.read() == b""
    assert gets.ranges == ["bytes=0-9", f"bytes=20-{len(data) - 1}"]
    assert gets.lengths == [10, len(data) - 20]


def test_a_range_outside_the_file_is_refused(storage: S3Storage) -> None:
    blob_id = published(storage, b"0123456789")
    with storage.open(blob_id) as f:
        for start, stop in ((-1, 3), (4, 3), (0, 11)):
            with pytest.raises(ValueError):
                f.open_range(start, stop)


def test_an_object_deleted_after_open_raises_missing_at_open_range(
        storage: S3Storage, s3_server: S3Endpoint, s3_bucket: str) -> None:
    blob_id = published(storage, b"soon gone" * 1000)
    with storage.open(blob_id) as f:  # HeadObject found it
        s3_server.client().delete_object(Bucket=s3_bucket, Key=storage.key(blob_id))
        with pytest.raises(BlobMissing):
            f.open_range(0, f.size)  # GetObject did not: raised before any byte was read
        assert f.tell() == 0


@pytest.fixture
def own_storage(seaweedfs: SeaweedFS) -> Iterator[S3Storage]:
    """A storage on the SeaweedFS this session may stop."""
    bucket = f"teledrop-test-{uuid.uuid4().hex[:16]}"
    seaweedfs.endpoint.client().create_bucket(Bucket=bucket)
    store = make_storage(seaweedfs.endpoint, bucket)
    yield store
    store.close()


def test_a_store_gone_after_open_raises_unavailable_at_open_range(
        own_storage: S3Storage, seaweedfs: SeaweedFS) -> None:
    blob_id = published(own_storage, b"kept" * 1000)
    with own_storage.open(blob_id) as f:
        with seaweedfs.stopped():
            with pytest.raises(StorageUnavailable) as raised:
                f.open_range(100, 200)
            assert not isinstance(raised.value, BlobMissing)
            assert raised.value.status == 503
        f.open_range(100, 200)  # back: the same file opens it now
        assert f.read() == (b"kept" * 1000)[100:200]


def reading_ahead() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "s3-read"]


def test_a_long_stream_is_read_ahead_and_a_close_halfway_stops_it(storage: S3Storage) -> None:
    data = bytes(range(256)) * (SIZE // 256)
    blob_id = published(storage, data)
    assert reading_ahead() == []
    with storage.open(blob_id) as f:
        f.open_range(10, SIZE - 10)
        assert f.read(1000) == data[10:1010]
        assert len(reading_ahead()) == 1  # S3 is read while the caller sends
        assert f.read(300_000) == data[1010:301_010]  # across the chunks read ahead
    assert wait_until(lambda: reading_ahead() == [], 10)  # closed: the thread is gone
    with storage.open(blob_id) as f:
        assert f.read() == data
        f.open_range(0, 1000)  # a short stream is read directly
        assert reading_ahead() == []
        assert f.read() == data[:1000]


def test_a_store_gone_mid_stream_fails_the_read_instead_of_hanging(
        own_storage: S3Storage, seaweedfs: SeaweedFS) -> None:
    data = bytes(range(256)) * (32 * MIB // 256)
    blob_id = published(own_storage, data)
    with own_storage.open(blob_id) as f:
        f.open_range(0, len(data))
        assert f.read(1000) == data[:1000]
        with seaweedfs.stopped():
            with pytest.raises(StorageUnavailable):
                while f.read(256 * 1024):  # what was read ahead, then the failure
                    pass
    assert reading_ahead() == []


def test_bodies_go_unsigned_in_signed_requests(storage: S3Storage) -> None:
    """Parts and small files are sent as UNSIGNED-PAYLOAD (no SHA-256 of each body on the
    thread an upload waits for), in requests still signed with the storage's key."""
    sent: list[tuple[str, str, str]] = []

    def note(request: Any, event_name: str, **_: Any) -> None:
        headers = {k: v.decode() if isinstance(v, bytes) else v
                   for k, v in request.headers.items()}
        sent.append((event_name.rsplit(".", 1)[-1], headers["X-Amz-Content-SHA256"],
                     headers["Authorization"]))

    for operation in ("UploadPart", "PutObject"):
        storage.client.meta.events.register(f"before-send.s3.{operation}", note)
    big = storage.stage()
    big.write(b"b" * (5 * MIB + 1))
    big.publish()
    small = storage.stage()
    small.write(b"small")
    small.publish()
    assert [operation for operation, _, _ in sent] == ["UploadPart", "UploadPart", "PutObject"]
    assert {payload for _, payload, _ in sent} == {"UNSIGNED-PAYLOAD"}
    assert all(auth.startswith("AWS4-HMAC-SHA256 Credential=") for _, _, auth in sent)
    with storage.open(big.blob_id) as f:
        assert f.read() == b"b" * (5 * MIB + 1)
