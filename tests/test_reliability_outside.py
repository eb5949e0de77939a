"""Hostile input found by trying teledrop from outside, as an attacker would (docs/reliability.md
lists each with its test): numbers too large to convert, JSON nested past the parser's
recursion, names that only look harmless, bodies whose end nobody announced, and
forwarded headers the documented proxy never sets.

Each gets a clear 4xx, stores nothing, and leaves the service answering.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.http_helpers import (
    JSON,
    assert_json_error,
    assert_nothing_stored,
    assert_text_error,
    post_file,
    put_file,
    upload,
)
from tests.live_server import LiveServer, connect, live_server, read_response
from tests.support.downloads import disposition, put_named
from tests.support.owners import as_owner, bearer, owner_upload, patch, two_owners

live = pytest.mark.gunicorn

#: Past the 4,300 digits Python converts between ``int`` and ``str``, and past a float.
HUGE = "9" * 5000


# --- numbers too large to convert --------------------------------------------------------

@pytest.mark.parametrize("name, value", [
    ("expires", "1" * 400), ("expires", HUGE), ("expires", HUGE + "d"), ("expires", "1" * 400 + ".5"),
    ("max_downloads", HUGE), ("max_downloads", "1" * 400),
], ids=["expires 400 digits", "expires 5000 digits", "expires 5000 digits in days",
        "expires 400 digits and a fraction", "max_downloads 5000 digits",
        "max_downloads 400 digits"])
def test_a_huge_number_in_an_option_is_400(make_app: Any, data_dir: Path, name: str,
                                          value: str) -> None:
    app = make_app()
    client = app.test_client()
    assert_json_error(put_file(client, headers=JSON, query={name: value}), 400, "invalid_option")
    assert name in assert_text_error(post_file(client, fields={name: value}), 400)
    assert_nothing_stored(app, data_dir)


@pytest.mark.parametrize("change", [
    {"expires": "1" * 400}, {"expires": HUGE}, {"expires": int("9" * 400)},
    {"max_downloads": int("9" * 4000)}, {"max_downloads": 2**64},
], ids=["expires 400 digits", "expires 5000 digits", "expires as a huge int",
        "max_downloads 4000 digits", "max_downloads 2**64"])
def test_a_huge_number_in_an_owners_edit_is_400_and_changes_nothing(make_app: Any,
                                                                    change: dict[str, Any]) -> None:
    app = make_app()
    client = app.test_client()
    alice = two_owners(app).alice
    drop = owner_upload(client, alice)
    assert_json_error(patch(client, drop["slug"], change, alice), 400, "invalid_option")
    after = client.get(f"/api/drops/{drop['slug']}", headers=bearer(alice)).get_json()
    assert (after["expires_at"], after["max_downloads"]) == \
        (drop["expires_at"], drop["max_downloads"])


# --- JSON nested past the parser's recursion ---------------------------------------------

@pytest.mark.parametrize("body", [
    "[" * 30_000 + "]" * 30_000,
    '{"title": ' + "[" * 30_000 + "]" * 30_000 + "}",
    '{"":' * 12_000 + "1" + "}" * 12_000,
], ids=["array", "inside an object", "objects"])
def test_json_nested_past_the_parsers_recursion_is_400_malformed_body(make_app: Any, body: str) -> None:
    app = make_app()
    client = app.test_client()
    alice = two_owners(app).alice
    drop = owner_upload(client, alice)
    response = client.patch(f"/api/drops/{drop['slug']}", data=body,
                            content_type="application/json", headers=bearer(alice))
    assert_json_error(response, 400, "malformed_body")
    assert as_owner(client, drop["slug"], alice)["title"] == drop["title"]


# --- names that only look harmless ---------------------------------------------------------

@pytest.mark.parametrize("name", ["invoice%2Epdf", "100% sure.txt", "%E2%80%AEfdp.exe"])
def test_a_percent_in_a_name_is_sent_in_filename_star_too(client: Any, name: str) -> None:
    """A user agent that percent-decodes ``filename`` (RFC 6266 appendix D) would save
    ``invoice%2Epdf`` as ``invoice.pdf``; ``filename*`` is what such agents take first."""
    response = put_named(client, name)
    assert "filename*=UTF-8''" + quote(name, safe=".") in response.headers["Content-Disposition"]
    assert disposition(response) == ("attachment", {"filename": name})


INVISIBLE = {
    "arabic letter mark": "\u061c", "zero width space": "\u200b", "word joiner": "\u2060",
    "byte order mark": "\ufeff", "mongolian vowel separator": "\u180e",
    "tag characters": "\U000e0041\U000e0042", "soft hyphen": "\u00ad",
    "left-to-right mark": "\u200e",
}


@pytest.mark.parametrize("char", list(INVISIBLE.values()), ids=list(INVISIBLE))
def test_an_invisible_format_character_in_a_name_or_title_is_400(make_app: Any, data_dir: Path,
                                                                 char: str) -> None:
    app = make_app()
    client = app.test_client()
    name = f"invoice{char}.pdf"
    response = put_file(client, "/" + quote(name, safe=""), headers=JSON)
    assert "invisible" in assert_json_error(response, 400, "invalid_filename")
    assert_text_error(post_file(client, filename=name), 400)
    assert "title" in assert_text_error(post_file(client, fields={"title": f"a{char}b"}), 400)
    assert "description" in assert_text_error(
        post_file(client, fields={"description": f"a{char}b"}), 400)
    assert_nothing_stored(app, data_dir)
    alice = two_owners(app).alice
    drop = owner_upload(client, alice)
    assert_json_error(patch(client, drop["slug"], {"title": f"x{char}"}, alice), 400,
                      "invalid_option")


@pytest.mark.parametrize("name", ["emoji 👩\u200d💻.png", "می\u200cخواهم.txt"],
                         ids=["zero width joiner", "zero width non-joiner"])
def test_the_joiners_stay_allowed_in_names(client: Any, name: str) -> None:
    """Emoji sequences and Persian spelling need them, and they change what is shown."""
    drop = upload(client, filename=name, title=name)
    assert (drop["filename"], drop["title"]) == (name, name)


@pytest.mark.parametrize("path", ["/a%FFb.txt", "/%C3.txt", "/%ED%A0%80.txt"],
                         ids=["invalid byte", "cut sequence", "encoded surrogate"])
def test_a_put_path_that_is_not_utf8_is_400(make_app: Any, data_dir: Path, path: str) -> None:
    app = make_app()
    response = put_file(app.test_client(), path, headers=JSON)
    assert "UTF-8" in assert_json_error(response, 400, "invalid_filename")
    assert_nothing_stored(app, data_dir)


def test_a_put_path_with_an_encoded_replacement_character_is_taken(client: Any) -> None:
    response = put_file(client, "/a%EF%BF%BDb.txt", headers=JSON)
    assert response.get_json()["filename"] == "a\ufffdb.txt"


TOKEN = "outside-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """An upload token is required, and files stop at 1 MiB."""
    with live_server(tmp_path_factory.mktemp("outside"), server={"workers": 1},
                     auth={"upload_tokens": [TOKEN]},
                     limits={"max_upload_size": "1MiB"}) as running:
        yield running


def raw_exchange(server: LiveServer, data: bytes, shut: bool = False,
                 ) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` (then end the sending side when ``shut``); the response."""
    with connect(server) as sock:
        sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        return read_response(sock, "PUT")


