"""``teledrop upload``, ``delete`` and ``info`` against a real gunicorn, run both in-process
through click's runner and as the installed ``teledrop`` script.

Proves that files (one, many, empty, oddly named, from stdin) arrive byte for byte and one
link per file is printed in order; that --expires, --max-downloads, --slug, --name reach
the server; that the server and the token come from options or TELEDROP_URL /
TELEDROP_TOKEN; that every failure (taken slug, too large, missing or wrong token, an
unreachable or misbehaving server, a file that changes size mid-upload) is one line on
stderr and a non-zero exit while the other files still go through; that the progress bar
is drawn on a terminal and nothing is drawn into a pipe; that uploading 256 MiB keeps the
client's peak memory small; and the pure parts (link parsing, the progress line).
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import blake3
import pytest
import requests
from click.testing import CliRunner

import teledrop.client as client_module
from teledrop.cli import main
from teledrop.client import (
    Client,
    ClientError,
    ProgressLine,
    Source,
    UploadOptions,
    link_readings,
    normalize_server,
)
from tests.live_server import (
    TELEDROP_SCRIPT,
    LiveServer,
    free_port,
    live_server,
    wait_until,
)
from tests.support.entry_points import is_teledrop_setting

MiB = 1024 * 1024
TOKEN = "sesame"
HOWS = ["runner", "process"]
live = pytest.mark.gunicorn


# --- running the command ------------------------------------------------------------------

def _foreign(name: str) -> bool:
    """Caller settings that would change what the command does: its own variables, and
    proxies (requests honours them, and a proxy cannot reach our loopback server)."""
    return is_teledrop_setting(name) or name.lower().endswith("_proxy")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if _foreign(name):
            monkeypatch.delenv(name)


def process_env(extra: dict[str, str]) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not _foreign(k)}, **extra}


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def links(self) -> list[str]:
        return self.stdout.splitlines()

    def error_line(self) -> str:
        """The one line a failure prints, after checking it is the only one."""
        lines = self.stderr.splitlines()
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith("Error: "), lines
        return lines[0]


def teledrop(how: str, *args: str, env: dict[str, str] | None = None,
             stdin: bytes | None = None) -> Outcome:
    """``teledrop ARGS`` in-process (``runner``) or as the installed script (``process``)."""
    env = env or {}
    if how == "runner":
        result = CliRunner().invoke(main, list(args), env=env, input=stdin)
        # An exception that escaped the command is a crash, whatever its exit status.
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            result.exc_info
        return Outcome(result.exit_code, result.stdout, result.stderr)
    proc = subprocess.run([str(TELEDROP_SCRIPT), *args], env=process_env(env), input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, timeout=60, check=False)
    outcome = Outcome(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    assert "Traceback" not in outcome.stderr, outcome.stderr
    return outcome


@pytest.fixture(params=HOWS)
def how(request: pytest.FixtureRequest) -> str:
    return request.param


# --- servers and files --------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Anyone may upload."""
    with live_server(tmp_path_factory.mktemp("open"), server={"workers": 1}) as running:
        yield running


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """An upload token is required, and files stop at 1 MiB."""
    with live_server(tmp_path_factory.mktemp("strict"), server={"workers": 1},
                     auth={"upload_tokens": [TOKEN]},
                     limits={"max_upload_size": "1MiB"}) as running:
        yield running


def on(server: LiveServer, **extra: str) -> dict[str, str]:
    """The environment that points the client at ``server``."""
    return {"TELEDROP_URL": server.base_url, **extra}


def write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def slug_of(link: str) -> str:
    return urlsplit(link).path.rsplit("/", 1)[1]


def download(server: LiveServer, link: str) -> bytes:
    assert link.startswith(server.base_url + "/"), link
    response = server.request("GET", urlsplit(link).path)
    assert response.status_code == 200, response.text
    return response.content


def drop_json(server: LiveServer, slug: str) -> dict:
    response = server.request("GET", f"/api/drops/{slug}")
    assert response.status_code == 200, response.text
    return response.json()


def lifetime(drop: dict) -> float:
    """Seconds from the drop's creation to its expiry."""
    return (datetime.fromisoformat(drop["expires_at"])
            - datetime.fromisoformat(drop["created_at"])).total_seconds()


def assert_clean(server: LiveServer) -> None:
    """No staging debris, no file without its record and no record without its file
    (with the server's log when there is)."""
    try:
        server.data.assert_consistent()
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nserver log:\n{server.log()[-4000:]}") from None


def unique_slug(tag: str) -> str:
    return f"{tag}-{time.monotonic_ns()}"


# --- upload: the bytes and the links ------------------------------------------------------

