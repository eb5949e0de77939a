"""Resumable uploads on s3_storage and postgres_meta, against live gunicorn hosts sharing
one SeaweedFS bucket and one PostgreSQL database, with a real tus client (tuspy): a whole
file in one PATCH; connections cut inside a part and exactly at a part's edge, each resumed
on the other host; a host SIGKILLed mid-PATCH and the upload finished on another; a PATCH
on one host while one runs on another is 423; termination and gc of an expired upload
leave nothing of it in the bucket, and gc's sweep of stale multipart uploads leaves a live
resumable upload's alone. Each drop is checked byte for byte and by its blake3 hash, and
the bucket from outside: no multipart upload in progress, no tail object left, every
object its record's. Parts are 5 MiB (S3's smallest), files 12 MiB (three parts)."""

from __future__ import annotations

import base64
import os
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from tusclient import client as tus_client

from tests.http_helpers import blake3_hash
from tests.live_server import LiveServer, connect, request_head, wait_until
from tests.services.postgres import PostgresServer
from tests.services.seaweedfs import SeaweedFS, seaweedfs  # noqa: F401
from tests.support.hosts import BACKEND_ENTRY_POINTS, SharedBackends, host, hosts, \
    shared_backends
from tests.support.tus import TUS, cut_patch, offset_of, patches_answered, upload_id

pytestmark = [pytest.mark.gunicorn, pytest.mark.entry_points(*BACKEND_ENTRY_POINTS)]

MiB = 1024 * 1024
PART = 5 * MiB
SIZE = 12 * MiB + 4321


@pytest.fixture(scope="module")
def backends(seaweedfs: SeaweedFS, postgres_server: PostgresServer,  # noqa: F811
             ) -> Iterator[SharedBackends]:
    with shared_backends(seaweedfs.endpoint, postgres_server, f"{PART // MiB}MiB") as shared:
        yield shared


@pytest.fixture(scope="module")
def cluster(backends: SharedBackends, tmp_path_factory: pytest.TempPathFactory,
            ) -> Iterator[dict[str, LiveServer]]:
    with hosts(backends, tmp_path_factory.mktemp("tus-hosts"), ("a", "b")) as running:
        yield running


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tus-s3-payload") / "payload.bin"
    path.write_bytes(os.urandom(SIZE))
    return path


def create(server: LiveServer, length: int = SIZE) -> str:
    created = requests.post(server.url("/api/uploads"), timeout=10, headers={
        **TUS, "Upload-Length": str(length),
        "Upload-Metadata": "filename " + base64.b64encode(b"payload.bin").decode()})
    assert created.status_code == 201, created.text
    return str(created.headers["Location"])


def on(server: LiveServer, url: str) -> str:
    """The same upload's URL on another host."""
    return server.url(f"/api/uploads/{upload_id(url)}")


def upload_row(backends: SharedBackends, url: str) -> dict[str, Any]:
    with psycopg.connect(backends.dsn, connect_timeout=5) as conn:
        row = conn.execute("SELECT blob_id, \"offset\", storage_state, lease_until "
                           "FROM uploads WHERE id = %s", (upload_id(url),)).fetchone()
    assert row is not None
    return dict(zip(("blob_id", "offset", "storage_state", "lease_until"), row, strict=True))


def traces_of(backends: SharedBackends, blob_id: str) -> list[str]:
    """Every object and multipart upload in the bucket that belongs to ``blob_id``."""
    return [key for key in [*backends.objects(), *backends.multipart_uploads()]
            if blob_id in key]


def assert_became_the_drop(server: LiveServer, url: str, content: bytes) -> None:
    info = requests.get(url, timeout=10)
    assert info.status_code == 200, info.text
    drop = info.json()
    assert (drop["size"], drop["hash"], drop["filename"]) == \
        (len(content), blake3_hash(content), "payload.bin")
    assert requests.get(drop["url"], timeout=30).content == content