# --- bodies whose end nobody announced ------------------------------------------------------

@pytest.mark.parametrize("path", ["/n.bin", "/"])
def test_a_put_without_content_length_or_chunking_is_411(make_app: Any, data_dir: Path,
                                                         path: str) -> None:
    app = make_app()
    response = app.test_client().put(path, headers=JSON)
    assert "Content-Length" in assert_json_error(response, 411, "length_required")
    assert_nothing_stored(app, data_dir)


@live
@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/1.1"])
def test_a_body_ended_by_closing_the_connection_is_411_not_an_empty_drop(
        server: LiveServer, version: str) -> None:
    before = server.data.snapshot()
    head = f"PUT /closed.txt {version}\r\nHost: x\r\nAccept: application/json\r\n\r\n"
    status, headers, body = raw_exchange(server, head.encode() + b"the whole file", shut=True)
    assert status == 411, body
    assert headers["content-type"] == "application/json"
    assert b"length_required" in body
    assert server.data.snapshot() == before
    assert server.healthy()


@live
def test_a_put_path_of_raw_non_utf8_bytes_is_400_under_gunicorn(server: LiveServer) -> None:
    before = server.data.snapshot()
    # Raw, gunicorn refuses the request line; percent-encoded, teledrop refuses the name.
    for target, words in ((b"/a\xffb.txt", b"bad request"), (b"/a%FFb.txt", b"UTF-8")):
        request = b"PUT " + target + b" HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n" \
            b"Content-Length: 3\r\nConnection: close\r\n\r\nabc"
        status, _, body = raw_exchange(server, request)
        assert status == 400 and words in body, (target, body)
    assert server.data.snapshot() == before


# --- what a private drop reveals (docs/owners.md) ---------------------------------------

