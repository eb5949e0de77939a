"""Resumable uploads against a real gunicorn with a real tus client (tuspy): a whole file in
one PATCH; connections cut at random offsets (raw sockets, a clean close or a reset) keep
every byte the server received, and tuspy resumes from the offset the server reports; a
second PATCH while one runs is 423. After each upload the data dir holds exactly the drop:
no staged bytes are left behind."""

from __future__ import annotations

import base64
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from tusclient import client as tus_client

from tests.http_helpers import blake3_hash
from tests.live_server import LiveServer, connect, live_server, request_head, wait_until
from tests.support.tus import TUS, cut_patch, offset_of, patches_answered, upload_id

pytestmark = pytest.mark.gunicorn

MiB = 1024 * 1024
SIZE = 8 * MiB


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("live-tus")) as running:
        yield running


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tus-payload") / "payload.bin"
    path.write_bytes(os.urandom(SIZE))
    return path


def tus(server: LiveServer) -> tus_client.TusClient:
    return tus_client.TusClient(server.url("/api/uploads"))


def assert_became_the_drop(server: LiveServer, url: str, payload: Path) -> None:
    info = requests.get(url, timeout=10)
    assert info.status_code == 200, info.text
    drop = info.json()
    content = payload.read_bytes()
    assert (drop["size"], drop["hash"], drop["filename"]) == \
        (SIZE, blake3_hash(content), "payload.bin")
    assert requests.get(drop["url"], timeout=30).content == content
    server.data.assert_consistent()


def test_tuspy_sends_a_whole_file_in_one_patch(server: LiveServer, payload: Path) -> None:
    uploader = tus(server).uploader(str(payload), metadata={"filename": "payload.bin"})
    uploader.upload()
    assert patches_answered(server, uploader.url) == 1
    assert offset_of(server, uploader.url) == SIZE
    assert_became_the_drop(server, uploader.url, payload)


