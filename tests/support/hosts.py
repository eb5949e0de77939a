"""Several teledrop hosts sharing one S3 bucket and one PostgreSQL database, and the
invariants checked from outside.

Each host is its own ``teledrop serve`` (its own gunicorn master and workers) run from a
working directory of its own, with a config of its own: nothing is shared between hosts
but the bucket and the database. :class:`SharedBackends` names those two and checks them
directly, with boto3 and psycopg, never through teledrop: every object in the bucket has
its record, every record its object (of the recorded size), and no multipart upload is in
progress.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import requests
from psycopg.conninfo import make_conninfo

from tests.live_server import CLI_TIMEOUT, HOST, TELEDROP_SCRIPT, LiveServer, live_server, \
    merged, wait_until
from tests.services.postgres import PostgresServer
from tests.services.seaweedfs import S3Endpoint, empty_bucket
from tests.support.entry_points import entry_points_env

JSON = {"Accept": "application/json"}
#: The plugins a host loads besides the suite's own.
BACKEND_ENTRY_POINTS = ("s3_storage", "postgres_meta")
_BLOB_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class SharedBackends:
    """The one bucket and the one database every host uses."""

    endpoint: S3Endpoint
    bucket: str
    dsn: str
    prefix: str = "drops/"
    part_size: str = "5MiB"

    def host_sections(self) -> dict[str, Any]:
        """The config tables that put a host on these backends."""
        storage = self.endpoint.storage_settings(self.bucket, prefix=self.prefix,
                                                 part_size=self.part_size)
        return {"storage": {"plugin": "s3_storage"},
                "metadata": {"plugin": "postgres_meta"},
                "plugins": {"s3_storage": storage,
                            "postgres_meta": {"dsn": self.dsn, "max_connections": 4}}}

    # -- read from outside ---------------------------------------------------------------

    def objects(self) -> dict[str, int]:
        """Every object in the bucket: key -> size."""
        client = self.endpoint.client()
        try:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
            return {item["Key"]: item["Size"] for page in pages
                    for item in page.get("Contents", [])}
        finally:
            client.close()

    def multipart_uploads(self) -> list[str]:
        """The key of every multipart upload in progress."""
        client = self.endpoint.client()
        try:
            pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket)
            return [upload["Key"] for page in pages for upload in page.get("Uploads", [])]
        finally:
            client.close()

    def records(self) -> list[dict[str, Any]]:
        """Every row of the drops table (slug, blob id, size, downloads)."""
        with psycopg.connect(self.dsn, connect_timeout=5) as conn:
            rows = conn.execute("SELECT slug, blob_id, size, downloads FROM drops").fetchall()
        return [dict(zip(("slug", "blob_id", "size", "downloads"), row, strict=True))
                for row in rows]

    def reached_through(self, s3_url: str, postgres: tuple[str, int]) -> SharedBackends:
        """The same bucket and database, reached at other addresses (through a relay)."""
        return replace(self, endpoint=replace(self.endpoint, url=s3_url),
                       dsn=make_conninfo(self.dsn, host=postgres[0], port=str(postgres[1])))

    def record(self, slug: str) -> dict[str, Any] | None:
        return next((r for r in self.records() if r["slug"] == slug), None)

    def blob_key(self, blob_id: str) -> str:
        return f"{self.prefix}blobs/{blob_id}"

    def problems(self) -> list[str]:
        """Every way bucket and database break the invariants together."""
        found = [f"multipart upload in progress: {key}" for key in self.multipart_uploads()]
        objects = self.objects()
        records = self.records()
        by_key = {self.blob_key(r["blob_id"]): r for r in records}
        blob_keys = f"{re.escape(self.prefix)}blobs/{_BLOB_ID.pattern}"
        for key in sorted(objects):
            if not re.fullmatch(blob_keys, key):
                found.append(f"object outside teledrop's layout: {key}")
            elif key not in by_key:
                found.append(f"object without record: {key}")
        for key, record in sorted(by_key.items()):
            if key not in objects:
                found.append(f"record without object: {record['slug']} -> {key}")
            elif objects[key] != record["size"]:
                found.append(f"record {record['slug']} says {record['size']} bytes, "
                             f"object has {objects[key]}")
        return found

    def assert_consistent(self, timeout: float = 10.0) -> None:
        """Wait (bounded) for clean-up in flight to finish, then require no problems."""
        wait_until(lambda: not self.problems(), timeout, interval=0.2)
        problems = self.problems()
        assert not problems, f"bucket {self.bucket} and its database: {problems}"



@contextmanager
def shared_backends(endpoint: S3Endpoint, postgres: PostgresServer,
                    part_size: str = "5MiB") -> Iterator[SharedBackends]:
    """A new bucket on ``endpoint`` and a new database on ``postgres``, both removed after
    the block."""
    bucket = f"teledrop-hosts-{uuid.uuid4().hex[:12]}"
    client = endpoint.client()
    client.create_bucket(Bucket=bucket)
    dsn = postgres.create_database()
    try:
        yield SharedBackends(endpoint, bucket, dsn, part_size=part_size)
    finally:
        postgres.drop_database(dsn)
        empty_bucket(client, bucket)
        client.delete_bucket(Bucket=bucket)
        client.close()

# -- hosts -------------------------------------------------------------------------------

@contextmanager
def host(backends: SharedBackends, directory: Path, address: str = HOST,
         wrapper: Sequence[str] = (), **sections: Any) -> Iterator[LiveServer]:
    """One host on ``backends``: ``teledrop serve`` run from ``directory``, which holds its
    config and logs (one worker of four threads unless ``sections`` say otherwise); see
    :func:`~tests.live_server.live_server` for ``address`` and ``wrapper``."""
    directory.mkdir(parents=True, exist_ok=True)
    tables = merged(merged({"server": {"workers": 1, "threads": 4}}, backends.host_sections()),
                    sections)
    with live_server(directory, command="serve", cwd=directory, address=address,
                     wrapper=wrapper, env=entry_points_env(*BACKEND_ENTRY_POINTS),
                     **tables) as server:
        yield server


@contextmanager
def hosts(backends: SharedBackends, base_dir: Path, names: Sequence[str],
          **sections: Any) -> Iterator[dict[str, LiveServer]]:
    """A host per name, each under ``base_dir/name``; all stopped when the block ends."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(host(backends, base_dir / name, **sections))
               for name in names}


