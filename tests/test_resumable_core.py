"""Resumable uploads in teledrop/core/resumable.py, driven directly (no HTTP) on the default
backends (local_storage, sqlite_meta): every refusal of an ordinary upload at creation,
before a byte; appends at the recorded offset, hashed and counted, a cut one keeping every
byte it delivered; one request at a time per upload; completion through the same commit
chain as a streamed upload, its failure undoing everything; the hash rebuilt from the
staged bytes when this process lost its hasher; termination and gc leaving nothing."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from teledrop import hookimpl
from teledrop.core import gc, resumable
from teledrop.core.drop import now
from teledrop.core.errors import ClientDisconnected, ContentRefused, InvalidOption, \
    InvalidSlug, NotFound, OffsetMismatch, SlugTaken, StorageUnavailable, TooLarge, \
    Unauthorized, UploadIncomplete, UploadLocked
from teledrop.core.interfaces import UploadState
from teledrop.core.passwords import password_matches
from teledrop.core.service import Teledrop
from teledrop.core.upload import UploadRequest
from teledrop.web.app import service_of
from tests.http_helpers import blake3_hash
from tests.plugins.inspectors import Inspect
from tests.plugins.memory import MemoryPlugin

DATA = bytes(range(256)) * 4096  # 1 MiB


def meta(**values: str) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}"
                    for key, value in values.items())


def request(headers: dict[str, str] | None = None) -> UploadRequest:
    return UploadRequest(method="POST", headers=headers or {})


def staged_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "files" / "staging").iterdir())


def cut_after(data: bytes, size: int, piece: int = 64 * 1024) -> Iterator[bytes]:
    """The body of a client that vanishes after ``size`` bytes."""
    for start in range(0, size, piece):
        yield data[start:min(start + piece, size)]
    raise ClientDisconnected()


@pytest.fixture
def make_service(make_app: Callable[..., Flask]) -> Callable[..., Teledrop]:
    return lambda **sections: service_of(make_app(**sections))


def create(service: Teledrop, length: int | None = len(DATA), headers: dict[str, str] | None
           = None, **metadata: str) -> UploadState:
    return resumable.create_upload(service, request(headers), length,
                                   meta(filename="data.bin", **metadata))


# -- creation: every refusal before a byte -------------------------------------------------

def test_creation_records_the_upload_and_its_options(service: Teledrop) -> None:
    state = create(service, title="Quarterly", expires="2h", unknown="kept")
    stored = service.metadata.get_upload(state.id)
    assert stored == state and len(state.id) * 4 >= 128
    assert (state.offset, state.length, state.filename) == (0, len(DATA), "data.bin")
    assert state.expires_at - state.created_at == 24 * 3600
    assert "unknown" in state.metadata and state.lease_holder is None


@pytest.mark.parametrize("metadata, sections, error", [
    ({"password": "hunter2"}, {}, InvalidOption),
    ({"slug": "no spaces allowed"}, {}, InvalidSlug),
    ({"expires": "90d"}, {}, InvalidOption),
    ({"max_downloads": "none"}, {}, InvalidOption),
    ({"private": "yes"}, {}, InvalidOption),  # a private drop needs an owner
    ({}, {"limits": {"max_upload_size": "1KiB"}}, TooLarge),
    ({}, {"auth": {"require_token": True}}, Unauthorized),
])
def test_creation_refuses_what_an_ordinary_upload_refuses(
        make_service: Callable[..., Teledrop], data_dir: Path, metadata: dict[str, str],
        sections: dict[str, Any], error: type[Exception]) -> None:
    service = make_service(**sections)
    with pytest.raises(error):
        create(service, **metadata)
    assert staged_files(data_dir) == []


def test_a_taken_slug_is_refused_at_creation(service: Teledrop) -> None:
    first = create(service, slug="taken")
    resumable.append(service, first.id, 0, [DATA])
    with pytest.raises(SlugTaken):
        create(service, slug="taken")


def test_malformed_metadata_is_refused(service: Teledrop) -> None:
    for header in ("filename not-base64!", "a b c", "k dg==,k dg=="):
        with pytest.raises(InvalidOption):
            resumable.create_upload(service, request(), 1, header)


# -- appending and completing --------------------------------------------------------------

def test_one_append_completes_the_drop_like_a_streamed_upload(service: Teledrop) -> None:
    state = create(service, headers={"X-Drop-Password": "s3cret"}, title="T")
    progress = resumable.append(service, state.id, 0, [DATA[:1000], memoryview(DATA)[1000:]])
    drop = progress.drop
    assert drop is not None and drop.delete_token
    assert (drop.size, drop.hash, drop.filename, drop.title) == \
        (len(DATA), blake3_hash(DATA), "data.bin", "T")
    assert password_matches("s3cret", drop.password_hash or "")
    with service.storage.open(drop.blob_id) as f:
        assert f.read() == DATA
    assert progress.state.slug == drop.slug and progress.state.offset == len(DATA)
    assert resumable.completed_drop(service, state.id).slug == drop.slug


def test_a_cut_append_keeps_every_byte_and_the_rest_completes(service: Teledrop,
                                                              data_dir: Path) -> None:
    state = create(service)
    with pytest.raises(ClientDisconnected):
        resumable.append(service, state.id, 0, cut_after(DATA, 300_001))
    stored = service.metadata.get_upload(state.id)
    assert stored.offset == 300_001 and stored.lease_holder is None
    with pytest.raises(UploadIncomplete):
        resumable.completed_drop(service, state.id)
    drop = resumable.append(service, state.id, 300_001, [DATA[300_001:]]).drop
    assert drop is not None and drop.hash == blake3_hash(DATA)
    assert staged_files(data_dir) == []


def test_another_process_rebuilds_the_hash_from_the_staged_bytes(
        service: Teledrop, monkeypatch: pytest.MonkeyPatch) -> None:
    state = create(service)
    resumable.append(service, state.id, 0, [DATA[:500_000]])
    monkeypatch.setattr(resumable, "HASHERS", resumable.Hashers())  # a fresh process
    drop = resumable.append(service, state.id, 500_000, [DATA[500_000:]]).drop
    assert drop is not None and drop.hash == blake3_hash(DATA)


def test_unreadable_staged_bytes_are_hashed_once_published(
        memory_app: Flask, memory: MemoryPlugin, monkeypatch: pytest.MonkeyPatch) -> None:
    """A storage that cannot read its staged bytes back (an object store's multipart parts)
    gets the hash from the published blob: the completing request publishes, reads it once,
    then commits through the chain."""
    service = service_of(memory_app)
    memory.storage.staged_readable = False
    state = create(service)
    resumable.append(service, state.id, 0, [DATA[:500_000]])
    monkeypatch.setattr(resumable, "HASHERS", resumable.Hashers())  # another host
    resumable.append(service, state.id, 500_000, [DATA[500_000:700_000]])
    drop = resumable.append(service, state.id, 700_000, [DATA[700_000:]]).drop
    assert drop is not None and drop.hash == blake3_hash(DATA)
    assert memory.storage.blobs[drop.blob_id][0] == DATA and memory.storage.resumable == {}


@pytest.mark.parametrize("inspector_resumable", [True, False])
def test_unreadable_staged_bytes_are_inspected_once_published(
        make_app: Callable[..., Flask], memory: MemoryPlugin, monkeypatch: pytest.MonkeyPatch,
        inspector_resumable: bool) -> None:
    """Where the staged bytes cannot be read back, inspectors that did not see every byte
    (another host continued the upload, or they cannot go on across requests) see the
    published blob, read once with its hash, before the commit."""
    inspect = Inspect(resumable=inspector_resumable)
    service = service_of(make_app(plugins=[memory, inspect], storage={"plugin": "memory"},
                                  metadata={"plugin": "memory"}))
    memory.storage.staged_readable = False
    state = create(service)
    resumable.append(service, state.id, 0, [DATA[:300_000]])
    if inspector_resumable:
        monkeypatch.setattr(resumable, "HASHERS", resumable.Hashers())  # another host
    resumable.append(service, state.id, 300_000, [DATA[300_000:]])
    drop = service.metadata.get(resumable.completed_drop(service, state.id).slug)
    assert drop is not None and drop.hash == blake3_hash(DATA)
    complete = [seen for seen in inspect.opened if seen.finished]
    assert len(complete) == 1 and complete[0].data == DATA and complete[0].closed == 1


def test_an_inspector_refusing_a_published_blob_leaves_nothing(
        make_app: Callable[..., Flask], memory: MemoryPlugin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    inspect = Inspect(refuse_pattern=b"EICAR-LIKE")
    service = service_of(make_app(plugins=[memory, inspect], storage={"plugin": "memory"},
                                  metadata={"plugin": "memory"}))
    memory.storage.staged_readable = False
    data = DATA[:600_000] + b"EICAR-LIKE" + DATA[600_010:]  # in the second request's bytes
    state = create(service)
    resumable.append(service, state.id, 0, [data[:500_000]])
    monkeypatch.setattr(resumable, "HASHERS", resumable.Hashers())  # another host
    with pytest.raises(ContentRefused):
        resumable.append(service, state.id, 500_000, [data[500_000:]])
    assert memory.storage.blobs == {} and memory.storage.resumable == {}
    assert service.metadata.get_upload(state.id) is None and service.metadata.count() == 0


def test_a_blob_published_to_be_hashed_goes_when_its_commit_fails(
        make_app: Callable[..., Flask], memory: MemoryPlugin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    service = service_of(make_app(plugins=[memory, Wrapper(fail=True)],
                                  storage={"plugin": "memory"}, metadata={"plugin": "memory"}))
    memory.storage.staged_readable = False
    state = create(service)
    resumable.append(service, state.id, 0, [DATA[:10]])
    monkeypatch.setattr(resumable, "HASHERS", resumable.Hashers())
    with pytest.raises(StorageUnavailable):
        resumable.append(service, state.id, 10, [DATA[10:]])
    assert memory.storage.blobs == {} and memory.storage.resumable == {}
    assert service.metadata.get_upload(state.id) is None and service.metadata.count() == 0


def test_a_blob_published_to_be_hashed_goes_when_it_cannot_be_read(
        memory_app: Flask, memory: MemoryPlugin, monkeypatch: pytest.MonkeyPatch) -> None:
    service = service_of(memory_app)
    memory.storage.staged_readable = False
    state = create(service)
    resumable.append(service, state.id, 0, [DATA[:10]])
    monkeypatch.setattr(resumable, "HASHERS", resumable.Hashers())

    def unreadable(blob_id: str) -> Any:
        raise StorageUnavailable("the object store went away")

    monkeypatch.setattr(memory.storage, "open", unreadable)
    with pytest.raises(StorageUnavailable):
        resumable.append(service, state.id, 10, [DATA[10:]])
    assert memory.storage.blobs == {} and service.metadata.count() == 0


def test_a_wrong_offset_is_refused_and_the_upload_goes_on(service: Teledrop) -> None:
    state = create(service)
    resumable.append(service, state.id, 0, [DATA[:10]])
    for offset in (0, 11):
        with pytest.raises(OffsetMismatch):
            resumable.append(service, state.id, offset, [b"x"])
    assert resumable.append(service, state.id, 10, [DATA[10:]]).drop is not None


def test_a_second_request_while_one_runs_is_locked(service: Teledrop) -> None:
    state = create(service)
    seen: list[Exception] = []

    def body() -> Iterator[bytes]:
        yield DATA[:10]
        with pytest.raises(UploadLocked) as locked:
            resumable.append(service, state.id, 10, [b"x"])
        seen.append(locked.value)
        with pytest.raises(UploadLocked):  # whatever its offset
            resumable.append(service, state.id, 0, [b"x"])
        yield DATA[10:20]

    assert resumable.append(service, state.id, 0, body()).state.offset == 20
    assert len(seen) == 1


def test_a_deferred_length_is_given_later_and_held_to(service: Teledrop) -> None:
    state = create(service, length=None)
    assert resumable.append(service, state.id, 0, [DATA[:100]]).state.length is None
    with pytest.raises(InvalidOption):
        resumable.append(service, state.id, 100, [], length=99)
    progress = resumable.append(service, state.id, 100, [DATA[100:200]], length=200)
    assert progress.drop is not None and progress.drop.size == 200


def test_bytes_past_the_length_are_refused_and_those_before_kept(service: Teledrop) -> None:
    state = create(service, length=100)
    with pytest.raises(TooLarge):
        resumable.append(service, state.id, 0, [DATA[:60], DATA[60:160]])
    assert service.metadata.get_upload(state.id).offset == 60
    with pytest.raises(TooLarge):  # a body announced too long is refused before it is read
        resumable.append(service, state.id, 60, [], body_size=41)


def test_unknown_and_expired_uploads_are_not_found(make_service: Callable[..., Teledrop]) -> None:
    service = make_service(limits={"resumable_expires": "1s"})
    with pytest.raises(NotFound):
        resumable.append(service, "0" * 40, 0, [b"x"])
    state = create(service)
    service.metadata.delete_upload(state.id)
    service.metadata.insert_upload(UploadState(**{**state.__dict__, "expires_at": now()}))
    with pytest.raises(NotFound):
        resumable.append(service, state.id, 0, [b"x"])


# -- the commit chain ----------------------------------------------------------------------

class Wrapper:
    """A plugin around teledrop_commit_drop that records what it sees, and can fail."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.seen: list[tuple[str, int, str]] = []

    @hookimpl(wrapper=True)
    def teledrop_commit_drop(self, drop: Any, blob: Any) -> Any:
        self.seen.append((drop.filename, drop.size, drop.hash))
        if self.fail:
            raise StorageUnavailable("the wrapper failed")
        return (yield)


def test_a_commit_wrapper_sees_what_it_sees_of_a_streamed_upload(
        make_app: Callable[..., Flask]) -> None:
    wrapper = Wrapper()
    app = make_app(plugins=[wrapper])
    service = service_of(app)
    state = create(service)
    resumable.append(service, state.id, 0, [DATA])
    streamed = app.test_client().put("/data.bin", data=DATA)
    assert streamed.status_code == 201
    assert wrapper.seen == [("data.bin", len(DATA), blake3_hash(DATA))] * 2


def test_a_failed_commit_undoes_everything(make_app: Callable[..., Flask],
                                           data_dir: Path) -> None:
    service = service_of(make_app(plugins=[Wrapper(fail=True)]))
    state = create(service)
    with pytest.raises(StorageUnavailable):
        resumable.append(service, state.id, 0, [DATA])
    assert service.metadata.get_upload(state.id) is None
    assert service.metadata.count() == 0
    assert staged_files(data_dir) == [] and list(service.storage.list_blobs()) == []


# -- termination and gc --------------------------------------------------------------------

def test_termination_removes_the_upload_and_its_staged_bytes(service: Teledrop,
                                                             data_dir: Path) -> None:
    state = create(service)
    resumable.append(service, state.id, 0, [DATA[:1000]])
    resumable.terminate(service, state.id)
    assert service.metadata.get_upload(state.id) is None and staged_files(data_dir) == []
    with pytest.raises(NotFound):
        resumable.terminate(service, state.id)


def test_gc_removes_a_resumable_blob_no_upload_names(service: Teledrop, data_dir: Path) -> None:
    """A process killed between staging an upload's blob and recording the upload leaves a
    staged blob that no record names: gc removes it once it is older than the limit."""
    live = create(service)
    stray = service.storage.stage_resumable()
    stray.write(b"never recorded")
    stray.sync()
    stray.close()
    assert list(gc.collect(service, older_than=3600)) == []
    removed = list(gc.collect(service, older_than=0))
    assert [(r.kind, r.name) for r in removed] == [("staging", stray.blob_id)]
    assert [p.name for p in staged_files(data_dir)] == [f"{live.blob_id}.upload"]


def test_gc_removes_expired_uploads_and_their_staged_bytes(service: Teledrop,
                                                           data_dir: Path) -> None:
    live, old = create(service), create(service)
    resumable.append(service, old.id, 0, [DATA[:1000]])
    service.metadata.delete_upload(old.id)
    service.metadata.insert_upload(UploadState(**{**old.__dict__, "offset": 1000,
                                                  "expires_at": now() - 1}))
    removed = list(gc.collect(service))
    assert [(r.kind, r.name) for r in removed] == [("upload", old.id)]
    assert service.metadata.get_upload(old.id) is None
    assert service.metadata.get_upload(live.id) is not None
    assert [p.name for p in staged_files(data_dir)] == [f"{live.blob_id}.upload"]
