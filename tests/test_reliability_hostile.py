"""Hostile input that tests/test_http_*.py does not already send (docs/reliability.md lists
both): thousands of form parts, huge part headers, Range abuse, header injection through a
stored filename as it reaches the wire, X-Forwarded-* under a real gunicorn, and bodies
whose framing lies (Content-Length against Transfer-Encoding, a body longer than its
Content-Length, a broken chunk size).

Each gets a clear 4xx (or, for a Range the server may ignore, the whole file), stores
nothing, and leaves the service answering.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from werkzeug.http import parse_options_header

from teledrop.core.owners import create_token
from teledrop.web.app import service_of
from tests.http_helpers import (
    JSON,
    MULTIPART,
    Part,
    assert_json_error,
    assert_nothing_stored,
    assert_text_error,
    created_json,
    field_part,
    file_part,
    multipart_body,
    post_parts,
    put_file,
    records,
    stored_paths,
)
from tests.live_server import (
    HOST,
    LAST_CHUNK,
    LiveServer,
    chunk,
    connect,
    live_server,
    read_response,
    read_responses,
    request_head,
    send_until_answered,
)

live = pytest.mark.gunicorn

MiB = 1024 * 1024


# --- thousands of parts, huge part headers (test client) ---------------------------------

def many_fields(n: int) -> list[Part]:
    return [field_part(f"f{i}", "v") for i in range(n)]


PART_FLOODS = {
    "file then 5000 fields": [file_part(), *many_fields(5000)],
    "5000 fields then the file": [*many_fields(5000), file_part()],
    "5000 nameless empty parts": [*[Part("") for _ in range(5000)], file_part()],
    "5000 file parts": [Part("file", b"x", f"{i}.txt") for i in range(5000)],
}


@pytest.mark.parametrize("case", list(PART_FLOODS))
def test_thousands_of_parts_are_400_in_one_line(make_app: Any, data_dir: Path,
                                                case: str) -> None:
    app = make_app()
    client = app.test_client()
    assert_text_error(post_parts(client, *PART_FLOODS[case]), 400)
    assert_json_error(post_parts(client, *PART_FLOODS[case], headers=JSON), 400,
                      "malformed_body")
    assert_nothing_stored(app, data_dir)


@pytest.mark.parametrize("exists", [True, False], ids=["a drop", "no drop"])
def test_a_big_form_to_a_drop_link_is_refused_unread(make_app: Any, data_dir: Path,
                                                     exists: bool) -> None:
    """Only an upload may be big: the password form on a drop's link is refused past a few
    KiB before its body is parsed into memory, token or not."""
    app = make_app()
    client = app.test_client()
    path = "/no-such-drop"
    if exists:
        path = "/" + created_json(put_file(client, "/a.txt", b"secret", headers=JSON))["slug"]
    before = stored_paths(data_dir), records(app)
    body = b"password=" + b"x" * (2 * 1024 * 1024)
    response = client.post(path, data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", **JSON})
    assert_json_error(response, 413, "too_large")
    assert (stored_paths(data_dir), records(app)) == before


def test_a_big_json_edit_is_refused_unread(make_app: Any) -> None:
    app = make_app()
    client = app.test_client()
    token = create_token(service_of(app), "alice")
    headers = {"Authorization": f"Bearer {token}", **JSON}
    drop = created_json(put_file(client, "/a.txt", b"x", headers=headers))
    body = json.dumps({"title": "t" * (2 * 1024 * 1024)})
    response = client.patch(f"/api/drops/{drop['slug']}", data=body,
                            headers={**headers, "Content-Type": "application/json"})
    assert_json_error(response, 413, "too_large")
    assert client.get(f"/api/drops/{drop['slug']}").get_json()["title"] == ""


def test_a_multipart_post_to_a_drop_link_is_not_read_for_a_password(make_app: Any) -> None:
    client = make_app().test_client()
    drop = created_json(put_file(client, "/a.txt", b"secret", headers=JSON))
    body = multipart_body(field_part("password", "whatever"))
    response = client.post(f"/{drop['slug']}", data=body,
                           headers={"Content-Type": MULTIPART, **JSON})
    assert response.status_code == 200 and response.data == b"secret"


@pytest.mark.parametrize("content_type", [
    "multipart/form-data; boundary*=UTF-8''%E2%82%AC",
    "multipart/form-data; boundary=" + "b" * 71,
    "multipart/form-data; boundary*=UTF-8''a%0Db",
], ids=["non-ascii", "71 characters", "carriage return"])
def test_a_boundary_outside_rfc_2046_is_400(make_app: Any, data_dir: Path,
                                          content_type: str) -> None:
    app = make_app()
    response = app.test_client().post("/", data=multipart_body(file_part()),
                                      headers={"Content-Type": content_type, **JSON})
    assert_json_error(response, 400, "malformed_body")
    assert_nothing_stored(app, data_dir)


def with_headers(extra: bytes) -> Part:
    """The file part with ``extra`` raw header lines after its Content-Disposition."""
    return Part("file", b"payload", disposition=b'name="file"; filename="a.txt"' + extra)


HUGE_PART_HEADERS = {
    # Past the decoder's whole buffer (2 MiB + a field).
    "one 3 MiB header": with_headers(b"\r\nX-Junk: " + b"a" * (3 * MiB)),
    # gunicorn refuses an 8190-byte header field, or more than 100 fields, in the
    # request itself; a part's headers are no less hostile.
    "one 64 KiB header": with_headers(b"\r\nX-Junk: " + b"a" * (64 * 1024)),
    "10000 header lines": with_headers(b"".join(b"\r\nX-H%d: v" % i for i in range(10000))),
    "a 64 KiB filename": Part("file", b"x", disposition=b'name="file"; filename="'
                              + b"a" * (64 * 1024) + b'"'),
}


@pytest.mark.parametrize("case", list(HUGE_PART_HEADERS))
def test_huge_part_headers_are_400_and_store_nothing(make_app: Any, data_dir: Path,
                                                     case: str) -> None:
    app = make_app()
    response = post_parts(app.test_client(), HUGE_PART_HEADERS[case])
    assert_text_error(response, 400)
    assert_nothing_stored(app, data_dir)


# --- filenames that try to reach the response headers (test client) ----------------------

@pytest.mark.parametrize("disposition", [
    b"name=\"file\"; filename*=UTF-8''a%0D%0AX-Injected%3A%201.txt",
    b"name=\"file\"; filename*=UTF-8''a%0Ab.txt",
    b"name=\"file\"; filename*=UTF-8''a%00b.txt",
    b"name=\"file\"; filename*=UTF-8''a%C2%85b.txt",  # NEL
], ids=["crlf", "lf", "nul", "nel"])
def test_a_control_character_smuggled_in_filename_star_is_400(
        make_app: Any, data_dir: Path, disposition: bytes) -> None:
    # filename* is percent-encoded: the control character only appears once decoded.
    app = make_app()
    assert_json_error(post_parts(app.test_client(), Part("file", b"x", disposition=disposition),
                                 headers=JSON), 400, "invalid_filename")
    assert_nothing_stored(app, data_dir)


@pytest.mark.parametrize("name", ["invoice\u202efdp.exe", "a\u2066b.txt", "\u200fx.txt"],
                         ids=["right-to-left override", "left-to-right isolate",
                              "right-to-left mark"])
def test_a_bidi_control_in_a_filename_is_400(make_app: Any, data_dir: Path,
                                             name: str) -> None:
    # "invoice<RLO>fdp.exe" displays as "invoiceexe.pdf": a download name that lies about
    # its own extension.
    app = make_app()
    assert_json_error(put_file(app.test_client(), "/" + quote(name), b"x", headers=JSON),
                      400, "invalid_filename")
    assert_nothing_stored(app, data_dir)


# --- Range abuse (test client) -----------------------------------------------------------

DATA = bytes(range(256)) * 40
SIZE = len(DATA)


@pytest.fixture
def slug(client: Any) -> str:
    return created_json(put_file(client, "/r.bin", DATA, headers=JSON))["slug"]


@pytest.mark.parametrize("header", [
    "bytes=0-,0-,0-,0-",  # the same bytes again and again: an amplification attempt
    ",".join(["bytes=0-0", *(f"{i}-{i}" for i in range(1, 2000))]),
    "bytes=0-0,-1",
    "bytes=5-2", "bytes=--1", "bytes=0x10-", "bytes=1-2-3", "bytes=-", "bytes=",
    "bytes=1e3-", "bytes=\u0663-", "bytes=0-1;2-3", "pages=0-1",
], ids=["repeated whole", "2000 ranges", "range and suffix", "reversed", "double minus",
        "hex", "three numbers", "lone minus", "empty", "exponent", "arabic digit",
        "semicolon", "unknown unit"])
def test_a_range_teledrop_will_not_serve_gets_the_whole_file_once(client: Any, slug: str,
                                                                  header: str) -> None:
    # RFC 9110 §14.2: a server may ignore Range; teledrop serves one range or none, so a
    # request for many gets one copy of the file, never a multipart of many copies.
    response = client.get(f"/{slug}", headers={"Range": header})
    assert response.status_code == 200
    assert response.mimetype == "application/octet-stream"
    assert response.headers["Content-Length"] == str(SIZE)
    assert "Content-Range" not in response.headers
    assert response.data == DATA


OVERFLOWING = [
    ("bytes=0-99999999999999999999", 206, (0, SIZE - 1)),
    ("bytes=-99999999999999999999", 206, (0, SIZE - 1)),
    ("bytes=-18446744073709551616", 206, (0, SIZE - 1)),
    ("bytes=00000000000000000000000001-2", 206, (1, 2)),
    ("bytes=99999999999999999999-", 416, None),
    ("bytes=9223372036854775807-", 416, None),
    ("bytes=18446744073709551616-18446744073709551617", 416, None),
]


@pytest.mark.parametrize("header, status, span", OVERFLOWING)
def test_overflowing_range_numbers_are_clamped_or_416(client: Any, slug: str, header: str,
                                                      status: int,
                                                      span: tuple[int, int] | None) -> None:
    response = client.get(f"/{slug}", headers={"Range": header})
    assert response.status_code == status
    if span is None:
        assert_text_error(response, 416)
        assert response.headers["Content-Range"] == f"bytes */{SIZE}"
    else:
        first, last = span
        assert response.headers["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
        assert response.data == DATA[first:last + 1]


@pytest.mark.parametrize("if_range", ["garbage", '"blake3:00"', "W/\"x\"",
                                      "Mon, 99 Foo 9999 99:99:99 GMT"])
def test_a_stale_or_broken_if_range_gets_the_whole_file(client: Any, slug: str,
                                                        if_range: str) -> None:
    response = client.get(f"/{slug}", headers={"Range": "bytes=0-1", "If-Range": if_range})
    assert response.status_code == 200 and response.data == DATA


# --- under a real gunicorn -----------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("hostile"), server={"workers": 1}) as running:
        yield running


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("proxied"),
                     server={"workers": 1, "proxy_hops": 1}) as running:
        yield running


def exchange(server: LiveServer, data: bytes, method: str = "PUT",
             timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes (stopping if the server answers first); the first response."""
    with connect(server) as sock:
        send_until_answered(sock, [data[i:i + 64 * 1024] for i in range(0, len(data), 64 * 1024)])
        return read_response(sock, method, timeout=timeout)