@live
def test_upload_prints_the_link_and_the_bytes_come_back(server: LiveServer, tmp_path: Path,
                                                        how: str) -> None:
    data = os.urandom(3 * MiB + 17)
    out = teledrop(how, "upload", str(write(tmp_path, "photo.jpg", data)), env=on(server))
    assert out.code == 0, out.stderr
    assert out.stderr == ""
    [link] = out.links
    assert download(server, link) == data
    assert drop_json(server, slug_of(link))["filename"] == "photo.jpg"


@live
def test_upload_many_files_prints_one_link_each_in_order(server: LiveServer, tmp_path: Path,
                                                         how: str) -> None:
    files = {"empty.bin": b"", "notes.txt": b"some notes\n",
             "a#b?c%d é (1).txt": os.urandom(70_000), "big.bin": os.urandom(2 * MiB + 1)}
    paths = [str(write(tmp_path, name, data)) for name, data in files.items()]
    out = teledrop(how, "upload", *paths, env=on(server))
    assert out.code == 0, out.stderr
    assert len(out.links) == len(files)
    assert len(set(out.links)) == len(files)
    for link, (name, data) in zip(out.links, files.items()):
        assert download(server, link) == data
        drop = drop_json(server, slug_of(link))
        assert (drop["filename"], drop["size"]) == (name, len(data))
    assert_clean(server)


@live
def test_upload_passes_expires_max_downloads_and_slug(server: LiveServer, tmp_path: Path,
                                                      how: str) -> None:
    slug = unique_slug("opts")
    path = write(tmp_path, "report.pdf", b"%PDF-1.7 not really")
    out = teledrop(how, "upload", str(path), "--expires", "90m", "--max-downloads", "2",
                   "--slug", slug, env=on(server))
    assert out.code == 0, out.stderr
    assert out.links == [f"{server.base_url}/{slug}"]
    drop = drop_json(server, slug)
    assert drop["max_downloads"] == 2
    assert lifetime(drop) == 90 * 60
    record = server.data.record(slug)
    assert record is not None and record["max_downloads"] == 2


@live
def test_upload_without_options_gets_the_server_defaults(server: LiveServer,
                                                         tmp_path: Path) -> None:
    out = teledrop("runner", "upload", str(write(tmp_path, "x.txt", b"x")), env=on(server))
    drop = drop_json(server, slug_of(out.links[0]))
    assert drop["max_downloads"] is None
    assert lifetime(drop) == 7 * 86400  # limits.default_expires


@live
def test_upload_json_prints_each_drop_with_a_working_delete_token(server: LiveServer,
                                                                  tmp_path: Path,
                                                                  how: str) -> None:
    paths = [str(write(tmp_path, f"{n}.txt", f"file {n}".encode())) for n in range(2)]
    out = teledrop(how, "upload", "--json", *paths, env=on(server))
    assert out.code == 0, out.stderr
    drops = [json.loads(line) for line in out.links]
    assert [d["filename"] for d in drops] == ["0.txt", "1.txt"]
    for drop in drops:
        assert drop == {**drop_json(server, drop["slug"]), "delete_token": drop["delete_token"]}
        response = server.request("DELETE", f"/{drop['slug']}",
                                  headers={"X-Delete-Token": drop["delete_token"]})
        assert response.status_code == 204


@live
def test_upload_from_stdin_is_sent_chunked(server: LiveServer, how: str) -> None:
    data = os.urandom(3 * MiB + 5)
    out = teledrop(how, "upload", "-", env=on(server), stdin=data)
    assert out.code == 0, out.stderr
    [link] = out.links
    assert download(server, link) == data
    assert drop_json(server, slug_of(link))["filename"] == "file"  # the server's default


@live
def test_upload_from_stdin_takes_a_name_and_options(server: LiveServer) -> None:
    slug = unique_slug("piped")
    out = teledrop("process", "upload", "-", "--name", "photos.tar.gz", "--slug", slug,
                   env=on(server), stdin=b"tar bytes")
    assert out.code == 0, out.stderr
    assert out.links == [f"{server.base_url}/{slug}"]
    drop = drop_json(server, slug)
    assert (drop["filename"], drop["size"]) == ("photos.tar.gz", 9)


@live
def test_name_renames_a_file(server: LiveServer, tmp_path: Path) -> None:
    out = teledrop("runner", "upload", str(write(tmp_path, "tmp123", b"abc")),
                   "--name", "invoice.txt", env=on(server))
    assert drop_json(server, slug_of(out.links[0]))["filename"] == "invoice.txt"


# --- upload: server and token from options or the environment -----------------------------

