"""Three teledrop hosts on one bucket and one database: every race settled across hosts,
every fault (a host killed or cut off the network, the database or the object store
stopped) survived, and the invariants checked from outside after each test — no object
without its record, no record without its object, no multipart upload left in progress.

The hosts are separate ``teledrop serve`` processes, each run from a directory of its own
with a config of its own (one worker of four threads), sharing only a SeaweedFS bucket and
a PostgreSQL database that this session started (the fault tests stop and start them).
Part size is 5 MiB, S3's minimum, so files of a few MiB are multipart uploads. The host
cut off the network runs in a network namespace of its own (root, as under ``make test``).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.live_server import LiveServer, connect, read_response, request_head, \
    send_until_answered, wait_until
from tests.services.postgres import ThrowawayPostgres
from tests.services.seaweedfs import SeaweedFS, seaweedfs  # noqa: F401
from tests.support.hosts import BACKEND_ENTRY_POINTS, JSON, SharedBackends, Traffic, \
    cli_at_once, host, hosts, shared_backends
from tests.support.netns import Relay, network_namespace

pytestmark = [pytest.mark.gunicorn, pytest.mark.entry_points(*BACKEND_ENTRY_POINTS)]

MiB = 1024 * 1024
PART = 5 * MiB
#: Seconds every host has to be serving again once a backend is back.
RECOVERY = 20.0


@pytest.fixture(scope="module")
def backends(seaweedfs: SeaweedFS, restartable_postgres: ThrowawayPostgres,  # noqa: F811
             ) -> Iterator[SharedBackends]:
    with shared_backends(seaweedfs.endpoint, restartable_postgres, f"{PART // MiB}MiB") as shared:
        yield shared


@pytest.fixture(scope="module")
def cluster(backends: SharedBackends, tmp_path_factory: pytest.TempPathFactory,
            ) -> Iterator[dict[str, LiveServer]]:
    with hosts(backends, tmp_path_factory.mktemp("hosts"), ("a", "b", "c")) as running:
        yield running


def put(server: LiveServer, content: bytes, name: str = "file.bin", **query: str,
        ) -> requests.Response:
    return server.request("PUT", f"/{name}", data=content, params=query, headers=JSON)


def created(server: LiveServer, content: bytes, **query: str) -> dict[str, Any]:
    response = put(server, content, **query)
    assert response.status_code == 201, response.text
    return response.json()


def at_once(count: int, call: Callable[[int], requests.Response]) -> list[requests.Response]:
    """``call(0)`` … ``call(count - 1)`` on threads released together."""
    barrier = threading.Barrier(count)

    def run(index: int) -> requests.Response:
        barrier.wait()
        return call(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def spread(cluster: dict[str, LiveServer], count: int) -> list[LiveServer]:
    """``count`` servers, round robin over the hosts."""
    servers = list(cluster.values())
    return [servers[i % len(servers)] for i in range(count)]


def one_line(text: str) -> str:
    assert text.count("\n") <= 1 and "Traceback" not in text, text
    return text.strip()


def test_upload_on_one_host_ranged_download_on_another_delete_on_a_third(
        cluster: dict[str, LiveServer], backends: SharedBackends) -> None:
    a, b, c = cluster["a"], cluster["b"], cluster["c"]
    content = os.urandom(2 * PART + 12345)  # three parts
    drop = created(a, content)
    record = backends.record(drop["slug"])
    assert record is not None
    key = backends.blob_key(record["blob_id"])
    assert backends.objects()[key] == len(content)

    first, last = PART - 100, 2 * PART + 99  # across both part boundaries
    ranged = b.request("GET", f"/{drop['slug']}", headers={"Range": f"bytes={first}-{last}"})
    assert ranged.status_code == 206
    assert ranged.headers["Content-Range"] == f"bytes {first}-{last}/{len(content)}"
    assert ranged.content == content[first:last + 1]

    deleted = c.request("DELETE", f"/{drop['slug']}",
                        headers={"X-Delete-Token": drop["delete_token"]})
    assert deleted.status_code == 204
    for server in (a, b):
        assert server.request("GET", f"/{drop['slug']}").status_code == 404
    assert key not in backends.objects()
    assert backends.record(drop["slug"]) is None
    backends.assert_consistent()


def test_a_custom_slug_raced_across_hosts_has_one_winner_and_nothing_of_the_losers(
        cluster: dict[str, LiveServer], backends: SharedBackends) -> None:
    slug = f"race-{uuid.uuid4().hex[:8]}"
    contents = [os.urandom(PART + MiB) for _ in range(9)]  # each a multipart upload
    servers = spread(cluster, len(contents))
    responses = at_once(len(contents), lambda i: put(servers[i], contents[i], slug=slug))
    statuses = [response.status_code for response in responses]
    assert sorted(statuses) == [201] + [409] * 8, [r.text for r in responses]
    winner = statuses.index(201)
    for response in responses:
        if response.status_code == 409:
            assert response.json()["error"]["code"] == "slug_taken"
    # Nothing of a loser is left once it has its answer: no waiting for a clean-up.
    backends.assert_consistent(timeout=0)
    assert [r["slug"] for r in backends.records()].count(slug) == 1
    for server in cluster.values():
        assert server.request("GET", f"/{slug}").content == contents[winner]


def test_the_last_downloads_raced_across_hosts_are_served_exactly_max_downloads_times(
        cluster: dict[str, LiveServer], backends: SharedBackends) -> None:
    content = os.urandom(100_000)
    drop = created(cluster["a"], content, max_downloads="3")
    servers = spread(cluster, 12)
    responses = at_once(len(servers), lambda i: servers[i].request("GET", f"/{drop['slug']}"))
    assert sorted(r.status_code for r in responses) == [200] * 3 + [410] * 9
    assert all(r.content == content for r in responses if r.status_code == 200)
    record = backends.record(drop["slug"])
    assert record is not None and record["downloads"] == 3
    backends.assert_consistent()


def test_wrong_passwords_are_counted_across_hosts(cluster: dict[str, LiveServer],
                                                  backends: SharedBackends) -> None:
    a, b, c = cluster["a"], cluster["b"], cluster["c"]
    content = b"behind a password\n"
    upload = a.request("PUT", "/secret.txt", data=content,
                       headers={**JSON, "X-Drop-Password": "right horse"})
    assert upload.status_code == 201, upload.text
    drop = upload.json()

    def attempt(server: LiveServer, password: str) -> requests.Response:
        return server.request("GET", f"/{drop['slug']}",
                              headers={**JSON, "X-Drop-Password": password})

    assert attempt(b, "right horse").content == content  # a right one is not counted
    for server in (a, b, c, a, b):
        wrong = attempt(server, "wrong")
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "password_required"
    sixth = attempt(c, "wrong")
    assert sixth.status_code == 429 and sixth.json()["error"]["code"] == "too_many_attempts"
    assert int(sixth.headers["Retry-After"]) > 0
    for server in (a, b):  # within the minute, even the right password waits
        assert attempt(server, "right horse").status_code == 429
    backends.assert_consistent()


def removed_drops(stdout: str) -> list[str]:
    return [line.split()[2] for line in stdout.splitlines() if line.startswith("removed drop ")]


def test_gc_on_two_hosts_at_once_removes_each_expired_drop_exactly_once(
        cluster: dict[str, LiveServer], backends: SharedBackends) -> None:
    servers = spread(cluster, 6)
    sizes = [PART + MiB, 10, 2000, PART + 1, 0, 70_000]
    slugs = {created(server, os.urandom(size), expires="1s")["slug"]
             for server, size in zip(servers, sizes, strict=True)}
    assert wait_until(lambda: all(cluster["a"].request("GET", f"/{slug}").status_code == 410
                                  for slug in slugs), 5)
    results = cli_at_once([cluster["a"], cluster["b"]], "gc")
    for result in results:
        assert (result.returncode, result.stderr) == (0, "")
    removed = [slug for result in results for slug in removed_drops(result.stdout)]
    assert len(removed) == len(set(removed)), "a drop was removed twice"
    assert slugs <= set(removed)
    assert not {r["slug"] for r in backends.records()} & slugs
    backends.assert_consistent()


def start_upload(server: LiveServer, declared: int, sent: int) -> socket.socket:
    """A raw PUT declaring ``declared`` bytes, of which ``sent`` are sent; its socket."""
    sock = connect(server, timeout=60)
    sock.sendall(request_head("PUT", "/big.bin", {"Content-Length": str(declared),
                                                  "Accept": "application/json"}))
    sock.sendall(os.urandom(sent))
    return sock


def test_a_host_killed_mid_upload_leaves_only_what_gc_on_another_host_removes(
        cluster: dict[str, LiveServer], backends: SharedBackends, tmp_path: Path) -> None:
    with Traffic(cluster) as traffic, host(backends, tmp_path / "d") as doomed:
        sock = start_upload(doomed, 8 * PART, 3 * PART)
        try:
            # Two parts are uploaded, the third is filling: a multipart upload is open.
            assert wait_until(backends.multipart_uploads, 10)
            doomed.kill()
        finally:
            sock.close()
        debris = backends.multipart_uploads()
        assert len(debris) == 1
        time.sleep(1.1)  # older than the age gc is given
        done = cluster["a"].cli("gc", "--staging-older-than", "1s")
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        assert [line for line in done.stdout.splitlines() if "staging" in line] \
            and debris[0].rsplit("/", 1)[1] in done.stdout
        time.sleep(0.5)  # traffic goes on after gc
    assert traffic.statuses() == {200, 201}
    assert all(outcome.intact for outcome in traffic.outcomes)
    backends.assert_consistent()


def test_the_database_stopped_mid_traffic_is_503_then_every_host_recovers_by_itself(
        cluster: dict[str, LiveServer], backends: SharedBackends,
        restartable_postgres: ThrowawayPostgres) -> None:
    kept = os.urandom(50_000)
    drop = created(cluster["a"], kept)
    workers = {name: server.worker_pids() for name, server in cluster.items()}
    with Traffic(cluster) as traffic:
        time.sleep(0.3)
        restartable_postgres.stop()
        try:
            for name, server in cluster.items():
                health = server.request("GET", "/healthz", timeout=15)
                assert health.status_code == 503, name
                assert health.json()["status"] == "unavailable"
                assert health.json()["error"]["code"] == "metadata_unavailable"
                assert "connection" in one_line(health.json()["error"]["message"])
                for response in (put(server, os.urandom(PART + 1)) if name == "a"
                                 else server.request("PUT", "/x.bin", data=b"x"),
                                 server.request("GET", f"/{drop['slug']}")):
                    assert response.status_code == 503, response.text
                    reason = one_line(response.text)
                    assert "metadata store error" in reason and "connection" in reason
        finally:
            restartable_postgres.start()
        for server in cluster.values():
            assert wait_until(server.healthy, RECOVERY), server.log()[-2000:]
        time.sleep(0.5)
    for up, down in zip(cluster.values(), [*list(cluster.values())[1:], cluster["a"]],
                        strict=True):
        content = os.urandom(PART + 7)
        assert down.request("GET", f"/{created(up, content)['slug']}").content == content
        assert down.request("GET", f"/{drop['slug']}").content == kept
    assert traffic.statuses() <= {200, 201, 503}
    assert traffic.outcomes[-1].status in (200, 201), "traffic did not recover"
    # Recovered by the same processes: no worker died or was replaced.
    assert {name: server.worker_pids() for name, server in cluster.items()} == workers
    backends.assert_consistent()


def test_the_object_store_stopped_mid_upload_is_a_clean_503_and_gc_leaves_nothing(
        cluster: dict[str, LiveServer], backends: SharedBackends,
        seaweedfs: SeaweedFS) -> None:  # noqa: F811
    a, b = cluster["a"], cluster["b"]
    before = set(backends.objects())
    sock = start_upload(a, 6 * PART, 2 * PART)
    try:
        assert wait_until(backends.multipart_uploads, 10)
        with seaweedfs.stopped():
            send_until_answered(sock, (os.urandom(MiB) for _ in range(4 * PART // MiB)))
            status, _, body = read_response(sock, "PUT", timeout=60)
            assert status == 503, body
            assert one_line(body.decode())
            health = b.request("GET", "/healthz", timeout=30)
            assert health.status_code == 503
            assert health.json()["error"]["code"] == "storage_unavailable"
    finally:
        sock.close()
    for server in cluster.values():
        assert wait_until(server.healthy, RECOVERY)
    done = b.cli("gc", "--staging-older-than", "0s")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert set(backends.objects()) == before
    backends.assert_consistent()
    content = os.urandom(PART + 3)
    assert b.request("GET", f"/{created(a, content)['slug']}").content == content
    backends.assert_consistent()


def test_a_host_cut_off_the_network_mid_upload_leaves_nothing_and_serves_again_when_back(
        cluster: dict[str, LiveServer], backends: SharedBackends,
        restartable_postgres: ThrowawayPostgres, tmp_path: Path) -> None:
    s3 = urlsplit(backends.endpoint.url)
    with network_namespace() as ns, \
            Relay(ns.outside, (str(s3.hostname), int(s3.port or 80))) as s3_relay, \
            Relay(ns.outside, ("127.0.0.1", restartable_postgres.port)) as pg_relay:
        remote = backends.reached_through(s3_relay.url, pg_relay.address)
        with host(remote, tmp_path / "far", address=ns.inside, wrapper=ns.wrapper) as far:
            content = os.urandom(PART + 5)
            assert cluster["a"].request("GET", f"/{created(far, content)['slug']}").content \
                == content
            with Traffic(cluster) as traffic:
                sock = start_upload(far, 8 * PART, 3 * PART)
                assert wait_until(backends.multipart_uploads, 10)
                ns.cut()
                try:
                    with pytest.raises(OSError):
                        socket.create_connection((far.address, far.port), timeout=1).close()
                    sock.close()  # the client gives up; the host cannot hear it yet
                    time.sleep(1.1)
                    done = cluster["a"].cli("gc", "--staging-older-than", "1s")
                    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
                    assert "removed staging" in done.stdout
                    assert not backends.multipart_uploads()
                finally:
                    ns.restore()
                assert wait_until(far.healthy, RECOVERY), far.log()[-3000:]
            again = os.urandom(PART + 9)
            assert cluster["b"].request("GET", f"/{created(far, again)['slug']}").content \
                == again
            # The cut-off upload ends on the host once it hears that the client is gone, or
            # that the object store is: the cut took both, whichever it notices first.
            ended = wait_until(lambda: [line for line in far.access_lines()
                                        if line["path"] == "/big.bin"], 60)
            assert ended and ended[0]["error"] in ("client_disconnected", "storage_unavailable"), \
                far.log()[-3000:]
            backends.assert_consistent()
    assert traffic.statuses() == {200, 201}