@pytest.mark.parametrize("who", ["anonymous", "another owner"])
def test_a_taken_custom_slug_is_409_whoever_holds_it_and_says_nothing_more(make_app: Any,
                                                                         who: str) -> None:
    """The one thing a private drop gives away: a custom slug it holds is taken. The
    refusal is the same as for a public drop's, so it says nothing of privacy or owner."""
    app = make_app()
    client = app.test_client()
    owners = two_owners(app)
    owner_upload(client, owners.alice, slug="secret-plan", private="true")
    owner_upload(client, owners.alice, slug="open-plan")
    headers = {**JSON, **(bearer(owners.bob) if who == "another owner" else {})}
    private, public = (put_file(client, query={"slug": slug}, headers=headers)
                       for slug in ("secret-plan", "open-plan"))
    assert_json_error(private, 409, "slug_taken")
    assert_json_error(public, 409, "slug_taken")
    assert private.get_data(as_text=True).replace("secret", "open") == \
        public.get_data(as_text=True)
    assert set(private.headers.keys()) == set(public.headers.keys())


# --- forwarded headers the documented proxy never sets ---------------------------------

#: What a client adds to bend its own links: nginx sets neither, so ProxyFix saw them as
#: the proxy's.
SPOOFED = {"X-Forwarded-Prefix": "//evil.example", "X-Forwarded-Port": "666"}


def test_a_clients_own_forwarded_prefix_and_port_are_never_trusted(make_app: Any) -> None:
    client = make_app(server={"proxy_hops": 1}).test_client()
    headers = {**SPOOFED, "X-Forwarded-Host": "files.example.org", "X-Forwarded-Proto": "https"}
    response = put_file(client, headers={**headers, **JSON})
    drop = response.get_json()
    assert response.headers["Location"] == f"/{drop['slug']}"
    assert drop["url"] == f"https://files.example.org/{drop['slug']}"
    assert "evil.example" not in client.get("/", headers=headers).get_data(as_text=True)


# --- Expect: 100-continue ------------------------------------------------------------------

def expecting_put(path: str, length: int, token: str | None = TOKEN) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (f"PUT {path} HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n{auth}"
            f"Content-Length: {length}\r\nExpect: 100-continue\r\n\r\n").encode()


def next_head(sock: socket.socket, received: bytearray) -> bytes:
    """The next response head on ``sock`` (through ``received``, what is read beyond it)."""
    while b"\r\n\r\n" not in received:
        data = sock.recv(65536)
        assert data, f"closed after {bytes(received)!r}"
        received += data
    head, _, rest = bytes(received).partition(b"\r\n\r\n")
    received[:] = rest
    return head


def skip_body(sock: socket.socket, received: bytearray, head: bytes) -> None:
    """Read past the body of the response whose ``head`` this is."""
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                  if line.lower().startswith(b"content-length:"))
    while len(received) < length:
        received += sock.recv(65536)
    del received[:length]


def until_closed(sock: socket.socket, received: bytearray) -> bytes:
    while data := sock.recv(65536):
        received += data
    return bytes(received)


@live
@pytest.mark.parametrize("case", ["no token", "too large", "slug taken"])
def test_a_refusal_is_answered_before_100_continue(server: LiveServer, case: str) -> None:
    """The client sends its head and waits: the refusal must come instead of the
    ``100 Continue`` that would make it send the body."""
    taken = server.request("PUT", "/kept.txt?slug=outside-kept", data=b"kept",
                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert taken.status_code in (201, 409), taken.text
    head = {"no token": expecting_put("/a.txt", 1000, token=None),
            "too large": expecting_put("/a.txt", 2 * 1024 * 1024),
            "slug taken": expecting_put("/a.txt?slug=outside-kept", 1000)}[case]
    status = {"no token": 401, "too large": 413, "slug taken": 409}[case]
    before = server.data.snapshot()
    with connect(server) as sock:
        sock.sendall(head)
        received = bytearray()
        first = next_head(sock, received)
        assert first.startswith(f"HTTP/1.1 {status} ".encode()), first
        # The body it announced was never asked for: the connection ends after the answer.
        assert b"100 Continue" not in until_closed(sock, received)
    assert server.data.snapshot() == before


@live
def test_an_accepted_upload_gets_100_continue_then_its_answer(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(expecting_put("/wanted.txt", 5))
        received = bytearray()
        assert next_head(sock, received) == b"HTTP/1.1 100 Continue"
        sock.sendall(b"hello")
        final = next_head(sock, received)
        assert final.startswith(b"HTTP/1.1 201 "), final
        skip_body(sock, received, final)
        # The connection stays usable for the next request.
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert next_head(sock, received).startswith(b"HTTP/1.1 200 ")
