"""The upload pipeline in teledrop/core/upload.py, driven directly (no HTTP) on the
in-memory backends: options from the query and from form fields, limits enforced before
and while streaming, filenames and content types cleaned, the hash and the delete token
right, and nothing staged left behind whenever an upload is refused."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from typing import Any

import blake3
import pytest
from flask import Flask

from teledrop.core.drop import Drop
from teledrop.core.errors import (
    InvalidFilename, InvalidOption, InvalidSlug, MalformedBody, SlugTaken, TeledropError,
    TooLarge, Unauthorized,
)
from teledrop.core.service import Teledrop
from teledrop.core.upload import (
    MAX_FILENAME_BYTES, Upload, UploadRequest, check_size, clean_filename, create_drop,
    pick_content_type,
)
from teledrop.web.app import service_of
from tests.plugins.memory import MemoryBlobWriter, MemoryPlugin
from tests.support.uploads import Receive, sending


def request(query: dict[str, str] | None = None, headers: dict[str, str] | None = None,
            declared_size: int | None = None) -> UploadRequest:
    return UploadRequest(method="POST", headers=headers or {}, query=query or {},
                         declared_size=declared_size)


@pytest.fixture
def memory_service(memory_app: Flask) -> Teledrop:
    return service_of(memory_app)


@pytest.fixture
def make_memory_service(make_app: Callable[..., Flask]) -> Callable[..., tuple[Teledrop,
                                                                                MemoryPlugin]]:
    """A service on fresh in-memory backends with some config sections changed."""

    def make(**sections: Any) -> tuple[Teledrop, MemoryPlugin]:
        memory = MemoryPlugin()
        app = make_app(plugins=[memory], storage={"plugin": "memory"},
                       metadata={"plugin": "memory"}, **sections)
        return service_of(app), memory

    return make


def create(service: Teledrop, receive: Receive | None = None, **kwargs: Any) -> Drop:
    return create_drop(service, request(**kwargs), receive or sending())


def assert_nothing_left(memory: MemoryPlugin) -> None:
    assert memory.storage.staging == {}
    assert memory.storage.blobs == {}
    assert memory.metadata.drops == {}


def refused(service: Teledrop, memory: MemoryPlugin, error: type[TeledropError],
            receive: Receive | None = None, **kwargs: Any) -> TeledropError:
    with pytest.raises(error) as info:
        create(service, receive, **kwargs)
    assert_nothing_left(memory)
    assert "\n" not in str(info.value)
    return info.value


# --- happy path -------------------------------------------------------------------------

def test_upload_records_and_stores_the_file(memory_service: Teledrop,
                                            memory: MemoryPlugin) -> None:
    drop = create(memory_service, sending([b"hel", b"", b"lo"], filename="greeting.txt"))
    assert (drop.filename, drop.size, drop.content_type) == ("greeting.txt", 5, "text/plain")
    assert memory.storage.blobs[drop.blob_id][0] == b"hello"
    assert memory.storage.staging == {}
    assert memory.metadata.get(drop.slug).blob_id == drop.blob_id
    assert not drop.custom_slug
    assert drop.expires_at - drop.created_at == memory_service.config.limits.default_expires


@pytest.mark.parametrize("data", [b"", b"x", bytes(range(256)) * 1000])
def test_hash_is_blake3_of_the_bytes(memory_service: Teledrop, data: bytes) -> None:
    drop = create(memory_service, sending([data[i:i + 4096] for i in range(0, len(data), 4096)]))
    assert re.fullmatch(r"blake3:[0-9a-f]{64}", drop.hash)
    assert drop.hash == "blake3:" + blake3.blake3(data).hexdigest()
    assert drop.size == len(data)


def test_delete_token_returned_once_and_stored_only_as_sha256(memory_service: Teledrop,
                                                              memory: MemoryPlugin) -> None:
    drop = create(memory_service)
    token = drop.delete_token
    assert token and len(token) >= 32
    stored = memory.metadata.drops[drop.slug]
    assert stored.delete_token is None
    assert stored.delete_token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(vars(stored))
    assert memory_service.metadata.get(drop.slug).delete_token is None
    assert "delete_token" not in drop.to_json("http://x/" + drop.slug)
    assert drop.to_json("u", with_delete_token=True)["delete_token"] == token


def test_each_upload_gets_its_own_token_and_slug(memory_service: Teledrop) -> None:
    drops = [create(memory_service) for _ in range(20)]
    assert len({d.slug for d in drops}) == 20
    assert len({d.delete_token for d in drops}) == 20
    assert len({d.blob_id for d in drops}) == 20


# --- options ----------------------------------------------------------------------------

OPTIONS = {"slug": "my-drop", "expires": "1h", "max_downloads": "3"}


def assert_options_applied(drop: Drop) -> None:
    assert drop.slug == "my-drop" and drop.custom_slug
    assert drop.expires_at - drop.created_at == 3600
    assert drop.max_downloads == 3


def test_options_from_query(memory_service: Teledrop) -> None:
    assert_options_applied(create(memory_service, query=OPTIONS))


def test_options_from_fields_before_the_file(memory_service: Teledrop) -> None:
    assert_options_applied(create(memory_service, sending(fields=OPTIONS.items())))


def test_options_from_fields_after_the_file(memory_service: Teledrop) -> None:
    assert_options_applied(create(memory_service, sending(fields_after=OPTIONS.items())))


def test_same_option_twice_with_same_value_is_fine(memory_service: Teledrop) -> None:
    receive = sending(fields=[("expires", "1h"), ("max_downloads", " 3 ")],
                      fields_after=[("slug", "my-drop")])
    assert_options_applied(create(memory_service, receive, query=OPTIONS))


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_same_option_twice_with_different_values_is_refused(
        memory_service: Teledrop, memory: MemoryPlugin, name: str) -> None:
    other = {"slug": "other-drop", "expires": "2h", "max_downloads": "4"}[name]
    err = refused(memory_service, memory, InvalidOption, sending(fields=[(name, other)]),
                  query={name: OPTIONS[name]})
    assert name in str(err)
    refused(memory_service, memory, InvalidOption,
            sending(fields=[(name, OPTIONS[name])], fields_after=[(name, other)]))


def test_unknown_fields_are_ignored(memory_service: Teledrop) -> None:
    drop = create(memory_service, sending(fields=[("submit", "Upload"), ("comment", "x")]),
                  query={"utm_source": "mail"})
    assert drop.size == 5


def test_empty_slug_means_generated(memory_service: Teledrop) -> None:
    drop = create(memory_service, sending(fields=[("slug", "")]))
    assert not drop.custom_slug and len(drop.slug) >= 8


@pytest.mark.parametrize("expires", ["soon", "0", "0s", "-1", "1w", "1.5.5h", "1h30m"])
def test_bad_expires_is_refused(memory_service: Teledrop, memory: MemoryPlugin,
                                expires: str) -> None:
    err = refused(memory_service, memory, InvalidOption, query={"expires": expires})
    assert "expires" in str(err)


def test_expires_up_to_max_expires(make_memory_service) -> None:
    service, memory = make_memory_service(limits={"max_expires": "2h",
                                                  "default_expires": "1h"})
    for too_long in ("7201", "121m", "3h", "1d"):
        refused(service, memory, InvalidOption, query={"expires": too_long})
    for longest in ("2h", "120m", "7200"):
        drop = create(service, query={"expires": longest})
        assert drop.expires_at - drop.created_at == 7200


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", "1e3", "²", "2" * 30])
def test_bad_max_downloads_is_refused(memory_service: Teledrop, memory: MemoryPlugin,
                                      value: str) -> None:
    err = refused(memory_service, memory, InvalidOption, query={"max_downloads": value})
    assert "max_downloads" in str(err)


def test_invalid_custom_slug_is_refused_before_the_body(memory_service: Teledrop,
                                                        memory: MemoryPlugin) -> None:
    calls: list[Upload] = []
    refused(memory_service, memory, InvalidSlug, calls.append, query={"slug": "-bad"})
    refused(memory_service, memory, InvalidSlug, calls.append, query={"slug": "healthz"})
    assert calls == []


def test_taken_custom_slug_is_refused_before_the_body(memory_service: Teledrop,
                                                      memory: MemoryPlugin) -> None:
    first = create(memory_service, query={"slug": "mine"})
    calls: list[Upload] = []
    with pytest.raises(SlugTaken):
        create(memory_service, calls.append, query={"slug": "mine"})
    assert calls == []
    assert list(memory.storage.blobs) == [first.blob_id]
    assert memory.storage.staging == {}


# --- size limit -------------------------------------------------------------------------

def test_file_of_exactly_the_limit_is_accepted(make_memory_service) -> None:
    service, memory = make_memory_service(limits={"max_upload_size": 10})
    drop = create(service, sending([b"12345", b"67890"]))
    assert memory.storage.blobs[drop.blob_id][0] == b"1234567890"


def test_limit_enforced_while_streaming(make_memory_service) -> None:
    service, memory = make_memory_service(limits={"max_upload_size": 10})
    refused(service, memory, TooLarge, sending([b"12345", b"67890", b"1"]))
    refused(service, memory, TooLarge, sending(b"x" * 11))


def test_stream_over_limit_stops_writing_at_the_limit(make_memory_service) -> None:
    service, memory = make_memory_service(limits={"max_upload_size": 10})
    written: list[int] = []

    def receive(upload: Upload) -> None:
        writer = upload.open_file("a", None)
        for _ in range(100):
            writer.write(b"123")
            written.append(len(memory.storage.staging[writer.blob.blob_id][0]))

    refused(service, memory, TooLarge, receive)
    assert written and max(written) <= 10


def test_declared_size_over_limit_is_refused_before_receive(make_memory_service) -> None:
    service, memory = make_memory_service(limits={"max_upload_size": 10})
    calls: list[Upload] = []
    refused(service, memory, TooLarge, calls.append, declared_size=11)
    assert calls == []
    assert create(service, sending(b"x" * 10), declared_size=10).size == 10


def test_storage_is_told_the_size_to_expect(make_memory_service) -> None:
    service, memory = make_memory_service(limits={"max_upload_size": 100})
    create(service, sending(b"x" * 10), declared_size=10)
    form = UploadRequest(method="POST", headers={}, max_size=60)
    create_drop(service, form, sending(b"y" * 10))
    create_drop(service, UploadRequest(method="POST", headers={}, max_size=500),
                sending(b"z"))  # a body past the limit: the file cannot be larger than it
    create(service, sending(b"w"))
    assert memory.storage.size_hints == [10, 60, 100, None]


# --- the body's shape -------------------------------------------------------------------

def test_no_file_part_is_malformed(memory_service: Teledrop, memory: MemoryPlugin) -> None:
    def fields_only(upload: Upload) -> None:
        upload.set_field("expires", "1h")

    refused(memory_service, memory, MalformedBody, fields_only)


def test_two_files_are_malformed(memory_service: Teledrop, memory: MemoryPlugin) -> None:
    def two_files(upload: Upload) -> None:
        upload.open_file("a.txt", None).write(b"first")
        upload.open_file("b.txt", None).write(b"second")

    refused(memory_service, memory, MalformedBody, two_files)


def test_error_in_receive_discards_the_staged_file(memory_service: Teledrop,
                                                   memory: MemoryPlugin) -> None:
    def vanishing_client(upload: Upload) -> None:
        upload.open_file("a.txt", None).write(b"partial")
        raise ConnectionResetError("peer gone")

    with pytest.raises(ConnectionResetError):
        create(memory_service, vanishing_client)
    assert_nothing_left(memory)


def test_a_blob_close_that_raises_does_not_replace_the_uploads_error(
        memory_service: Teledrop, memory: MemoryPlugin, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    real_close = MemoryBlobWriter.close

    def close(self: MemoryBlobWriter) -> None:
        real_close(self)
        raise RuntimeError("a storage plugin's close failed")

    monkeypatch.setattr(MemoryBlobWriter, "close", close)

    def vanishing_client(upload: Upload) -> None:
        upload.open_file("a.txt", None).write(b"partial")
        raise ConnectionResetError("peer gone")

    with pytest.raises(ConnectionResetError):  # the cause, not the close's RuntimeError
        create(memory_service, vanishing_client)
    assert "closing the blob of a failed upload failed" in caplog.text
    assert_nothing_left(memory)


def test_refused_by_auth_before_the_body(make_memory_service) -> None:
    service, memory = make_memory_service(auth={"upload_tokens": ["s3cret"]})
    calls: list[Upload] = []
    refused(service, memory, Unauthorized, calls.append)
    refused(service, memory, Unauthorized, calls.append,
            headers={"Authorization": "Bearer wrong"})
    assert calls == []
    assert create(service, headers={"Authorization": "Bearer s3cret"}).size == 5


# --- filenames and content types ------------------------------------------------------

@pytest.mark.parametrize("name", [
    "a\x00b", "a\nb", "a\rb", "a\tb", "\x1b[31mred", "a\x7fb", "a\x85b", "a\u2028b", "a\u2029b",
    "a/b", "../etc/passwd", "a\\b", "..\\x", "/", ".", "..", " .. ",
    "é" * 128, "x" * 256, "\udc80abc",
])
def test_clean_filename_refuses(name: str) -> None:
    with pytest.raises(InvalidFilename):
        clean_filename(name)


@pytest.mark.parametrize(("name", "expected"), [
    (None, "file"),
    ("", "file"),
    ("   ", "file"),
    ("report.pdf", "report.pdf"),
    ("  padded.txt  ", "padded.txt"),
    ("...", "..."),
    (".hidden", ".hidden"),
    ("e\u0301te\u0301.txt", "\u00e9t\u00e9.txt"),
    ("日本語.txt", "日本語.txt"),
    ("é" * 127 + "a", "é" * 127 + "a"),
    ("x" * 255, "x" * 255),
])
def test_clean_filename_accepts(name: str | None, expected: str) -> None:
    cleaned = clean_filename(name)
    assert cleaned == expected
    assert unicodedata.is_normalized("NFC", cleaned)
    assert len(cleaned.encode("utf-8")) <= MAX_FILENAME_BYTES


def test_limit_on_filename_counts_nfc_bytes() -> None:
    # 128 decomposed "é" are 384 bytes, but 256 once composed: still one byte too many.
    with pytest.raises(InvalidFilename):
        clean_filename("e\u0301" * 128)
    assert clean_filename("e\u0301" * 127) == "\u00e9" * 127


def test_bad_filename_is_refused_before_staging(memory_service: Teledrop,
                                                memory: MemoryPlugin) -> None:
    refused(memory_service, memory, InvalidFilename, sending(filename="../../x"))


@pytest.mark.parametrize(("declared", "filename", "expected"), [
    ("text/plain; charset=utf-8", "x", "text/plain"),
    ("IMAGE/PNG", "x", "image/png"),
    ("text/html", "page.txt", "text/html"),
    (None, "a.pdf", "application/pdf"),
    ("", "a.png", "image/png"),
    ("application/octet-stream", "a.png", "image/png"),
    ("application/octet-stream", "noext", "application/octet-stream"),
    (None, "noext", "application/octet-stream"),
    ("not a type", "a.json", "application/json"),
    ("text/plain\r\nX-Injected: 1", "a.bin", "application/octet-stream"),
    ("*/*", "a.txt", "text/plain"),
    ("text/", "a.txt", "text/plain"),
])
def test_pick_content_type(declared: str | None, filename: str, expected: str) -> None:
    assert pick_content_type(declared, filename) == expected


def test_upload_records_the_picked_content_type(memory_service: Teledrop) -> None:
    drop = create(memory_service, sending(filename="photo.jpg",
                                          content_type="application/octet-stream"))
    assert drop.content_type == "image/jpeg"
    assert create(memory_service, sending(filename=None)).filename == "file"


@pytest.mark.parametrize("size, framing, refused", [
    (None, 0, False), (100, 0, False), (101, 0, True), (150, 50, False), (151, 50, True)])
def test_check_size_refuses_only_what_cannot_fit(size: int | None, framing: int,
                                                 refused: bool) -> None:
    if refused:
        with pytest.raises(TooLarge) as info:
            check_size(size, 100, framing)
        assert info.value.message == "the upload exceeds the limit of 100 B"
    else:
        check_size(size, 100, framing)
