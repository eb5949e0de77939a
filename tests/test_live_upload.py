"""Uploads and downloads through a real gunicorn on a loopback port.

Proves that large files stream in (curl multipart, raw PUT, chunked PUT without a length)
and come back byte for byte with the hash the server recorded; that a full download and a
range download send exactly the right bytes; and that concurrent clients across two worker
processes get distinct drops, one winner for a contested custom slug and one winner for the
last download. After each scenario the data dir holds exactly one file per record and no
staging debris.
"""

from __future__ import annotations

import json
import os
import subprocess
from contextlib import closing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.live_server import (LiveServer, connect, live_server, multipart, read_responses,
                               request_head)
from tests.support.live import assert_stored, run_concurrently

pytestmark = pytest.mark.gunicorn

MiB = 1024 * 1024
BIG = 64 * MiB
JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("live-upload")) as running:
        yield running


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("payload") / "big.bin"
    path.write_bytes(os.urandom(BIG))
    return path


@pytest.fixture(scope="module")
def big_put(server: LiveServer, big_file: Path) -> dict[str, Any]:
    """The 64 MiB file sent as a raw PUT (requests sets Content-Length from the file)."""
    with big_file.open("rb") as f:
        response = server.request("PUT", "/big.bin", data=f, headers=JSON)
    assert response.status_code == 201, response.text
    return response.json()


