"""``teledrop upload``, ``delete`` and ``info`` against a real gunicorn, run both in-process
through click's runner and as the installed ``teledrop`` script.

Proves that files (one, many, empty, oddly named, from stdin) arrive byte for byte and one
link per file is printed in order; that --expires, --max-downloads, --slug, --name reach
the server; that the server and the token come from options or TELEDROP_URL /
TELEDROP_TOKEN; that every failure (taken slug, too large, missing or wrong token, an
unreachable or misbehaving server, a file that changes size mid-upload) is one line on
stderr and a non-zero exit while the other files still go through; that the progress bar
is drawn on a terminal and nothing is drawn into a pipe; and that uploading 256 MiB keeps
the client's peak memory small. The parts that need no teledrop server are in
``test_client.py``.
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
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import blake3
import pytest
import requests

from teledrop.client import (
    Client,
    ClientError,
    Source,
    UploadOptions,
)
from tests.live_server import (
    TELEDROP_SCRIPT,
    LiveServer,
    free_port,
    live_server,
    wait_until,
)

from tests.support.command import clean_env, how, process_env, teledrop, write  # noqa: F401

MiB = 1024 * 1024
TOKEN = "sesame"
live = pytest.mark.gunicorn


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


# --- links on another server, and the client's surroundings ----------------------------

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