def raw_head(server: LiveServer, path: str) -> list[bytes]:
    """The response head of ``GET path`` exactly as it came off the socket, line by line."""
    with connect(server) as sock:
        sock.sendall(request_head("GET", path, {"Connection": "close"}))
        received = b""
        while b"\r\n\r\n" not in received:
            data = sock.recv(65536)
            assert data, "the connection closed before the end of the head"
            received += data
    return received.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


@live
def test_a_hundred_thousand_parts_are_400_in_one_line(server: LiveServer) -> None:
    before = server.data.snapshot()
    body = multipart_body(file_part(), *many_fields(100_000))
    assert len(body) > 5 * MiB
    status, _, answer = exchange(server, request_head("POST", "/", {
        "Content-Type": MULTIPART, "Content-Length": str(len(body))}) + body, "POST")
    assert status == 400, answer
    assert answer.count(b"\n") == 1 and b"parts" in answer
    server.data.assert_consistent()
    assert server.data.snapshot() == before


@live
@pytest.mark.parametrize("header, status, span", OVERFLOWING + [
    ("bytes=0-,0-,0-,0-", 200, (0, SIZE - 1)),
])
def test_range_abuse_through_sendfile(server: LiveServer, header: str, status: int,
                                      span: tuple[int, int] | None) -> None:
    drop = server.request("PUT", "/r.bin", data=DATA, headers=JSON).json()
    response = server.request("GET", f"/{drop['slug']}", headers={"Range": header})
    assert response.status_code == status
    if span is not None:
        first, last = span
        assert response.content == DATA[first:last + 1]
        assert response.headers["Content-Length"] == str(last - first + 1)
    assert server.healthy()


