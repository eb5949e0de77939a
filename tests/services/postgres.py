"""A real PostgreSQL for the tests: the server ``TELEDROP_TEST_POSTGRES_DSN`` names (a DSN
allowed to create databases), else a throwaway one started for the session.

The throwaway server runs from Debian's binaries (``/usr/lib/postgresql/*/bin``) or those
on ``PATH``: ``initdb`` into a temporary directory owned by an unprivileged user (initdb
refuses root, so root runs it as ``postgres``), then ``pg_ctl`` on a free loopback port with
its socket in that directory and ``fsync`` off. It never touches a server already running
on the machine. Each test that asks for ``postgres_dsn`` gets a database of its own.

Fixtures: ``postgres_server`` (session), ``postgres_dsn`` (a fresh database per test) and
``restartable_postgres`` (a throwaway server whatever the environment says, for tests that
stop and start it mid-traffic).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import free_ports

ENV = "TELEDROP_TEST_POSTGRES_DSN"
#: Seconds pg_ctl waits for the server to accept connections (or to stop).
READY_TIMEOUT = 30
#: The unprivileged account root runs the server as.
SERVER_USER = "postgres"


class PostgresServer:
    """A server the tests may create databases on, reached through an admin DSN."""

    restartable = False

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    # psycopg is imported where it is used: loading these fixtures (every run does) needs
    # neither it nor postgres_meta; only a test that asks for PostgreSQL does.

    def admin(self, *statements: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
            for statement in statements:
                conn.execute(statement)

    def create_database(self) -> str:
        """A new empty database; its DSN."""
        from psycopg.conninfo import make_conninfo

        name = f"teledrop_test_{uuid.uuid4().hex[:12]}"
        self.admin(f'CREATE DATABASE "{name}"')
        return make_conninfo(self.dsn, dbname=name)

    def drop_database(self, dsn: str) -> None:
        from psycopg.conninfo import conninfo_to_dict

        name = conninfo_to_dict(dsn)["dbname"]
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        """Nothing to stop: the server is not ours."""


class ThrowawayPostgres(PostgresServer):
    """A server of our own in ``root``: stopped, started and removed by the tests."""

    restartable = True

    def __init__(self, bin_dir: Path, root: Path) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        super().__init__(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres")

    @classmethod
    def launch(cls, bin_dir: Path) -> ThrowawayPostgres:
        root = Path(tempfile.mkdtemp(prefix="teledrop-pg-"))
        server = cls(bin_dir, root)
        try:
            if os.geteuid() == 0:
                shutil.chown(root, SERVER_USER, SERVER_USER)
            server._run("initdb", "-D", str(server.data), "-U", "postgres", "--auth=trust",
                        "-E", "UTF8", "--locale=C", "--no-sync")
            server.start()
        except BaseException:
            server.remove()
            raise
        return server

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=READY_TIMEOUT + 30)
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()}\n{tail}")

    def start(self) -> None:
        """Start (again, on the same port) and wait until it accepts connections."""
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} "
                   f"-c unix_socket_directories={self.root} -c fsync=off "
                   f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-w", "-t", str(READY_TIMEOUT), "-o", options)

    def stop(self) -> None:
        """Stop at once: open connections are cut, as when a database host goes down."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w",
                  "-t", str(READY_TIMEOUT))

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        if self.running():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def close(self) -> None:
        self.remove()


def free_port() -> int:
    return free_ports(1)[0]


def find_bin_dir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: Debian's newest version, else ``PATH``."""
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                    key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit()
                    else 0)
    if debian:
        return Path(debian[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def launch_throwaway() -> ThrowawayPostgres:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.fail(f"no PostgreSQL binaries: `make test` installs Debian's postgresql, or set {ENV}")
    return ThrowawayPostgres.launch(bin_dir)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    dsn = os.environ.get(ENV)
    server = PostgresServer(dsn) if dsn else launch_throwaway()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """The DSN of a database created for this test (dropped after it)."""
    dsn = postgres_server.create_database()
    try:
        yield dsn
    finally:
        postgres_server.drop_database(dsn)


@pytest.fixture(scope="module")
def restartable_postgres(postgres_server: PostgresServer) -> Iterator[ThrowawayPostgres]:
    """A server the test may stop and start: the session's throwaway one, or (when the
    session uses a given DSN) one started for this module."""
    if isinstance(postgres_server, ThrowawayPostgres):
        yield postgres_server
        if not postgres_server.running():
            postgres_server.start()  # a failed test must not take the server from the rest
        return
    server = launch_throwaway()
    try:
        yield server
    finally:
        server.close()