@pytest.mark.parametrize("seed", [11, 12])
def test_cuts_at_random_offsets_keep_every_byte_and_tuspy_resumes(
        server: LiveServer, payload: Path, seed: int) -> None:
    content = payload.read_bytes()
    rng = random.Random(seed)
    created = requests.post(server.url("/api/uploads"), timeout=10, headers={
        **TUS, "Upload-Length": str(SIZE),
        "Upload-Metadata": "filename " + base64.b64encode(b"payload.bin").decode()})
    assert created.status_code == 201, created.text
    url = created.headers["Location"]
    offset = 0
    for cut in range(4):
        send = rng.randrange(1, (SIZE - offset) // 2)
        reset = cut % 2 == 1
        cut_patch(server, url, content, offset, send, reset)
        now_at = offset_of(server, url)
        if reset:  # a reset discards what the server's kernel had not handed over yet
            assert offset <= now_at <= offset + send
        else:  # a clean close delivers every byte sent: each is kept
            assert now_at == offset + send
        offset = now_at
    assert not any(path.suffix == ".part" for path in server.data.staging_files())
    uploader = tus(server).uploader(str(payload), url=url)
    assert uploader.get_offset() == offset
    uploader.upload()
    assert_became_the_drop(server, url, payload)


def test_a_second_patch_while_one_runs_is_423(server: LiveServer, payload: Path) -> None:
    content = payload.read_bytes()
    created = requests.post(server.url("/api/uploads"), timeout=10,
                            headers={**TUS, "Upload-Length": str(SIZE)})
    url = created.headers["Location"]
    running = connect(server)
    try:
        running.sendall(request_head("PATCH", f"/api/uploads/{upload_id(url)}", {
            **TUS, "Upload-Offset": "0", "Content-Length": str(SIZE),
            "Content-Type": "application/offset+octet-stream"}))
        running.sendall(content[:MiB])
        # its bytes reach the staging file once it holds the upload
        assert wait_until(lambda: any(path.stat().st_size >= MiB
                                      for path in server.data.staging_files()), 10)
        for offset in (0, MiB):  # whatever its offset
            second = requests.patch(url, data=b"x", timeout=10, headers={
                **TUS, "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream"})
            assert second.status_code == 423 and second.headers["Tus-Resumable"] == "1.0.0"
        running.sendall(content[MiB:])
        running.settimeout(30)
        status_line = running.recv(4096).split(b"\r\n", 1)[0]
        assert status_line.split()[1] == b"204", status_line
    finally:
        running.close()
    assert offset_of(server, url) == SIZE
    server.data.assert_consistent()


@pytest.mark.entry_points("postgres_meta")
def test_two_hosts_on_one_database_share_an_upload(tmp_path: Path, postgres_dsn: str,
                                                   payload: Path) -> None:
    """Two servers on postgres_meta, their local_storage on one shared filesystem: a PATCH
    on one host locks the upload for the other (423), and the other resumes where a cut
    connection left it, rebuilding the hash from the staged bytes."""
    content = payload.read_bytes()
    for host in ("a", "b"):
        (tmp_path / host).mkdir()
    shared = {"metadata": {"plugin": "postgres_meta"},
              "plugins": {"postgres_meta": {"dsn": postgres_dsn},
                          "local_storage": {"root": str(tmp_path / "shared")}}}
    with live_server(tmp_path / "a", **shared) as a, live_server(tmp_path / "b", **shared) as b:
        created = requests.post(a.url("/api/uploads"), timeout=10, headers={
            **TUS, "Upload-Length": str(SIZE),
            "Upload-Metadata": "filename " + base64.b64encode(b"payload.bin").decode()})
        assert created.status_code == 201, created.text
        on_a = created.headers["Location"]
        on_b = on_a.replace(a.url(""), b.url(""))
        running = connect(a)
        try:
            running.sendall(request_head("PATCH", f"/api/uploads/{upload_id(on_a)}", {
                **TUS, "Upload-Offset": "0", "Content-Length": str(SIZE),
                "Content-Type": "application/offset+octet-stream"}))
            running.sendall(content[:3 * MiB])
            staged = tmp_path / "shared" / "staging"
            assert wait_until(lambda: any(p.stat().st_size >= 3 * MiB
                                          for p in staged.iterdir()), 10)
            refused = requests.patch(on_b, data=b"x", timeout=10, headers={
                **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
            assert refused.status_code == 423
            running.shutdown(socket.SHUT_WR)  # the connection ends after 3 MiB
        finally:
            running.close()
        assert wait_until(lambda: offset_of(b, on_b) == 3 * MiB, 30)
        uploader = tus(b).uploader(str(payload), url=on_b)
        uploader.upload()
        drop = requests.get(on_a, timeout=10).json()
        assert (drop["size"], drop["hash"]) == (SIZE, blake3_hash(content))
        assert requests.get(drop["url"].replace(b.url(""), a.url("")), timeout=30).content \
            == content
        assert list(staged.iterdir()) == []


def test_a_stalled_patch_is_dropped_after_the_idle_timeout_and_keeps_its_bytes(
        tmp_path: Path, payload: Path) -> None:
    content = payload.read_bytes()
    with live_server(tmp_path, limits={"idle_timeout": "2s"}) as server:
        created = requests.post(server.url("/api/uploads"), timeout=10,
                                headers={**TUS, "Upload-Length": str(SIZE)})
        url = created.headers["Location"]
        stalled = connect(server)
        try:
            stalled.sendall(request_head("PATCH", f"/api/uploads/{upload_id(url)}", {
                **TUS, "Upload-Offset": "0", "Content-Length": str(SIZE),
                "Content-Type": "application/offset+octet-stream"}))
            stalled.sendall(content[:12345])  # then nothing
            assert wait_until(lambda: patches_answered(server, url) == 1, 20)
        finally:
            stalled.close()
        assert offset_of(server, url) == 12345
        uploader = tus(server).uploader(str(payload), url=url)
        uploader.upload()
        drop = requests.get(url, timeout=10).json()
        assert (drop["size"], drop["hash"]) == (SIZE, blake3_hash(content))
        server.data.assert_consistent()