STORED_NAMES = [
    'a"; filename="evil.html"; x=".txt',
    "semi;colon=1.txt",
    'quote" apostrophe\' backtick`.txt',
    "résumé 東京.pdf",
    "emoji 👩\u200d💻.png",
    "%0d%0aX-Injected: 1.txt",
    "=?utf-8?q?X-Injected=3A_1?=.txt",
]


@live
@pytest.mark.parametrize("name", STORED_NAMES)
def test_a_stored_filename_never_adds_or_bends_a_header_on_the_wire(server: LiveServer,
                                                                    name: str) -> None:
    created = server.request("PUT", "/" + quote(name, safe=""), data=b"content", headers=JSON)
    assert created.status_code == 201, created.text
    assert created.json()["filename"] == name
    lines = raw_head(server, f"/{created.json()['slug']}")
    assert lines[0].startswith(b"HTTP/1.1 200")
    for line in lines:
        assert line.isascii() and all(32 <= b < 127 for b in line), line
    names = [line.split(b":", 1)[0].lower() for line in lines[1:]]
    assert names.count(b"content-disposition") == 1
    assert b"x-injected" not in names
    header = next(line for line in lines if line.lower().startswith(b"content-disposition:"))
    kind, params = parse_options_header(header.split(b":", 1)[1].decode().strip())
    assert kind in ("inline", "attachment")
    assert params["filename"] == name


