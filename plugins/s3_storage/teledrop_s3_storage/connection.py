"""One boto3 client (and one thread pool for background part uploads) per process.

botocore clients are thread-safe but must not cross a fork: a gunicorn worker that used
its master's client would share its connections. Each process builds its own on first
use, and the pool dies with the process that started it.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from .settings import S3StorageSettings

CONNECT_TIMEOUT = 5
READ_TIMEOUT = 60
MAX_ATTEMPTS = 3

_lock = threading.Lock()


def _reset_lock() -> None:
    global _lock
    _lock = threading.Lock()  # a lock held at fork time by another thread stays held


os.register_at_fork(after_in_child=_reset_lock)


def botocore_config(settings: S3StorageSettings, threads: int) -> BotoConfig:
    """Signature v4 (presigned URLs on any endpoint), checksums only where an operation
    requires them (many non-AWS servers reject or store the default CRC ones), bounded
    retries and timeouts, and a connection per thread for the request it serves plus one
    for the part it uploads in the background.

    Bodies are not hashed into the signature (``UNSIGNED-PAYLOAD``, what botocore sends
    over https anyway): over plain http it would SHA-256 every part before sending it, on
    the one thread an upload waits for, and it proves nothing teledrop relies on (the
    request is still signed; the blob's hash is of the bytes the client sent)."""
    return BotoConfig(
        signature_version="s3v4",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        max_pool_connections=max(10, 2 * threads + 2),
        s3={"addressing_style": settings.addressing_style, "payload_signing_enabled": False},
    )


def new_client(settings: S3StorageSettings, threads: int) -> Any:
    session = boto3.session.Session()  # sessions are not thread-safe: one per client
    return session.client(
        "s3",
        endpoint_url=settings.endpoint_url or None,
        region_name=settings.region or None,
        aws_access_key_id=settings.access_key_id or None,
        aws_secret_access_key=settings.secret_access_key or None,
        config=botocore_config(settings, threads),
    )


@dataclass
class Connection:
    pid: int
    client: Any
    uploads: ThreadPoolExecutor

    def close(self) -> None:
        self.uploads.shutdown(wait=True)
        self.client.close()


class PerProcess:
    """The :class:`Connection` of the current process, built on first use."""

    def __init__(self, settings: S3StorageSettings, threads: int) -> None:
        self.settings = settings
        self.threads = threads
        self._current: Connection | None = None

    def get(self) -> Connection:
        current = self._current
        if current is not None and current.pid == os.getpid():
            return current
        with _lock:
            current = self._current
            if current is None or current.pid != os.getpid():
                current = Connection(os.getpid(), new_client(self.settings, self.threads),
                                     ThreadPoolExecutor(max(1, self.threads),
                                                        thread_name_prefix="s3-part"))
                self._current = current
            return current

    @property
    def client(self) -> Any:
        return self.get().client

    def close(self) -> None:
        current, self._current = self._current, None
        if current is not None and current.pid == os.getpid():
            current.close()
