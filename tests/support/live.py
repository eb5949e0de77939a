"""Checks and drivers for the tests against a live server (:mod:`tests.live_server`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from tests.http_helpers import blake3_hash
from tests.live_server import LiveServer

T = TypeVar("T")


def run_concurrently(n: int, task: Callable[[int], T]) -> list[T]:
    """``task(i)`` for i in range(n), all released at once, so they really overlap."""
    barrier = threading.Barrier(n, timeout=30)

    def released(i: int) -> T:
        barrier.wait()
        return task(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(released, range(n)))


def assert_served(server: LiveServer, slug: str, content: bytes) -> None:
    """The drop downloads as exactly ``content``."""
    response = server.request("GET", f"/{slug}")
    assert response.status_code == 200, response.text
    assert int(response.headers["Content-Length"]) == len(content)
    assert response.content == content


def assert_stored(server: LiveServer, drop: dict[str, Any], content: bytes) -> None:
    """The drop's record and blob hold exactly ``content``, as its JSON said, and it
    downloads intact."""
    record = server.data.assert_holds(drop["slug"], content)
    assert drop["size"] == len(content)
    assert record["hash"] == drop["hash"] == blake3_hash(content)
    assert_served(server, drop["slug"], content)