def curl(*args: str) -> tuple[int, str]:
    """Run curl; its HTTP status and body."""
    done = subprocess.run(["curl", "-sS", "--noproxy", "*", "--max-time", "60",
                           "-w", "\n%{http_code}", *args],
                          capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def test_curl_multipart_upload_of_64mib_round_trips(server: LiveServer, big_file: Path) -> None:
    status, body = curl("-H", "Accept: application/json",
                        "-F", f"file=@{big_file};filename=big.bin", server.url("/"))
    assert status == 201, body
    drop = json.loads(body)
    assert drop["filename"] == "big.bin"
    assert_stored(server, drop, big_file.read_bytes())
    server.data.assert_consistent()


def test_raw_put_of_64mib_round_trips(server: LiveServer, big_file: Path,
                                      big_put: dict[str, Any]) -> None:
    assert big_put["filename"] == "big.bin"
    assert_stored(server, big_put, big_file.read_bytes())
    server.data.assert_consistent()


def test_chunked_put_from_a_generator_has_no_content_length(server: LiveServer) -> None:
    # Uneven pieces, so chunk boundaries never line up with the server's reads.
    pieces = [os.urandom(n) for n in (1, 300_000, MiB + 7, 3 * MiB, 12_345)]
    response = server.request("PUT", "/gen.bin", data=iter(pieces), headers=JSON)
    assert response.status_code == 201, response.text
    sent = response.request.headers
    assert "Content-Length" not in sent and sent["Transfer-Encoding"] == "chunked"
    assert_stored(server, response.json(), b"".join(pieces))
    server.data.assert_consistent()


def test_chunked_put_with_curl_from_stdin(server: LiveServer, tmp_path: Path) -> None:
    content = os.urandom(5 * MiB + 3)
    source = tmp_path / "stdin.bin"
    source.write_bytes(content)
    with source.open("rb") as stdin:
        done = subprocess.run(["curl", "-sS", "--noproxy", "*", "--max-time", "60",
                               "-H", "Accept: application/json",
                               "-H", "Transfer-Encoding: chunked",
                               "-T", "-", server.url("/piped.bin")],
                              stdin=stdin, capture_output=True, text=True, timeout=90,
                              check=False)
    assert done.returncode == 0, done.stderr
    drop = json.loads(done.stdout)
    assert drop["filename"] == "piped.bin"
    assert_stored(server, drop, content)
    server.data.assert_consistent()


@pytest.mark.parametrize("sizes", [(10, 20), (3 * MiB + 1, 5), (1, 2 * MiB), (1, 1), (0, 0)],
                         ids=["small", "big-then-small", "small-then-big", "tiny", "empty"])
def test_pipelined_uploads_on_one_connection_each_keep_their_bytes(
        server: LiveServer, sizes: tuple[int, int]) -> None:
    """Bodies of known length are received straight from gunicorn's socket: a request sent
    in the same packets as the previous body must still start where it should."""
    first, second = (os.urandom(n) for n in sizes)
    head, tail = multipart("b0undary", "second.bin")
    form = head + second + tail
    wire = (request_head("PUT", "/first.bin", {"Content-Length": str(len(first)), **JSON})
            + first
            + request_head("POST", "/", {"Content-Length": str(len(form)), **JSON,
                                         "Content-Type": "multipart/form-data; boundary=b0undary"})
            + form
            + request_head("GET", "/healthz", {}))
    with closing(connect(server)) as sock:
        sock.sendall(wire)
        responses = read_responses(sock, 3)
    assert [status for status, _ in responses] == [201, 201, 200], responses
    assert_stored(server, json.loads(responses[0][1]), first)
    assert_stored(server, json.loads(responses[1][1]), second)
    server.data.assert_consistent()


@pytest.mark.parametrize("spec, start, end", [
    ("bytes=0-0", 0, 0),
    ("bytes=1000-2000999", 1000, 2000999),
    (f"bytes={BIG - 100}-", BIG - 100, BIG - 1),
    ("bytes=-4096", BIG - 4096, BIG - 1),
])
def test_range_request_returns_the_exact_slice(server: LiveServer, big_file: Path,
                                               big_put: dict[str, Any], spec: str, start: int,
                                               end: int) -> None:
    response = server.request("GET", f"/{big_put['slug']}", headers={"Range": spec})
    assert response.status_code == 206
    with big_file.open("rb") as f:
        f.seek(start)
        expected = f.read(end - start + 1)
    assert response.content == expected
    assert int(response.headers["Content-Length"]) == len(expected)
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/{BIG}"


def test_unsatisfiable_range_is_416(server: LiveServer, big_put: dict[str, Any]) -> None:
    response = server.request("GET", f"/{big_put['slug']}", headers={"Range": f"bytes={BIG}-"})
    assert response.status_code == 416
    assert response.headers.get("Content-Range") == f"bytes */{BIG}"


def test_parallel_uploads_get_distinct_slugs_and_keep_their_bytes(server: LiveServer) -> None:
    n = 16
    contents = [os.urandom(2 * MiB) + bytes([i]) for i in range(n)]
    before = server.data.snapshot()

    def upload(i: int) -> requests.Response:
        if i % 2:
            return server.request("PUT", f"/par{i}.bin", data=contents[i], headers=JSON)
        return server.request("POST", "/", files={"file": (f"par{i}.bin", contents[i])},
                              headers=JSON)

    responses = run_concurrently(n, upload)
    assert [r.status_code for r in responses] == [201] * n
    drops = [r.json() for r in responses]
    assert len({d["slug"] for d in drops}) == n
    for drop, content in zip(drops, contents):
        assert_stored(server, drop, content)
    after = server.data.snapshot()
    assert set(after.records) - set(before.records) == {d["slug"] for d in drops}
    assert len(after.blobs - before.blobs) == n
    server.data.assert_consistent()


@pytest.mark.parametrize("where", ["form field after the file", "query parameter"])
def test_contested_custom_slug_has_exactly_one_winner(server: LiveServer, where: str) -> None:
    n = 20
    slug = "race-" + where.split()[0]
    contents = [os.urandom(256 * 1024) + bytes([i]) for i in range(n)]
    before = server.data.snapshot()

    def upload(i: int) -> requests.Response:
        # The form field comes after the file, so every contender streams its whole body
        # before the slug is checked: losers must discard a fully staged file.
        if where == "query parameter":
            return server.request("POST", f"/?slug={slug}", headers=JSON,
                                  files={"file": ("r.bin", contents[i])})
        return server.request("POST", "/", headers=JSON,
                              files=[("file", ("r.bin", contents[i])), ("slug", (None, slug))])

    responses = run_concurrently(n, upload)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (n - 1), [r.text for r in responses]
    for loser in (r for r in responses if r.status_code == 409):
        assert loser.json()["error"]["code"] == "slug_taken"
    won = next(i for i, r in enumerate(responses) if r.status_code == 201)
    winner = responses[won].json()
    assert winner["slug"] == slug
    assert_stored(server, winner, contents[won])
    server.data.assert_consistent()
    after = server.data.snapshot()
    assert set(after.records) - set(before.records) == {slug}
    assert after.blobs - before.blobs == {after.records[slug]}


def test_last_download_goes_to_exactly_one_client(server: LiveServer) -> None:
    content = os.urandom(4 * MiB)
    created = server.request("PUT", "/once.bin?max_downloads=1", data=content, headers=JSON)
    assert created.status_code == 201, created.text
    slug = created.json()["slug"]

    responses = run_concurrently(10, lambda i: server.request("GET", f"/{slug}"))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [410] * 9
    winner = next(r for r in responses if r.status_code == 200)
    assert winner.content == content
    record = server.data.record(slug)
    assert record is not None and record["downloads"] == 1
    # Exhausted, not yet collected: the record keeps its file until gc removes both.
    assert server.data.blob_path(record["blob_id"]).stat().st_size == len(content)
    assert server.request("GET", f"/{slug}").status_code == 410
    server.data.assert_consistent()