def test_tuspy_sends_a_whole_file_in_one_patch(cluster: dict[str, LiveServer],
                                               backends: SharedBackends, payload: Path) -> None:
    a = cluster["a"]
    uploader = tus_client.TusClient(a.url("/api/uploads")).uploader(
        str(payload), metadata={"filename": "payload.bin"})
    uploader.upload()
    assert patches_answered(a, uploader.url) == 1
    assert offset_of(a, uploader.url) == SIZE
    assert_became_the_drop(a, uploader.url, payload.read_bytes())
    backends.assert_consistent()


@pytest.mark.parametrize("seed", [21, 22])
def test_cuts_inside_a_part_and_at_its_edge_resume_on_the_other_host(
        cluster: dict[str, LiveServer], backends: SharedBackends, payload: Path,
        seed: int) -> None:
    """Each cut is a clean close (every byte sent is delivered, so each is kept) or a reset
    (what the kernel had not handed over is lost, and the offset says so); each resume goes
    to the other host, which never holds the hasher of the one before."""
    content = payload.read_bytes()
    rng = random.Random(seed)
    servers = [cluster["a"], cluster["b"]]
    url = create(servers[0])
    offset = 0
    ends = [rng.randrange(1, PART), PART, PART + rng.randrange(1, PART), 2 * PART + 1]
    for turn, end in enumerate(ends):
        server = servers[turn % 2]
        reset = turn == 2
        cut_patch(server, on(server, url), content, offset, end - offset, reset)
        now_at = offset_of(servers[(turn + 1) % 2], on(servers[(turn + 1) % 2], url))
        if reset:
            assert offset <= now_at <= end
        else:
            assert now_at == end
        assert upload_row(backends, url)["offset"] == now_at  # the record is the truth
        offset = now_at
    last = servers[len(ends) % 2]
    uploader = tus_client.TusClient(last.url("/api/uploads")).uploader(
        str(payload), url=on(last, url))
    assert uploader.get_offset() == offset
    uploader.upload()
    assert_became_the_drop(last, on(last, url), content)
    backends.assert_consistent()


def test_a_patch_while_one_runs_on_another_host_is_423(
        cluster: dict[str, LiveServer], backends: SharedBackends, payload: Path) -> None:
    content = payload.read_bytes()
    a, b = cluster["a"], cluster["b"]
    url = create(a)
    running = connect(a)
    try:
        running.sendall(request_head("PATCH", f"/api/uploads/{upload_id(url)}", {
            **TUS, "Upload-Offset": "0", "Content-Length": str(SIZE),
            "Content-Type": "application/offset+octet-stream"}))
        running.sendall(content[:PART + 123])
        assert wait_until(lambda: upload_row(backends, url)["lease_until"] > 0, 10)
        for offset in ("0", str(PART + 123)):
            refused = requests.patch(on(b, url), data=b"x", timeout=10, headers={
                **TUS, "Upload-Offset": offset,
                "Content-Type": "application/offset+octet-stream"})
            assert refused.status_code == 423, refused.text
        running.shutdown(socket.SHUT_WR)
    finally:
        running.close()
    assert wait_until(lambda: offset_of(b, on(b, url)) == PART + 123, 30)
    assert requests.delete(on(b, url), headers=TUS, timeout=10).status_code == 204


