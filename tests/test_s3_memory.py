"""Memory per upload into S3 is about two parts, whatever the file's size.

The same real gunicorn, one worker with one thread, and the same uploads as
``tests/test_memory_bound.py`` (a 64 MiB file, then 1 GiB, as a form, a raw PUT and a
chunked PUT without a length), stored in SeaweedFS through the S3 storage with 16 MiB
parts. From the worker's peak resident memory once it has started (its boto3 client
built: about 20 MiB more than a worker on the local storage), an upload may add two parts
and what any upload holds (:data:`UPLOAD_SLACK`), and the 1 GiB upload less than 8 MiB
more than the 64 MiB one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import LiveServer, live_server
from tests.services.seaweedfs import S3Endpoint
from tests.support.memory import (  # noqa: F401 (unit_file is a fixture)
    GROWTH_LIMIT,
    peak_rss,
    stored,
    unit_file,
    upload_chunked,
    upload_multipart,
    upload_put,
)

pytestmark = [pytest.mark.gunicorn, pytest.mark.entry_points("s3_storage")]

MiB = 1024 * 1024
PART_SIZE = 16 * MiB
#: Besides the two parts: read buffers, the multipart decoder, a request's objects, and the
#: malloc arena of the thread that uploads parts (measured: 36-40 MiB above the start in
#: all; a third part would pass the limit).
UPLOAD_SLACK = 12 * MiB


@pytest.fixture
def s3_live(tmp_path: Path, s3_server: S3Endpoint, s3_bucket: str) -> Iterator[LiveServer]:
    table: dict[str, Any] = s3_server.storage_settings(s3_bucket, part_size="16MiB")
    with live_server(tmp_path, server={"workers": 1, "threads": 1},
                     storage={"plugin": "s3_storage"},
                     plugins={"s3_storage": table}) as live:
        yield live


@pytest.mark.parametrize("sender", [upload_multipart, upload_put, upload_chunked],
                         ids=["multipart", "put", "chunked"])
def test_worker_memory_is_two_parts_from_64_mib_to_1_gib(
        s3_live: LiveServer, unit_file: Path, sender: Callable[..., Any],
        s3_server: S3Endpoint, s3_bucket: str) -> None:
    (worker,) = s3_live.worker_pids()
    started = peak_rss(worker)
    stored(s3_live, sender, unit_file, 1)
    after_small = peak_rss(worker)
    stored(s3_live, sender, unit_file, 16)
    after_big = peak_rss(worker)
    assert s3_live.worker_pids() == [worker], "the worker was replaced during the uploads"
    limit = started + 2 * PART_SIZE + UPLOAD_SLACK
    assert after_big <= limit, (
        f"peak worker RSS {after_big / MiB:.1f} MiB > {limit / MiB:.0f} MiB (started at "
        f"{started / MiB:.1f} MiB, after 64 MiB: {after_small / MiB:.1f} MiB)")
    growth = after_big - after_small
    assert growth < GROWTH_LIMIT, (
        f"peak worker RSS grew by {growth / MiB:.1f} MiB from a 64 MiB to a 1 GiB upload "
        f"({after_small / MiB:.1f} -> {after_big / MiB:.1f} MiB)")
    client = s3_server.client()
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    assert client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0  # both deleted