@live
def test_server_option_wins_over_teledrop_url(server: LiveServer, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    out = teledrop("runner", "upload", str(write(tmp_path, "a.txt", b"a")),
                   "--server", server.base_url + "/", env={"TELEDROP_URL": dead})
    assert out.code == 0, out.stderr
    assert out.links[0].startswith(server.base_url + "/")


@live
@pytest.mark.parametrize("token_from", ["option", "env", "option over env"])
def test_upload_token_from_option_or_teledrop_token(strict: LiveServer, tmp_path: Path,
                                                    how: str, token_from: str) -> None:
    args = ["upload", str(write(tmp_path, "a.txt", b"authorised"))]
    env = on(strict)
    if token_from != "env":
        args += ["--token", TOKEN]
    if token_from != "option":
        env["TELEDROP_TOKEN"] = TOKEN if token_from == "env" else "stale"
    out = teledrop(how, *args, env=env)
    assert out.code == 0, out.stderr
    assert download(strict, out.links[0]) == b"authorised"


@live
@pytest.mark.parametrize("token", [None, "wrong"])
def test_missing_or_wrong_token_is_one_line(strict: LiveServer, tmp_path: Path, how: str,
                                            token: str | None) -> None:
    before = strict.data.snapshot()
    env = on(strict) if token is None else on(strict, TELEDROP_TOKEN=token)
    out = teledrop(how, "upload", str(write(tmp_path, "a.txt", b"x" * 1000)), env=env)
    assert out.code == 1
    assert out.stdout == ""
    line = out.error_line()
    assert "a.txt" in line and "token" in line
    assert strict.data.snapshot() == before


# --- upload: failures ---------------------------------------------------------------------

@live
def test_taken_slug_is_one_line_and_leaves_nothing(server: LiveServer, tmp_path: Path,
                                                   how: str) -> None:
    slug = unique_slug("taken")
    first = teledrop("runner", "upload", str(write(tmp_path, "first", b"1")), "--slug", slug,
                     env=on(server))
    assert first.code == 0, first.stderr
    # Bigger than the socket buffers: the server answers before reading it all.
    second = write(tmp_path, "second", os.urandom(8 * MiB))
    out = teledrop(how, "upload", str(second), "--slug", slug, env=on(server))
    assert out.code == 1
    assert out.stdout == ""
    assert f"'{slug}' is already taken" in out.error_line()
    assert download(server, first.links[0]) == b"1"
    assert_clean(server)


@live
def test_too_large_file_fails_and_the_others_go_through(strict: LiveServer, tmp_path: Path,
                                                        how: str) -> None:
    small = [write(tmp_path, f"small{n}", bytes([n]) * 1000) for n in range(2)]
    big = write(tmp_path, "big", os.urandom(4 * MiB))
    out = teledrop(how, "upload", str(small[0]), str(big), str(small[1]),
                   env=on(strict, TELEDROP_TOKEN=TOKEN))
    assert out.code == 1
    assert [download(strict, link) for link in out.links] == [p.read_bytes() for p in small]
    line = out.error_line()
    assert str(big) in line and "exceeds the limit of 1 MiB" in line
    assert_clean(strict)


@live
def test_stdin_growing_past_the_limit_is_too_large(strict: LiveServer) -> None:
    out = teledrop("process", "upload", "-", env=on(strict, TELEDROP_TOKEN=TOKEN),
                   stdin=os.urandom(3 * MiB))
    assert out.code == 1
    assert out.stdout == ""
    assert "stdin" in out.error_line() and "exceeds the limit" in out.error_line()
    assert_clean(strict)


@live
def test_option_refused_by_the_server_is_its_reason(server: LiveServer, tmp_path: Path) -> None:
    out = teledrop("runner", "upload", str(write(tmp_path, "a", b"a")), "--expires", "99d",
                   env=on(server))
    assert out.code == 1
    assert "expires must be between" in out.error_line()


@pytest.mark.parametrize("target", ["refused", "unresolvable"])
def test_unreachable_server_is_one_line(tmp_path: Path, how: str, target: str) -> None:
    url = (f"http://127.0.0.1:{free_port()}" if target == "refused"
           else "http://teledrop.invalid")
    files = [str(write(tmp_path, name, b"data")) for name in ("a", "b")]
    out = teledrop(how, "upload", *files, "--server", url)
    assert out.code == 1
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 2, out.stderr  # one per file: each was tried
    expected = "Connection refused" if target == "refused" else url
    assert all(line.startswith("Error: ") and expected in line for line in lines), lines


@pytest.mark.parametrize("args, complaint", [
    (["a", "b", "--slug", "mine"], "one file only"),
    (["a", "b", "--name", "x.txt"], "one file only"),
    (["-", "-"], "stdin"),
    (["missing"], "does not exist"),
    (["a", "--max-downloads", "0"], "--max-downloads"),
    (["a", "--server", "ftp://host"], "--server"),
    ([], "FILE"),
], ids=["slug-many", "name-many", "stdin-twice", "missing-file", "zero-downloads",
        "bad-server", "no-file"])
def test_usage_errors_send_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   args: list[str], complaint: str) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "a", b"a")
    write(tmp_path, "b", b"b")
    sent: list[str] = []
    monkeypatch.setattr(requests.Session, "request",
                        lambda self, method, url, **kw: sent.append(url))
    out = teledrop("runner", "upload", *args)
    assert out.code == 2
    assert complaint in out.stderr
    assert sent == []