def cli_at_once(servers: Sequence[LiveServer], *args: str,
                timeout: float = CLI_TIMEOUT) -> list[subprocess.CompletedProcess[str]]:
    """``teledrop ARGS`` run against each server's config, all started at once; their
    results, in the order of ``servers``."""
    procs = [subprocess.Popen([str(TELEDROP_SCRIPT), *args], cwd=server.config_path.parent,
                              env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
             for server in servers]
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
    return results


# -- traffic -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """One request of :class:`Traffic`: what it was, where, its status (``None``: no
    answer) and whether a download's bytes were the uploaded ones."""

    what: str
    host: str
    status: int | None
    intact: bool = True


class Traffic:
    """Small uploads and downloads on a thread of their own, round robin over ``servers``
    (each file uploaded to one host and read back from the next), until the block ends."""

    def __init__(self, servers: Mapping[str, LiveServer], size: int = 4096) -> None:
        self.servers = list(servers.items())
        self.size = size
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        turn = 0
        while not self._stop.is_set():
            (up_name, up), (down_name, down) = (self.servers[turn % len(self.servers)],
                                                self.servers[(turn + 1) % len(self.servers)])
            turn += 1
            content = os.urandom(self.size)
            try:
                created = up.request("PUT", "/traffic.bin", data=content, headers=JSON,
                                     timeout=20)
            except requests.RequestException:
                self.outcomes.append(Outcome("upload", up_name, None))
                continue
            self.outcomes.append(Outcome("upload", up_name, created.status_code))
            if created.status_code != 201:
                time.sleep(0.05)
                continue
            try:
                got = down.request("GET", f"/{created.json()['slug']}", timeout=20)
            except requests.RequestException:
                self.outcomes.append(Outcome("download", down_name, None))
                continue
            self.outcomes.append(Outcome("download", down_name, got.status_code,
                                         got.status_code != 200 or got.content == content))

    def statuses(self) -> set[int | None]:
        return {outcome.status for outcome in self.outcomes}
