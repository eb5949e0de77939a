"""The client's parts that need no teledrop server: link parsing, the progress line, usage
errors, and how ``teledrop upload`` fails against a server that is unreachable or is not
teledrop (a scripted HTTP server on loopback): one line on stderr, a non-zero exit.
The commands against a real gunicorn are in ``test_client_live.py``.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

import teledrop.client as client_module
from teledrop.client import ClientError, ProgressLine, link_readings, normalize_server
from tests.live_server import free_port
from tests.support.command import clean_env, how, teledrop, write  # noqa: F401

MiB = 1024 * 1024

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


# --- links under a path, and what the server says -------------------------------------

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