# --- upload: a misbehaving server ---------------------------------------------------------

class Scripted(ThreadingHTTPServer):
    """A server that is not teledrop: every request gets ``answer`` (status, headers,
    body) after ``delay`` seconds."""

    answer: tuple[int, dict[str, str], bytes] = (200, {}, b"")
    delay: float = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ScriptedHandler(BaseHTTPRequestHandler):
    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        assert isinstance(self.server, Scripted)
        status, headers, body = self.server.answer
        time.sleep(self.server.delay)
        try:
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting, as the timeout test wants

    do_PUT = do_GET = do_DELETE = _reply

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    httpd = Scripted(("127.0.0.1", 0), _ScriptedHandler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("answer, expected", [
    ((308, {"Location": "https://drop.example.org/a"}, b""),
     "redirects to https://drop.example.org/a"),
    ((502, {"Content-Type": "text/html"}, b"<html>\n<h1>Bad Gateway</h1></html>"),
     "HTTP 502 Bad Gateway"),
    ((503, {"Content-Type": "text/plain"}, b"down for maintenance\nback at 5\n"),
     "down for maintenance"),
    ((201, {"Content-Type": "text/plain"}, b"http://x/abc\n"), "is this a teledrop server?"),
    ((201, {"Content-Type": "application/json"}, b'{"slug": "abc"}'), "no link"),
], ids=["redirect", "html-error", "plain-error", "not-json", "no-url"])
def test_a_server_that_is_not_teledrop_is_one_line(scripted: Scripted, tmp_path: Path,
                                                   answer: tuple[int, dict[str, str], bytes],
                                                   expected: str) -> None:
    scripted.answer = answer
    out = teledrop("runner", "upload", str(write(tmp_path, "a", b"abc")),
                   "--server", scripted.url)
    assert out.code == 1
    assert out.stdout == ""
    assert expected in out.error_line()


def test_a_server_that_stops_answering_times_out(scripted: Scripted, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "READ_TIMEOUT", 0.3)
    scripted.answer = (201, {"Content-Type": "application/json"}, b"{}")
    scripted.delay = 2
    out = teledrop("runner", "upload", str(write(tmp_path, "a", b"abc")),
                   "--server", scripted.url)
    assert out.code == 1
    assert out.error_line() == f"Error: {tmp_path / 'a'}: {scripted.url}: timed out"


# --- upload: a file that changes while it is sent -----------------------------------------

@pytest.fixture
def api(server: LiveServer) -> Iterator[Client]:
    session = requests.Session()
    session.trust_env = False
    with Client(server.base_url, session=session) as client:
        yield client


@live
def test_a_file_that_shrinks_mid_upload_fails_and_leaves_nothing(server: LiveServer,
                                                                  api: Client) -> None:
    before = server.data.snapshot()
    with pytest.raises(ClientError, match="shrank to 3 bytes"):
        api.upload(Source(io.BytesIO(b"abc"), "shrunk.bin", 10))
    # The client hung up before the server may even have read the request: until it has
    # (its access log says so), an empty staging dir proves nothing.
    assert wait_until(lambda: "/shrunk.bin" in server.log(), 15), server.log()[-2000:]
    assert_clean(server)
    assert server.data.snapshot() == before


class Zeros(io.RawIOBase):
    """Endless zero bytes, never in memory at once; counts what was read."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.read_bytes += len(buffer)
        return len(buffer)


@live
def test_a_refused_upload_stops_sending(server: LiveServer, api: Client) -> None:
    slug = unique_slug("refused")
    api.upload(Source(io.BytesIO(b"first"), "first", 5), UploadOptions(slug=slug))
    zeros = Zeros()
    with pytest.raises(ClientError, match="already taken") as refused:
        api.upload(Source(zeros, "second", 4 * 1024 * MiB), UploadOptions(slug=slug))
    assert refused.value.status == 409
    # The server answered before reading the body and hung up: the client stopped, at
    # most socket buffers' worth in, instead of pushing 4 GiB into a closed connection.
    assert zeros.read_bytes < 64 * MiB, zeros.read_bytes
    assert_clean(server)


@live
def test_a_file_that_grows_mid_upload_sends_its_announced_size(server: LiveServer,
                                                               api: Client) -> None:
    drop = api.upload(Source(io.BytesIO(b"0123456789 and more"), "grown.bin", 10))
    assert drop["size"] == 10
    assert download(server, drop["url"]) == b"0123456789"


# --- upload: progress ---------------------------------------------------------------------

def run_on_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run the script with stderr on a pseudo-terminal and stdout on a pipe; exit status,
    stdout and what the terminal received."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([str(TELEDROP_SCRIPT), *args], env=process_env(env),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    finally:
        os.close(slave)
    received = bytearray()

    def drain() -> None:  # the child must never block on a full terminal buffer
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                return
            if not data:
                return
            received.extend(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        stdout, _ = proc.communicate(timeout=60)
        reader.join(timeout=10)
    finally:
        os.close(master)
    return proc.returncode, stdout.decode(), received.decode()


@live
def test_progress_bar_is_drawn_on_a_terminal(server: LiveServer, tmp_path: Path) -> None:
    files = [write(tmp_path, "first.bin", os.urandom(8 * MiB)),
             write(tmp_path, "second.bin", os.urandom(MiB))]
    code, stdout, terminal = run_on_terminal(["upload", *map(str, files)], on(server))
    assert code == 0, terminal
    assert len(stdout.splitlines()) == 2  # links only: the bar never reaches stdout
    lines = terminal.split("\r\n")  # the terminal turns each "\n" into "\r\n"
    assert lines[-1] == "" and len(lines) == 3, terminal
    for line, path, size in zip(lines, files, ("8.0", "1.0")):
        frames = [frame.rstrip() for frame in line.split("\r") if frame]
        assert re.match(rf"{re.escape(path.name)}  \[-+\]   0%  +0\.0/{size} MiB", frames[0]), \
            frames
        assert re.match(rf"{re.escape(path.name)}  \[#+\] 100%  {size}/{size} MiB", frames[-1]), \
            frames


@live
def test_an_error_on_a_terminal_starts_on_its_own_line(server: LiveServer,
                                                       tmp_path: Path) -> None:
    code, stdout, terminal = run_on_terminal(
        ["upload", str(write(tmp_path, "a.txt", b"x")), "--expires", "nope"], on(server))
    assert code == 1 and stdout == ""
    lines = terminal.split("\r\n")
    assert lines[-2].startswith("Error: ") and "expires" in lines[-2], terminal
    assert lines[0].startswith("\ra.txt  ["), terminal


@live
def test_no_progress_into_a_pipe(server: LiveServer, tmp_path: Path) -> None:
    out = teledrop("process", "upload", str(write(tmp_path, "quiet.bin", os.urandom(8 * MiB))),
                   env=on(server))
    assert out.code == 0
    assert out.stderr == ""
    assert len(out.links) == 1


@live
def test_progress_flag_draws_even_into_a_pipe(server: LiveServer, tmp_path: Path) -> None:
    out = teledrop("runner", "upload", "--progress", str(write(tmp_path, "p.bin", b"p" * 5000)),
                   env=on(server))
    assert out.code == 0
    assert out.stderr.startswith("\rp.bin  [") and out.stderr.endswith("\n")
    assert "100%" in out.stderr.split("\r")[-1]


# --- upload: memory -----------------------------------------------------------------------

def vm_hwm(pid: int) -> int | None:
    """The process's peak resident memory so far, in bytes (None once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def peak_rss_of(args: list[str], env: dict[str, str], tmp_path: Path,
                timeout: float = 120) -> tuple[int, int]:
    """Run the script to its end; its exit status and the last peak resident memory read
    while it ran. (The kernel's ru_maxrss of a child counts the parent's memory it was
    forked from, so it says nothing about the script itself.)"""
    with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err:
        proc = subprocess.Popen([str(TELEDROP_SCRIPT), *args], env=process_env(env),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    peak = 0
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            peak = max(peak, vm_hwm(proc.pid) or 0)
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return proc.returncode, peak


@live
def test_uploading_256_mib_keeps_the_client_small(server: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "huge.bin"
    with path.open("wb") as f:  # sparse, with marks so that a lost or moved chunk shows
        f.truncate(256 * MiB)
        for offset in (0, 100 * MiB + 7, 256 * MiB - 5):
            f.seek(offset)
            f.write(b"mark!")
    expected = "blake3:" + blake3.blake3().update_mmap(str(path)).hexdigest()
    code, peak = peak_rss_of(["upload", "--json", str(path)], on(server), tmp_path)
    assert code == 0, (tmp_path / "err").read_text()
    assert peak > 0  # it was measured
    drop = json.loads((tmp_path / "out").read_text())
    assert (drop["size"], drop["hash"]) == (256 * MiB, expected)
    assert peak < 100 * MiB, f"peak RSS {peak / MiB:.1f} MiB"


# --- info and delete ----------------------------------------------------------------------

@pytest.fixture
def uploaded(server: LiveServer, tmp_path: Path) -> dict:
    out = teledrop("runner", "upload", "--json", "--max-downloads", "3",
                   str(write(tmp_path, "slides.pdf", b"%PDF" + b"." * 2044)), env=on(server))
    assert out.code == 0, out.stderr
    return json.loads(out.stdout)


@live
def test_info_prints_a_readable_summary(server: LiveServer, uploaded: dict, how: str) -> None:
    download(server, uploaded["url"])
    out = teledrop(how, "info", uploaded["url"])
    assert out.code == 0, out.stderr
    fields = dict(line.split(":", 1) for line in out.stdout.splitlines())
    fields = {key: value.strip() for key, value in fields.items()}
    assert fields == {
        "link": uploaded["url"], "filename": "slides.pdf", "size": "2 KiB (2048 bytes)",
        "type": "application/pdf", "hash": uploaded["hash"],
        "created": uploaded["created_at"], "expires": uploaded["expires_at"],
        "downloads": "1 of 3",
    }


@live
@pytest.mark.parametrize("form", ["slug", "link", "link with a name"])
def test_info_json_is_the_servers_json(server: LiveServer, uploaded: dict, form: str) -> None:
    link = {"slug": uploaded["slug"], "link": uploaded["url"],
            "link with a name": uploaded["url"] + "/slides.pdf"}[form]
    # A generated slug may start with "-": after "--" it is never read as an option.
    out = teledrop("runner", "info", "--json", "--", link, env=on(server))
    assert out.code == 0, out.stderr
    assert json.loads(out.stdout) == drop_json(server, uploaded["slug"])
    assert "delete_token" not in json.loads(out.stdout)


@live
def test_info_of_an_unknown_drop_is_one_line(server: LiveServer, how: str) -> None:
    out = teledrop(how, "info", "no-such-drop", env=on(server))
    assert out.code == 1
    assert out.stdout == ""
    assert out.error_line() == "Error: no such drop"


@live
def test_delete_with_the_wrong_token_keeps_the_drop(server: LiveServer, uploaded: dict,
                                                    how: str) -> None:
    out = teledrop(how, "delete", uploaded["url"], "--token", "not-the-token")
    assert out.code == 1
    assert "delete token" in out.error_line()
    assert drop_json(server, uploaded["slug"])["slug"] == uploaded["slug"]


@live
@pytest.mark.parametrize("form", ["slug", "link"])
def test_delete_removes_the_drop(server: LiveServer, uploaded: dict, how: str,
                                 form: str) -> None:
    link = uploaded["slug"] if form == "slug" else uploaded["url"]
    out = teledrop(how, "delete", "--token", uploaded["delete_token"], "--", link,
                   env=on(server))
    assert out.code == 0, out.stderr
    assert out.stdout == f"deleted {uploaded['slug']}\n"
    assert server.request("GET", f"/{uploaded['slug']}").status_code == 404
    assert server.data.record(uploaded["slug"]) is None
    again = teledrop(how, "delete", "--token", uploaded["delete_token"], "--", link,
                     env=on(server))
    assert again.code == 1
    assert again.error_line() == "Error: no such drop"
    assert_clean(server)


def test_delete_requires_a_token() -> None:
    out = teledrop("runner", "delete", "abc")
    assert out.code == 2
    assert "--token" in out.stderr


# --- links --------------------------------------------------------------------------------

OTHER = "http://127.0.0.1:8000"


@pytest.mark.parametrize("link, server, expected", [
    ("http://h:1/abc", OTHER, [("http://h:1", "abc")]),
    ("https://h/drops/abc", OTHER, [("https://h", "drops"), ("https://h/drops", "abc")]),
    ("https://h/abc/report.pdf", OTHER, [("https://h", "abc"), ("https://h/abc", "report.pdf")]),
    ("https://h/abc/My%20File.pdf", OTHER, [("https://h", "abc")]),
    ("https://h/api/drops/abc", OTHER, [("https://h/api", "drops"), ("https://h/api/drops", "abc")]),
    ("http://h:1/abc/report.pdf", "http://h:1/", [("http://h:1", "abc")]),
    ("http://h:1/drops/abc/x.pdf", "http://h:1/drops", [("http://h:1/drops", "abc")]),
    ("http://h:1/abc?x=1#top", OTHER, [("http://h:1", "abc")]),
    ("abc", "h:1/", [("http://h:1", "abc")]),
])
def test_link_readings(link: str, server: str, expected: list[tuple[str, str]]) -> None:
    assert link_readings(link, server) == expected


@pytest.mark.parametrize("link", ["", "a/b", "http://h:1/", "http://h:1", "http://h/api/static"])
def test_link_readings_refuse_what_names_no_drop(link: str) -> None:
    with pytest.raises(ClientError):
        link_readings(link, OTHER)


def test_a_link_with_no_slug_is_one_line(how: str) -> None:
    out = teledrop(how, "info", "http://127.0.0.1:1/")
    assert out.code == 1
    assert "no slug" in out.error_line()


@pytest.mark.parametrize("value, expected", [
    ("http://h:8000/", "http://h:8000"), ("h:8000", "http://h:8000"),
    ("https://h/prefix/", "https://h/prefix"),
])
def test_normalize_server(value: str, expected: str) -> None:
    assert normalize_server(value) == expected


@pytest.mark.parametrize("value", ["ftp://h", "http://", "file:///etc"])
def test_normalize_server_refuses_other_schemes(value: str) -> None:
    with pytest.raises(ClientError):
        normalize_server(value)


# --- the progress line --------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def frames(stream: io.StringIO) -> list[str]:
    return [f for f in stream.getvalue().split("\r") if f]


def test_progress_line_redraws_at_most_every_interval() -> None:
    clock, stream = FakeClock(), io.StringIO()
    bar = ProgressLine(stream, "f.bin", 100 * MiB, interval=0.1, clock=clock)
    for n in range(1, 11):
        clock.now += 0.01
        bar.update(n * MiB)
    assert len(frames(stream)) == 2  # the first draw, then once 0.1 s had passed
    clock.now += 0.5
    bar.update(50 * MiB)
    assert "50%" in frames(stream)[-1]
    assert len(frames(stream)) == 3


def test_progress_line_shows_percent_size_speed_and_time_left() -> None:
    clock, stream = FakeClock(), io.StringIO()
    bar = ProgressLine(stream, "f.bin", 100 * MiB, clock=clock)
    clock.now += 2
    bar.update(25 * MiB)
    line = frames(stream)[-1]
    assert line.startswith("f.bin  [")
    assert " 25%" in line and " 25.0/100.0 MiB" in line
    assert "12.5 MiB/s" in line and "ETA 0:06" in line
    clock.now += 6
    bar.update(100 * MiB)
    bar.finish()
    assert stream.getvalue().endswith("\n")
    last = frames(stream)[-1]
    assert "100%" in last and "ETA" not in last


def test_progress_line_keeps_its_width_and_fits_the_terminal() -> None:
    clock = FakeClock()
    name = "a-rather-long-file-name-indeed.tar.gz"
    for columns in (40, 80, 200):
        bar = ProgressLine(io.StringIO(), name, 10 * 1024**3, clock=clock)
        widths = set()
        for done in (0, 5, 999, 10 * MiB, 3 * 1024**3, 10 * 1024**3):
            clock.now += 1.5
            bar.done = done
            line = bar.render(clock.now, columns)
            assert len(line) <= columns - 1
            widths.add(len(line))
        assert len(widths) == 1, (columns, widths)
    assert len(bar.label) == ProgressLine.LABEL_WIDTH
    assert bar.label.startswith("...") and name.endswith(bar.label[3:])


def test_progress_line_has_a_bar_on_an_80_column_terminal() -> None:
    clock = FakeClock()
    bar = ProgressLine(io.StringIO(), "x" * 40, 999 * 1024**3, clock=clock)
    clock.now += 1
    bar.done = 500 * 1024**3
    assert re.search(r"\[#+-+\]  50%  500\.0/999\.0 GiB", bar.render(clock.now, 80))


def test_progress_line_without_a_total_shows_bytes_and_speed() -> None:
    clock, stream = FakeClock(), io.StringIO()
    bar = ProgressLine(stream, "stdin", None, clock=clock)
    clock.now += 4
    bar.update(8 * MiB)
    line = frames(stream)[-1].strip()
    assert line == f"stdin  {'8.0 MiB':>10}  {'2.0 MiB':>10}/s"
    assert "%" not in line and "[" not in line


@live
def test_info_and_delete_of_a_named_link_on_another_server_never_download(
        server: LiveServer, tmp_path: Path, how: str) -> None:
    """``https://HOST/SLUG/NAME`` from a host that is not --server: ``/SLUG/api/drops/NAME``
    would be the drop's bytes, and use up a one-download drop."""
    out = teledrop("runner", "upload", "--json", "--max-downloads", "1",
                   str(write(tmp_path, "once.txt", b"once")), env=on(server))
    drop = json.loads(out.stdout)
    link = drop["url"] + "/once.txt"
    info = teledrop(how, "info", "--json", link)  # --server is the default, another host
    assert info.code == 0, info.stderr
    assert json.loads(info.stdout) == drop_json(server, drop["slug"])
    assert drop_json(server, drop["slug"])["downloads"] == 0
    gone = teledrop(how, "delete", link, "--token", drop["delete_token"])
    assert gone.code == 0, gone.stderr
    assert gone.stdout == f"deleted {drop['slug']}\n"
    assert server.data.record(drop["slug"]) is None


@pytest.fixture
def mounted(make_app: Any) -> Iterator[tuple[str, Any]]:
    """A real HTTP server with teledrop under ``/drops`` and nothing (404) at the root, as
    behind a proxy that mounts it under a path."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Response

    app = make_app()
    httpd = make_server("127.0.0.1", 0, DispatcherMiddleware(Response("nothing here", 404),
                                                             {"/drops": app}), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/drops", app
    finally:
        httpd.shutdown()


@pytest.mark.parametrize("form", ["link", "link with a name"])
def test_a_link_under_a_path_is_found_by_asking_for_metadata_only(mounted: tuple[str, Any],
                                                                  form: str) -> None:
    base, app = mounted
    created = app.test_client().put("/notes.txt?max_downloads=1", data=b"once",
                                    headers={"Accept": "application/json"},
                                    base_url=base.rsplit("/", 1)[0] + "/", environ_overrides={
                                        "SCRIPT_NAME": "/drops"})
    drop = created.get_json()
    assert drop["url"] == f"{base}/{drop['slug']}"
    link = drop["url"] + ("/notes.txt" if form == "link with a name" else "")
    info = teledrop("runner", "info", "--json", link)
    assert info.code == 0, info.stderr
    assert json.loads(info.stdout)["downloads"] == 0
    gone = teledrop("runner", "delete", link, "--token", drop["delete_token"])
    assert gone.stdout == f"deleted {drop['slug']}\n", gone.stderr


# --- what the client's surroundings must not change -------------------------------------

@live
def test_a_netrc_entry_for_the_server_never_replaces_the_token(strict: LiveServer,
                                                               tmp_path: Path, how: str) -> None:
    """requests applies a ``~/.netrc`` entry for the host over an ``Authorization`` header:
    the server would get the netrc password instead of the upload token."""
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(f"machine {urlsplit(strict.base_url).hostname} login me password netrc-pw\n")
    netrc.chmod(0o600)
    env = on(strict, HOME=str(home), TELEDROP_TOKEN=TOKEN)
    out = teledrop(how, "upload", str(write(tmp_path, "a.txt", b"mine")), env=env)
    assert out.code == 0, out.stderr
    assert download(strict, out.links[0]) == b"mine"
    refused = teledrop(how, "upload", str(write(tmp_path, "b.txt", b"x")),
                       env={**env, "TELEDROP_TOKEN": ""})
    assert refused.code == 1 and "token" in refused.error_line()


ESCAPES = "\x1b]0;owned\x07\x1b[2J\x9b31m\u202e\r"
HOSTILE_ANSWERS = {
    "upload link": ("upload", (201, {"Content-Type": "application/json"},
                               json.dumps({"url": f"http://h/{ESCAPES}abc"}).encode())),
    "json error": ("upload", (400, {"Content-Type": "application/json"}, json.dumps(
        {"error": {"code": "x", "message": f"bad {ESCAPES}thing"}}).encode())),
    "plain error": ("upload", (503, {"Content-Type": "text/plain"},
                               f"down {ESCAPES}now\n".encode())),
    "location": ("upload", (308, {"Location": "https://h/\x1b[2Jx"}, b"")),
    "info": ("info", (200, {"Content-Type": "application/json"}, json.dumps(
        {"url": f"http://h/{ESCAPES}", "filename": f"{ESCAPES}.txt",
         "content_type": ESCAPES, "hash": ESCAPES, "created_at": ESCAPES,
         "expires_at": ESCAPES, "downloads": ESCAPES, "max_downloads": ESCAPES}).encode())),
    "info error": ("info", (404, {"Content-Type": "application/json"}, json.dumps(
        {"error": {"code": "not_found", "message": f"{ESCAPES}gone"}}).encode())),
    "delete error": ("delete", (403, {"Content-Type": "application/json"}, json.dumps(
        {"error": {"code": "forbidden", "message": f"{ESCAPES}no"}}).encode())),
}


@pytest.mark.parametrize("command, answer", list(HOSTILE_ANSWERS.values()),
                         ids=list(HOSTILE_ANSWERS))
def test_terminal_escapes_from_the_server_are_never_printed(scripted: Scripted, tmp_path: Path,
                                                           command: str,
                                                           answer: tuple[int, dict[str, str],
                                                                         bytes]) -> None:
    scripted.answer = answer
    args = {"upload": ["upload", str(write(tmp_path, "a", b"abc"))],
            "info": ["info", "abc"], "delete": ["delete", "abc", "--token", "t"]}[command]
    out = teledrop("runner", *args, "--server", scripted.url)
    printed = out.stdout + out.stderr
    assert printed.strip(), printed
    for char in "\x1b\x07\x9b\u202e\r":
        assert char not in printed, (char, printed)
