"""Memory per upload to S3 does not grow with the file's size: about two part buffers.

One host (``teledrop serve``, one worker of one thread, on S3 and PostgreSQL) receives a
64 MiB upload, then a 1 GiB one, as a raw PUT and as a multipart form, sent with
``sendfile`` from one 64 MiB file so that the test never holds the body. The worker's peak
resident memory (``VmHWM``, which never goes down) may rise above what the idle worker
holds by two parts and a few MiB of request buffers, and by less than 8 MiB more from the
64 MiB upload to the 1 GiB one. Each upload must be stored whole (size and blake3 of its
record), and nothing is left once it is deleted.

The bound is relative to the idle worker, whose code and libraries (boto3 with its S3
client, psycopg and peewee besides teledrop's own) take over 64 MiB before any upload: see
docs/performance.md.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_server import LiveServer
from tests.services.postgres import PostgresServer
from tests.services.seaweedfs import S3Endpoint, s3_server  # noqa: F401
from tests.support.hosts import BACKEND_ENTRY_POINTS, SharedBackends, host, shared_backends
from tests.test_memory_bound import Sender, flat_peaks, peak_rss, unit_file, \
    upload_multipart, upload_put  # noqa: F401

pytestmark = [pytest.mark.gunicorn, pytest.mark.entry_points(*BACKEND_ENTRY_POINTS)]

MiB = 1024 * 1024
PART = 5 * MiB
#: What an upload may add to the idle worker: its two part buffers, and the request's own
#: buffers (read chunks, the hasher, botocore's request), measured at about 5 MiB.
UPLOAD_LIMIT = 2 * PART + 8 * MiB


@pytest.fixture(scope="module")
def backends(s3_server: S3Endpoint, postgres_server: PostgresServer,  # noqa: F811
             ) -> Iterator[SharedBackends]:
    with shared_backends(s3_server, postgres_server, f"{PART // MiB}MiB") as shared:
        yield shared


@pytest.fixture
def server(backends: SharedBackends, tmp_path: Path) -> Iterator[LiveServer]:
    with host(backends, tmp_path / "host", server={"workers": 1, "threads": 1}) as live:
        yield live


@pytest.mark.parametrize("sender", [upload_put, upload_multipart], ids=["put", "multipart"])
def test_worker_memory_uploading_to_s3_is_two_parts_from_64_mib_to_1_gib(
        server: LiveServer, backends: SharedBackends, unit_file: Path,  # noqa: F811
        sender: Sender) -> None:
    (worker,) = server.worker_pids()
    idle = peak_rss(worker)
    after_small, after_big = flat_peaks(server, sender, unit_file)
    assert after_big - idle <= UPLOAD_LIMIT, (
        f"peak worker RSS {after_big / MiB:.1f} MiB is more than {UPLOAD_LIMIT / MiB:.0f} MiB "
        f"above the idle worker's {idle / MiB:.1f} MiB (after 64 MiB: {after_small / MiB:.1f})")
    backends.assert_consistent()
