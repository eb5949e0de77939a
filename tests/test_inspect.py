"""The inspection hook (``teledrop_inspect_upload``) on every upload path: an inspector
sees every byte in order, as memoryviews, then ``finish()`` before the commit; a refusal
mid-stream, at the finish or at the open is the client's answer and leaves nothing; a
resumable upload is inspected by the same inspector only when it saw every byte in one
process, else again from its staged bytes at completion; and when no plugin inspects, the
hasher's own ``update`` is what every chunk goes through."""

from __future__ import annotations

import base64
import io
import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from teledrop.core import resumable
from teledrop.core.errors import ContentRefused, UnsupportedMediaType, Unavailable
from teledrop.core.upload import Upload, UploadRequest
from teledrop.hosts.body import READ_SIZE
from teledrop.web.app import service_of
from tests.http_helpers import JSON, assert_json_error, assert_nothing_stored, blake3_hash, \
    post_file, put_file, records
from tests.plugins.inspectors import Inspect

TUS = {"Tus-Resumable": "1.0.0"}
PATTERN = b"REFUSE-ME"
#: Several reads' worth of bytes that never hold the pattern.
CLEAN = bytes(range(256)) * (3 * READ_SIZE // 256)
#: The pattern across the edge of the body's first two reads.
EDGE = READ_SIZE - 4
DIRTY = CLEAN[:EDGE] + PATTERN + CLEAN[EDGE:]


@pytest.fixture
def inspect() -> Inspect:
    return Inspect(refuse_pattern=PATTERN)


@pytest.fixture
def app(make_app: Callable[..., Flask], inspect: Inspect) -> Flask:
    app = make_app([inspect])
    inspect.service = service_of(app)
    return app


def post(app: Flask, data: bytes, filename: str = "a.bin") -> TestResponse:
    return post_file(app.test_client(), data, filename, headers=JSON)


def put(app: Flask, data: bytes, filename: str = "a.bin") -> TestResponse:
    return put_file(app.test_client(), f"/{filename}", data, headers=JSON)


def tus_create(app: Flask, length: int, filename: str = "a.bin") -> str:
    meta = "filename " + base64.b64encode(filename.encode()).decode()
    response = app.test_client().post("/api/uploads", headers={
        **TUS, "Upload-Length": str(length), "Upload-Metadata": meta})
    assert response.status_code == 201, response.data
    return response.headers["Location"]


def tus_patch(app: Flask, url: str, offset: int, data: bytes) -> TestResponse:
    return app.test_client().patch(url, data=data, headers={
        **TUS, **JSON, "Content-Type": "application/offset+octet-stream",
        "Upload-Offset": str(offset)})


def tus(app: Flask, data: bytes, filename: str = "a.bin", pieces: int = 1) -> TestResponse:
    """The upload in ``pieces`` PATCHes; the last answer."""
    url = tus_create(app, len(data), filename)
    step = -(-len(data) // pieces)
    for offset in range(0, len(data), step):
        response = tus_patch(app, url, offset, data[offset:offset + step])
        if response.status_code != 204:
            return response
    return response


UPLOADS = {"multipart": post, "put": put, "tus": tus}


def created(response: TestResponse) -> None:
    assert response.status_code in (201, 204), response.get_data(as_text=True)


@pytest.mark.parametrize("send", UPLOADS.values(), ids=UPLOADS.keys())
def test_the_inspector_sees_every_byte_in_order_then_finishes_before_the_commit(
        app: Flask, inspect: Inspect, send: Callable[..., TestResponse]) -> None:
    created(send(app, CLEAN))
    (seen,) = inspect.opened
    assert seen.data == CLEAN and len(seen.chunks) > 1
    assert seen.views
    assert (seen.finished, seen.closed) == (1, 1)
    assert seen.committed_at_finish is False
    assert seen.filename == "a.bin" and seen.content_type == "application/octet-stream"
    assert [d.hash for d in records(app)] == [blake3_hash(CLEAN)]


@pytest.mark.parametrize("send", [post, put], ids=["post", "put"])
def test_an_inspector_never_gets_an_empty_chunk(
        app: Flask, inspect: Inspect, send: Callable[..., TestResponse]) -> None:
    """An empty file (whose multipart body makes one empty piece) reaches the inspector's
    finish only: a zero-length chunk ends a stream in protocols such as clamd's."""
    created(send(app, b""))
    created(send(app, CLEAN))
    assert [len(seen.data) for seen in inspect.opened] == [0, len(CLEAN)]
    assert all(chunk for seen in inspect.opened for chunk in seen.chunks)
    assert [seen.finished for seen in inspect.opened] == [1, 1]


@pytest.mark.parametrize("send", UPLOADS.values(), ids=UPLOADS.keys())
def test_a_pattern_across_a_chunk_edge_is_refused_and_nothing_is_left(
        app: Flask, inspect: Inspect, data_dir: Path, send: Callable[..., TestResponse]) -> None:
    response = send(app, DIRTY)
    assert assert_json_error(response, 422, "content_refused") == "found REFUSE-ME"
    (seen,) = inspect.opened
    assert seen.finished == 0 and seen.closed == 1
    assert len(seen.data) < len(DIRTY)  # the body was not read to its end
    assert_nothing_stored(app, data_dir)


def test_a_refused_resumable_upload_is_gone(app: Flask, data_dir: Path) -> None:
    url = tus_create(app, len(DIRTY))
    assert tus_patch(app, url, 0, DIRTY).status_code == 422
    assert app.test_client().head(url, headers=TUS).status_code == 404
    assert tus_patch(app, url, 0, DIRTY).status_code == 404
    assert_nothing_stored(app, data_dir)


@pytest.mark.parametrize("send", UPLOADS.values(), ids=UPLOADS.keys())
def test_a_refusal_at_the_finish_leaves_nothing(app: Flask, inspect: Inspect, data_dir: Path,
                                                send: Callable[..., TestResponse]) -> None:
    inspect.fail_finish = ContentRefused("not this one")
    assert assert_json_error(send(app, CLEAN), 422) == "not this one"
    assert_nothing_stored(app, data_dir)


@pytest.mark.parametrize("send", UPLOADS.values(), ids=UPLOADS.keys())
def test_an_inspector_that_cannot_work_is_a_503_not_a_pass(
        app: Flask, inspect: Inspect, data_dir: Path, send: Callable[..., TestResponse]) -> None:
    inspect.fail_update = Unavailable("the scanner is down")
    assert assert_json_error(send(app, CLEAN), 503) == "the scanner is down"
    assert_nothing_stored(app, data_dir)


def test_a_refusal_on_the_name_comes_before_any_byte(app: Flask, inspect: Inspect,
                                                     data_dir: Path) -> None:
    inspect.fail_open = UnsupportedMediaType("no executables")
    for send in UPLOADS.values():  # a resumable upload's at its first byte
        assert assert_json_error(send(app, CLEAN, "setup.exe"), 415) == "no executables"
    assert_nothing_stored(app, data_dir)
    assert service_of(app).metadata.blob_ids() == set()  # no upload record either


def test_several_patches_are_inspected_again_from_the_staged_bytes(
        app: Flask, inspect: Inspect) -> None:
    created(tus(app, CLEAN, pieces=3))
    first, again = inspect.opened
    assert 0 < len(first.data) < len(CLEAN) and first.finished == 0 and first.closed == 1
    assert again.data == CLEAN and (again.finished, again.closed) == (1, 1)


def test_a_resumable_inspector_goes_on_across_patches_in_one_process(
        app: Flask, inspect: Inspect) -> None:
    inspect.resumable = True
    created(tus(app, CLEAN, pieces=3))
    (seen,) = inspect.opened
    assert seen.data == CLEAN and (seen.finished, seen.closed) == (1, 1)


@pytest.mark.parametrize("send", UPLOADS.values(), ids=UPLOADS.keys())
def test_a_files_reads_start_at_multiples_of_the_read_size(
        app: Flask, inspect: Inspect, send: Callable[..., TestResponse]) -> None:
    """Where the page cache writes whole pages and blake3 hashes whole subtrees: each read
    of a file starts at a multiple of READ_SIZE into it, but the one after a multipart
    file's first (which began after the part's headers) and a PATCH's first (which begins
    at the client's offset)."""
    inspect.resumable = True
    created(send(app, CLEAN + CLEAN[:1000], pieces=3) if send is tus
            else send(app, CLEAN + CLEAN[:1000]))
    (seen,) = inspect.opened
    starts = list(itertools.accumulate((len(chunk) for chunk in seen.chunks), initial=0))[:-1]
    unaligned = [start for start in starts if start % READ_SIZE]
    if send is post:
        assert unaligned == [starts[1]]
    elif send is put:
        assert unaligned == []
    else:
        step = -(-(len(CLEAN) + 1000) // 3)
        assert unaligned == [step, 2 * step]
    assert len(starts) >= 4


def test_a_patch_in_another_process_means_inspecting_again(
        app: Flask, inspect: Inspect, monkeypatch: pytest.MonkeyPatch) -> None:
    inspect.resumable = True
    url = tus_create(app, len(CLEAN))
    assert tus_patch(app, url, 0, CLEAN[:1000]).status_code == 204
    monkeypatch.setattr(resumable, "HASHERS", resumable.Hashers())  # another process
    assert tus_patch(app, url, 1000, CLEAN[1000:]).status_code == 204
    first, again = inspect.opened
    assert first.data == CLEAN[:1000] and first.finished == 0
    assert again.data == CLEAN and again.finished == 1
    assert [d.hash for d in records(app)] == [blake3_hash(CLEAN)]


def test_a_pattern_split_across_patches_is_refused_at_completion(
        app: Flask, inspect: Inspect, data_dir: Path) -> None:
    url = tus_create(app, len(DIRTY))
    cut = EDGE + 3
    assert tus_patch(app, url, 0, DIRTY[:cut]).status_code == 204
    assert assert_json_error(tus_patch(app, url, cut, DIRTY[cut:]), 422) == "found REFUSE-ME"
    assert app.test_client().head(url, headers=TUS).status_code == 404
    assert_nothing_stored(app, data_dir)


def test_the_owner_reaches_the_inspector(make_app: Callable[..., Flask],
                                         inspect: Inspect) -> None:
    from teledrop.core.owners import create_token
    app = make_app([inspect])
    token = create_token(service_of(app), "alice")
    auth = {"Authorization": f"Bearer {token}", **JSON}
    assert put_file(app.test_client(), "/a.bin", CLEAN, headers=auth).status_code == 201
    url = app.test_client().post("/api/uploads", headers={
        **TUS, **auth, "Upload-Length": "3"}).headers["Location"]
    created(tus_patch(app, url, 0, b"abc"))
    assert [seen.owner for seen in inspect.opened] == ["alice", "alice"]


def test_without_an_inspector_each_chunk_goes_to_the_hasher_alone(
        make_app: Callable[..., Flask]) -> None:
    service = service_of(make_app())
    upload = Upload(service, UploadRequest(method="PUT", headers={}))
    upload.begin()
    writer = upload.open_file("a.bin", None)
    try:
        assert writer.digest.inspection is not None and writer.digest.inspection.inspectors == []
        assert writer.digest.update == writer.digest.hasher.update  # no call in between
        writer.write(b"abc")
        assert writer.hash == blake3_hash(b"abc")
    finally:
        upload.close()


def test_inspectors_see_a_body_read_from_a_plain_stream(app: Flask, inspect: Inspect) -> None:
    # bytes from a stream without readinto are handed over as views all the same
    response = app.test_client().put("/a.bin", input_stream=io.BytesIO(CLEAN), headers={
        **JSON, "Content-Length": str(len(CLEAN))})
    assert response.status_code == 201
    assert inspect.opened[0].data == CLEAN and inspect.opened[0].views