FORWARDED = {"X-Forwarded-Host": "files.example.org", "X-Forwarded-Proto": "https",
             "X-Forwarded-Prefix": "/drop", "X-Forwarded-For": "203.0.113.9",
             "Forwarded": "for=203.0.113.9;host=files.example.org;proto=https"}


def link_and_location(server: LiveServer, headers: dict[str, str]) -> tuple[str, str]:
    response = server.request("PUT", "/f.txt", data=b"x", headers={**headers, **JSON})
    assert response.status_code == 201, response.text
    return response.json()["url"].rsplit("/", 1)[0], response.headers["Location"]


@live
def test_forwarded_headers_are_ignored_by_a_server_with_no_trusted_proxy(
        server: LiveServer) -> None:
    link, location = link_and_location(server, FORWARDED)
    assert link == f"http://{HOST}:{server.port}"
    assert location.count("/") == 1
    usage = server.request("GET", "/", headers=FORWARDED).text
    assert "files.example.org" not in usage and "https://" not in usage


@live
def test_forwarded_headers_are_honoured_behind_one_trusted_proxy(proxied: LiveServer) -> None:
    link, location = link_and_location(proxied, FORWARDED)
    assert link == "https://files.example.org"
    assert location.count("/") == 1  # X-Forwarded-Prefix is not a header nginx sets
    # Only the hop the proxy appended counts: what the client put before it is ignored.
    link, _ = link_and_location(proxied, {"X-Forwarded-Host": "evil.example, files.example.org",
                                          "X-Forwarded-Proto": "http, https"})
    assert link == "https://files.example.org"
    # Without the headers the proxy would add, links come from the request itself.
    link, _ = link_and_location(proxied, {})
    assert link == f"http://{HOST}:{proxied.port}"


