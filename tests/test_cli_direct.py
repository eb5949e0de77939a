"""``teledrop upload`` by direct upload against a WSGI host on s3_storage + postgres_meta
(the real SeaweedFS and PostgreSQL of tests/services), the bucket reached through a proxy
that counts the part bytes it receives and cuts parts where a test says: the parts go in
parallel (never more at once than --parallel) and each once; a part cut once is sent
again; a run that gave up leaves the stored parts' ETags behind and the same command then
sends only the missing parts; a completion the server refuses prints its reason and
leaves nothing in the bucket. A host on local storage answers 501 and the client goes on
over tus.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.live_server import LiveServer, live_server
from tests.services.postgres import PostgresServer
from tests.services.seaweedfs import S3Endpoint
from tests.support.command import clean_env, state_files, teledrop, write  # noqa: F401
from tests.support.cut_proxy import CutProxy
from tests.support.hosts import SharedBackends, host, shared_backends

MiB = 1024 * 1024
PART = 5 * MiB
SIZE = 5 * PART - 3 * MiB  # five parts, the last one short

pytestmark = pytest.mark.gunicorn


@pytest.fixture(scope="module")
def bucket_proxy(s3_server: S3Endpoint) -> Iterator[CutProxy]:
    """Every request to the bucket, the host's and the client's, goes through here."""
    address = urlsplit(s3_server.url)
    with CutProxy((address.hostname or "127.0.0.1", address.port or 80), method="PUT") as proxy:
        yield proxy


@pytest.fixture(scope="module")
def backends(s3_server: S3Endpoint, postgres_server: PostgresServer,
             bucket_proxy: CutProxy) -> Iterator[SharedBackends]:
    with shared_backends(s3_server, postgres_server, "5MiB") as shared:
        yield replace(shared, endpoint=replace(shared.endpoint, url=bucket_proxy.url))


@pytest.fixture(scope="module")
def server(backends: SharedBackends, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[LiveServer]:
    with host(backends, tmp_path_factory.mktemp("direct-host")) as running:
        yield running


@pytest.fixture
def proxy(bucket_proxy: CutProxy, server: LiveServer) -> CutProxy:
    bucket_proxy.reset()
    return bucket_proxy


@pytest.fixture(scope="module")
def content() -> bytes:
    return os.urandom(SIZE)


@pytest.fixture
def payload(tmp_path: Path, content: bytes) -> Path:
    return write(tmp_path, "direct.bin", content)


def upload(server: LiveServer, payload: Path, *args: str) -> tuple[int, str, str]:
    out = teledrop("process", "upload", str(payload), "--json", "--server", server.base_url,
                   *args)
    return out.code, out.stdout, out.stderr


def assert_is_the_drop(server: LiveServer, backends: SharedBackends, stdout: str,
                       content: bytes) -> None:
    """The drop downloads as ``content``, and bucket and database agree."""
    drop = json.loads(stdout)
    assert drop["size"] == len(content) and drop["delete_token"]
    with requests.Session() as session:
        session.trust_env = False
        response = session.get(server.url(f"/{drop['slug']}"), timeout=60)
    assert response.status_code == 200, response.text
    assert response.content == content
    backends.assert_consistent()
    assert state_files() == []


def test_parts_go_in_parallel_each_once(server: LiveServer, backends: SharedBackends,
                                        proxy: CutProxy, payload: Path,
                                        content: bytes) -> None:
    proxy.pace = 0.01  # each part takes long enough for the others to overlap it
    code, stdout, stderr = upload(server, payload, "--parallel", "3", "--slug", "direct-par")
    assert code == 0, stderr
    assert proxy.body_bytes["PUT"] == SIZE  # every byte went to the bucket, and once
    assert proxy.most_at_once == 3
    assert json.loads(stdout)["slug"] == "direct-par"
    assert not any(line["method"] in ("PUT", "PATCH") for line in server.access_lines())
    assert_is_the_drop(server, backends, stdout, content)


def test_a_part_cut_once_is_sent_again(server: LiveServer, backends: SharedBackends,
                                       proxy: CutProxy, payload: Path, content: bytes) -> None:
    proxy.cut_after = PART + 2 * MiB  # in the second part
    code, stdout, stderr = upload(server, payload, "--parallel", "1")
    assert code == 0, stderr
    assert proxy.cuts == 1
    assert "part 2: " in stderr and "trying again" in stderr
    assert proxy.body_bytes["PUT"] == SIZE + 2 * MiB  # the cut part's first 2 MiB, twice
    assert_is_the_drop(server, backends, stdout, content)


def test_a_run_that_gave_up_is_continued_with_the_missing_parts_only(
        server: LiveServer, backends: SharedBackends, proxy: CutProxy, payload: Path,
        content: bytes) -> None:
    proxy.cut_after = 2 * PART + MiB  # in the third part, then the bucket is unreachable
    proxy.refuse_after_cut = True
    code, _, stderr = upload(server, payload, "--parallel", "1", "--retries", "2")
    assert code == 1
    error = stderr.splitlines()[-1]
    assert "3 of 5 parts are not on the server yet" in error
    assert "run the same command again" in error
    [state] = state_files()
    assert sorted(json.loads(state.read_text())["etags"]) == ["1", "2"]
    proxy.refusing = False
    code, stdout, stderr = upload(server, payload, "--parallel", "2")
    assert code == 0, stderr
    assert "continuing an earlier upload: 2 of 5 parts are on the server" in stderr
    assert proxy.body_bytes["PUT"] == SIZE + MiB  # only the cut part's first MiB twice
    assert_is_the_drop(server, backends, stdout, content)


def test_a_refused_completion_prints_the_reason_and_leaves_nothing(
        server: LiveServer, backends: SharedBackends, proxy: CutProxy, payload: Path) -> None:
    proxy.cut_after = 2 * PART
    proxy.refuse_after_cut = True
    code, _, _ = upload(server, payload, "--parallel", "1", "--retries", "1")
    assert code == 1
    [state] = state_files()
    record = json.loads(state.read_text())
    # A client that claims parts the bucket never got: the server's own listing says no.
    record["etags"] = {str(n): '"0123456789abcdef0123456789abcdef"' for n in range(1, 6)}
    state.write_text(json.dumps(record))
    proxy.refusing = False
    code, stdout, stderr = upload(server, payload)
    assert code == 1 and stdout == ""
    error = stderr.splitlines()[-1]
    assert error.startswith(f"Error: {payload}: the server refused the upload: "), error
    assert "parts" in error
    assert state_files() == []
    backends.assert_consistent()


def test_a_storage_that_cannot_presign_falls_back_to_tus(
        tmp_path: Path, payload: Path, content: bytes) -> None:
    (tmp_path / "local").mkdir()
    with live_server(tmp_path / "local", server={"workers": 1}) as local, \
            CutProxy((local.address, local.port)) as counted:
        out = teledrop("process", "upload", str(payload), "--json", "--server", counted.url)
        assert out.code == 0, out.stderr
        assert out.stderr == ""
        assert counted.body_bytes["PATCH"] == SIZE
        drop = json.loads(out.stdout)
        local.data.assert_holds(drop["slug"], content)
        statuses = {(line["method"], line["path"]): line["status"]
                    for line in local.access_lines()}
        assert statuses[("POST", "/api/direct-uploads")] == 501
    assert state_files() == []