def test_a_host_killed_mid_patch_leaves_the_upload_to_finish_on_another(
        cluster: dict[str, LiveServer], backends: SharedBackends, payload: Path,
        tmp_path: Path) -> None:
    """The killed host's PATCH recorded nothing: the upload goes on from the record before
    it once its lease (idle_timeout + 30 s) runs out — here moved to the past in the
    database rather than waited for; what the killed PATCH sent to the bucket is
    overwritten or left out of the completed object."""
    content = payload.read_bytes()
    a, b = cluster["a"], cluster["b"]
    url = create(a)
    cut_patch(a, url, content, 0, 2 * MiB + 7, reset=False)
    with host(backends, tmp_path / "doomed") as doomed:
        sock = connect(doomed, timeout=60)
        try:
            sock.sendall(request_head("PATCH", f"/api/uploads/{upload_id(url)}", {
                **TUS, "Upload-Offset": str(2 * MiB + 7),
                "Content-Length": str(SIZE - 2 * MiB - 7),
                "Content-Type": "application/offset+octet-stream"}))
            sock.sendall(content[2 * MiB + 7:9 * MiB])
            blob_key = backends.blob_key(upload_row(backends, url)["blob_id"])
            client = backends.endpoint.client()
            (upload,) = [u for u in client.list_multipart_uploads(Bucket=backends.bucket)
                         ["Uploads"] if u["Key"] == blob_key]
            assert wait_until(lambda: client.list_parts(
                Bucket=backends.bucket, Key=blob_key, UploadId=upload["UploadId"]
            ).get("Parts"), 20)  # the killed PATCH has sent a part
            assert upload_row(backends, url)["offset"] == 2 * MiB + 7  # and recorded nothing
            doomed.kill()
        finally:
            sock.close()
    assert offset_of(b, on(b, url)) == 2 * MiB + 7
    held = requests.patch(on(b, url), data=content[2 * MiB + 7:], timeout=10, headers={
        **TUS, "Upload-Offset": str(2 * MiB + 7),
        "Content-Type": "application/offset+octet-stream"})
    assert held.status_code == 423  # the dead host's lease holds until it runs out
    with psycopg.connect(backends.dsn, connect_timeout=5) as conn:
        conn.execute("UPDATE uploads SET lease_until = 1 WHERE id = %s", (upload_id(url),))
    uploader = tus_client.TusClient(b.url("/api/uploads")).uploader(str(payload),
                                                                    url=on(b, url))
    uploader.upload()
    assert_became_the_drop(b, on(b, url), content)
    backends.assert_consistent()


def test_termination_leaves_nothing_in_the_bucket(
        cluster: dict[str, LiveServer], backends: SharedBackends, payload: Path) -> None:
    content = payload.read_bytes()
    a, b = cluster["a"], cluster["b"]
    url = create(a)
    cut_patch(a, url, content, 0, PART + 999, reset=False)
    blob_id = upload_row(backends, url)["blob_id"]
    assert len(traces_of(backends, blob_id)) == 3  # the multipart upload, two tails
    assert requests.delete(on(b, url), headers=TUS, timeout=10).status_code == 204
    assert traces_of(backends, blob_id) == []
    assert requests.head(url, headers=TUS, timeout=10).status_code == 404
    backends.assert_consistent()


def test_gc_removes_an_expired_upload_and_never_aborts_a_live_one(
        cluster: dict[str, LiveServer], backends: SharedBackends, payload: Path) -> None:
    content = payload.read_bytes()
    a, b = cluster["a"], cluster["b"]
    expired, live = create(a), create(a)
    for url in (expired, live):
        cut_patch(a, url, content, 0, PART + 999, reset=False)
    expired_blob, live_blob = (upload_row(backends, url)["blob_id"] for url in (expired, live))
    with psycopg.connect(backends.dsn, connect_timeout=5) as conn:
        conn.execute("UPDATE uploads SET expires_at = 1 WHERE id = %s", (upload_id(expired),))
    time.sleep(1.1)  # the live upload's multipart upload is older than the age gc is given
    done = b.cli("gc", "--staging-older-than", "1s")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert upload_id(expired) in done.stdout and live_blob not in done.stdout
    assert traces_of(backends, expired_blob) == []
    assert len(traces_of(backends, live_blob)) == 3
    uploader = tus_client.TusClient(b.url("/api/uploads")).uploader(str(payload),
                                                                    url=on(b, live))
    uploader.upload()
    assert_became_the_drop(b, on(b, live), content)
    backends.assert_consistent()