SMUGGLING = {
    "content-length and chunked": {"Content-Length": "100", "Transfer-Encoding": "chunked"},
    "chunked and content-length": {"Transfer-Encoding": "chunked", "Content-Length": "5"},
    "identity transfer-encoding": {"Transfer-Encoding": "identity"},
    "negative content-length": {"Content-Length": "-1"},
}


@live
@pytest.mark.parametrize("case", list(SMUGGLING))
def test_a_body_framed_two_ways_is_400_and_stores_nothing(server: LiveServer,
                                                          case: str) -> None:
    before = server.data.snapshot()
    body = b"x" * 100
    status, _, _ = exchange(server, request_head("PUT", "/a.bin", SMUGGLING[case])
                            + chunk(body) + LAST_CHUNK)
    assert status == 400
    assert server.data.snapshot() == before
    assert server.healthy()


def assert_one_plain_line(headers: dict[str, str], body: bytes, words: str) -> None:
    """teledrop's error form, also for what gunicorn refuses before teledrop runs."""
    assert headers["content-type"] == "text/plain; charset=utf-8", headers
    assert headers["x-content-type-options"] == "nosniff"
    text = body.decode()
    assert text.endswith("\n") and text.count("\n") == 1 and "<" not in text, text
    assert words in text.lower(), text


@live
def test_two_content_lengths_are_400(server: LiveServer) -> None:
    before = server.data.snapshot()
    head = request_head("PUT", "/a.bin", {"Content-Length": "10"})
    status, headers, body = exchange(server,
                                     head[:-2] + b"Content-Length: 20\r\n\r\n" + b"0" * 20)
    assert status == 400
    assert_one_plain_line(headers, body, "content-length")
    assert server.data.snapshot() == before


@live
@pytest.mark.parametrize("request_bytes, status, words", [
    (b"GARBAGE\r\n\r\n", 400, "invalid request line"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, "bad request"),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri too long"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"b" * 9000 + b"\r\n\r\n", 431,
     "request header fields too large"),
    (b"GET /\x1b[31mred HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad request"),
], ids=["request line", "header without colon", "uri too long", "header too large",
        "escape in target"])
def test_a_request_gunicorn_cannot_parse_gets_one_plain_line(
        server: LiveServer, request_bytes: bytes, status: int, words: str) -> None:
    got, headers, body = exchange(server, request_bytes, method="GET")
    assert got == status, body
    assert_one_plain_line(headers, body, words)
    assert "\x1b" not in body.decode()  # nothing from the request reaches a terminal raw
    assert server.healthy()


@live
def test_bytes_past_the_content_length_are_not_part_of_the_file(server: LiveServer) -> None:
    smuggled = request_head("DELETE", "/whatever", {"X-Delete-Token": "x"})
    with connect(server) as sock:
        sock.sendall(request_head("PUT", "/a.bin", {"Content-Length": "10", **JSON})
                     + b"0123456789" + smuggled)
        # The rest is the next request on the connection, answered on its own. Both
        # answers are read through one buffer: they may arrive together.
        (status, body), (follow_up, _) = read_responses(sock, 2)
    assert status == 201, body
    assert follow_up == 404
    slug = json.loads(body)["slug"]
    assert server.request("GET", f"/{slug}").content == b"0123456789"
    server.data.assert_consistent()


@live
@pytest.mark.parametrize("framing", [b"zz\r\nabc\r\n", b"3\r\nabcXY", b"3;\x00\r\nabc\r\n"],
                         ids=["not hex", "no terminator", "nul in extension"])
def test_a_broken_chunk_is_400_and_stores_nothing(server: LiveServer, framing: bytes) -> None:
    before = server.data.snapshot()
    log_start = len(server.log())
    status, _, body = exchange(server, request_head("PUT", "/a.bin", {
        "Transfer-Encoding": "chunked"}) + framing + LAST_CHUNK)
    assert status == 400, body
    server.data.assert_consistent()
    assert server.data.snapshot() == before
    assert "Traceback" not in server.log()[log_start:]
