"""Downloads through the test client: bytes and headers, ranges,
conditional requests, HEAD, Content-Disposition and the inline/attachment rule, download
limits, expiry and unknown slugs."""

from __future__ import annotations

import os
import types
from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.http import http_date

import teledrop.core.drop
from teledrop import hookimpl
from tests.http_helpers import (
    JSON,
    assert_json_error,
    assert_text_error,
    created_json,
    epoch,
    post_file,
    put_file,
    slug_of,
    upload,
)
from tests.support.downloads import disposition, put_named

DATA = bytes(range(256)) * 40  # 10240 bytes, every byte value
SIZE = len(DATA)
#: Headers a HEAD must share with the GET it stands for.
ENTITY_HEADERS = ("Content-Length", "Content-Type", "ETag", "Last-Modified", "Accept-Ranges",
                  "Content-Disposition", "Content-Security-Policy", "X-Content-Type-Options")


@pytest.fixture
def drop(client: Any) -> dict[str, Any]:
    return upload(client, DATA, "data.bin")


def downloads(client: Any, slug: str) -> int:
    return client.get(f"/api/drops/{slug}").get_json()["downloads"]


# --- bytes and headers -----------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["", "/data.bin", "/any-name.txt", "/a/b/c.tar.gz"])
def test_get_returns_the_bytes_under_the_slug_and_any_name(client: Any, drop: dict[str, Any],
                                                           suffix: str) -> None:
    response = client.get(f"/{drop['slug']}{suffix}")
    assert response.status_code == 200
    assert response.data == DATA


def test_a_download_carries_its_entity_and_safety_headers(client: Any,
                                                          drop: dict[str, Any]) -> None:
    response = client.get(f"/{drop['slug']}")
    assert response.headers["Content-Length"] == str(SIZE)
    assert response.mimetype == "application/octet-stream"
    assert response.headers["ETag"] == f'"{drop["hash"]}"'
    assert response.headers["Last-Modified"] == http_date(epoch(drop["created_at"]))
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("content_type", ["image/gif", "text/plain", "text/csv"])
def test_a_download_is_served_with_its_recorded_content_type(client: Any,
                                                             content_type: str) -> None:
    created = created_json(put_file(client, "/pic", b"GIF89a", headers={
        **JSON, "Content-Type": content_type}))
    response = client.get(f"/{created['slug']}")
    # exactly as recorded: no charset the uploader did not declare
    assert response.headers["Content-Type"] == created["content_type"] == content_type


# --- ranges ----------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "first", "last"), [
    ("bytes=0-4", 0, 4),
    ("bytes=100-199", 100, 199),
    ("bytes=5000-", 5000, SIZE - 1),
    ("bytes=-3", SIZE - 3, SIZE - 1),
    # RFC 9110 §14.1.2: a suffix longer than the representation selects all of it.
    ("bytes=-99999", 0, SIZE - 1),
    ("bytes=10000-99999", 10000, SIZE - 1),
    (f"bytes={SIZE - 1}-{SIZE - 1}", SIZE - 1, SIZE - 1),
])
def test_a_range_is_206_with_its_slice(client: Any, drop: dict[str, Any], header: str,
                                       first: int, last: int) -> None:
    response = client.get(f"/{drop['slug']}", headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
    assert response.headers["Content-Length"] == str(last - first + 1)
    assert response.data == DATA[first:last + 1]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 10}",
                                    "bytes=-0"])
def test_an_unsatisfiable_range_is_416_with_the_length(client: Any, drop: dict[str, Any],
                                                       header: str) -> None:
    response = client.get(f"/{drop['slug']}", headers={"Range": header})
    assert_text_error(response, 416)
    assert response.headers["Content-Range"] == f"bytes */{SIZE}"
    assert downloads(client, drop["slug"]) == 0


def test_an_unsatisfiable_range_in_json(client: Any, drop: dict[str, Any]) -> None:
    response = client.get(f"/{drop['slug']}", headers={**JSON, "Range": f"bytes={SIZE}-"})
    assert_json_error(response, 416)


@pytest.mark.parametrize("header", ["items=0-4", "bytes=0-1,5-6"])
def test_a_range_the_server_does_not_serve_is_ignored(client: Any, drop: dict[str, Any],
                                                      header: str) -> None:
    # RFC 9110 §14.2: a server ignores a Range in a unit it does not know, and may
    # ignore one it will not serve; 416 is for ranges that cannot be satisfied.
    response = client.get(f"/{drop['slug']}", headers={"Range": header})
    assert response.status_code == 200
    assert response.data == DATA


# --- conditional requests and HEAD -----------------------------------------------------

@pytest.mark.parametrize("template", ['"{}"', 'W/"{}"', '"blake3:00", "{}"', "*"])
def test_if_none_match_with_the_etag_is_304_and_not_counted(client: Any, drop: dict[str, Any],
                                                            template: str) -> None:
    condition = template.format(drop["hash"])
    response = client.get(f"/{drop['slug']}", headers={"If-None-Match": condition})
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == f'"{drop["hash"]}"'
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert downloads(client, drop["slug"]) == 0


def test_if_none_match_with_another_etag_is_a_full_download(client: Any,
                                                            drop: dict[str, Any]) -> None:
    response = client.get(f"/{drop['slug']}", headers={"If-None-Match": '"blake3:00"'})
    assert response.status_code == 200 and response.data == DATA
    assert downloads(client, drop["slug"]) == 1


def test_head_has_the_get_headers_no_body_and_is_not_counted(client: Any,
                                                             drop: dict[str, Any]) -> None:
    head = client.head(f"/{drop['slug']}")
    assert head.status_code == 200
    assert head.data == b""
    assert downloads(client, drop["slug"]) == 0
    get = client.get(f"/{drop['slug']}")
    assert {h: head.headers.get(h) for h in ENTITY_HEADERS} == \
        {h: get.headers.get(h) for h in ENTITY_HEADERS}


# --- Content-Disposition ---------------------------------------------------------------


def test_a_non_ascii_name_is_carried_by_filename_star(client: Any) -> None:
    response = put_named(client, "résumé 東京.pdf")
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%20%E6%9D%B1%E4%BA%AC.pdf" in \
        response.headers["Content-Disposition"]
    assert disposition(response) == ("attachment", {"filename": "résumé 東京.pdf"})


def test_a_non_ascii_multipart_name_comes_back_exactly(client: Any) -> None:
    created = created_json(post_file(client, b"x", "Ünïcødé – ½.txt", headers=JSON))
    response = client.get(f"/{created['slug']}")
    assert disposition(response) == ("attachment", {"filename": "Ünïcødé – ½.txt"})


@pytest.mark.parametrize("name", [
    'a"; filename="evil.html"; x=".txt',
    "semi;colon=1.txt",
    '"quoted" name.txt',
    "comma, and = signs.txt",
    "attachment; inline.txt",
    "étrange\"; filename*=UTF-8''evil.html; x=.txt",
])
def test_quotes_and_semicolons_in_a_name_never_change_the_header(client: Any,
                                                                 name: str) -> None:
    response = put_named(client, name, preview=True)
    assert disposition(response) == ("inline", {"filename": name})
    assert len(response.headers.getlist("Content-Disposition")) == 1


@pytest.mark.parametrize("content_type", [
    "text/html", "TEXT/HTML; charset=utf-8", "application/xhtml+xml", "image/svg+xml",
    "application/xml", "text/xml", "application/javascript", "text/javascript",
    "application/ecmascript",
])
def test_active_content_types_are_attachments(client: Any, content_type: str) -> None:
    response = put_named(client, "page.bin", content_type, preview=True)
    assert disposition(response)[0] == "attachment"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("name", ["page.html", "page.htm", "page.xhtml", "pic.svg",
                                  "feed.xml", "app.js", "module.mjs"])
@pytest.mark.parametrize("content_type", [None, "application/octet-stream"])
def test_active_file_extensions_are_attachments(client: Any, name: str,
                                                content_type: str | None) -> None:
    assert disposition(put_named(client, name, content_type, preview=True))[0] == "attachment"


@pytest.mark.parametrize(("name", "content_type"), [
    ("a.png", None), ("a.jpg", None), ("a.gif", None), ("a.txt", None), ("a.pdf", None),
    ("a.mp4", None), ("photo", "image/png"), ("readme", "text/plain"),
])
def test_images_text_and_pdf_are_inline_in_a_preview(client: Any, name: str,
                                                     content_type: str | None) -> None:
    response = put_named(client, name, content_type, preview=True)
    assert disposition(response)[0] == "inline"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize("name", ["a.png", "a.txt", "a.pdf", "page.html"])
def test_without_preview_every_download_is_an_attachment(client: Any, name: str) -> None:
    assert disposition(put_named(client, name))[0] == "attachment"


# --- download limits, expiry, unknown slugs ---------------------------------------------

def test_max_downloads_allows_n_gets_then_410(client: Any) -> None:
    slug = upload(client, b"twice", max_downloads="2")["slug"]
    assert client.get(f"/{slug}").data == b"twice"
    assert downloads(client, slug) == 1
    assert client.get(f"/{slug}").data == b"twice"
    assert_text_error(client.get(f"/{slug}"), 410)
    assert_json_error(client.get(f"/{slug}", headers=JSON), 410, "gone")
    assert client.head(f"/{slug}").status_code == 410
    assert client.get(f"/api/drops/{slug}").status_code == 410


def test_head_and_revalidation_never_use_up_a_download(client: Any) -> None:
    created = upload(client, b"once", max_downloads="1")
    slug, etag = created["slug"], f'"{created["hash"]}"'
    for _ in range(3):
        assert client.head(f"/{slug}").status_code == 200
        assert client.get(f"/{slug}", headers={"If-None-Match": etag}).status_code == 304
    assert downloads(client, slug) == 0
    assert client.get(f"/{slug}").data == b"once"
    assert client.get(f"/{slug}").status_code == 410


@pytest.fixture
def advance_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Moves teledrop's clock (every ``now()`` goes through ``teledrop.core.drop``)
    forward by some seconds, leaving the process's own clock alone."""
    offset = 0
    real = teledrop.core.drop.time.time

    def shifted() -> float:
        return real() + offset

    monkeypatch.setattr(teledrop.core.drop, "time", types.SimpleNamespace(time=shifted))

    def advance(seconds: int) -> None:
        nonlocal offset
        offset += seconds

    return advance


def test_an_expired_drop_is_410(client: Any, advance_clock: Callable[[int], None]) -> None:
    slug = upload(client, b"brief", expires="60")["slug"]
    advance_clock(30)
    assert client.get(f"/{slug}").data == b"brief"
    advance_clock(31)
    assert_text_error(client.get(f"/{slug}"), 410)
    assert_json_error(client.get(f"/{slug}", headers=JSON), 410, "gone")
    assert client.head(f"/{slug}").status_code == 410
    assert client.get(f"/{slug}/brief.txt").status_code == 410
    assert client.get(f"/api/drops/{slug}").status_code == 410


@pytest.mark.parametrize("path", ["/nosuchdrop", "/nosuchdrop/name.txt", "/.hidden",
                                  "/" + "a" * 65, "/%00", "/..%2F..%2Fetc%2Fpasswd"])
def test_an_unknown_slug_is_404(client: Any, drop: dict[str, Any], path: str) -> None:
    assert_text_error(client.get(path), 404)
    assert_json_error(client.get(path, headers=JSON), 404)
    assert client.head(path).status_code == 404


def test_large_download_streams_every_byte(client: Any) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    created = created_json(put_file(client, "/big.bin", data, headers=JSON))
    response = client.get(f"/{created['slug']}")
    assert response.headers["Content-Length"] == str(len(data))
    assert response.data == data


class FixedSlug:
    """Hands out one chosen slug, in place of the default generator's random one."""

    teledrop_plugin_name = "fixed_slug"

    def __init__(self, slug: str) -> None:
        self.slug = slug

    @hookimpl(tryfirst=True)
    def teledrop_generate_slug(self) -> str:
        return self.slug


@pytest.mark.parametrize("slug", ["-abcdefg", "_abcdefg", "ab-_cd-_", "ZZZZZZZ-"])
def test_every_generated_base64url_slug_is_downloadable(make_app: Any, slug: str) -> None:
    # secrets.token_urlsafe draws from A-Z a-z 0-9 - _, so one link in 64 starts with "-".
    client = make_app(plugins=[FixedSlug(slug)]).test_client()
    response = put_file(client, "/f.txt", b"reachable")
    assert slug_of(response) == slug
    assert client.get(f"/{slug}").data == b"reachable"
    assert client.get(f"/api/drops/{slug}").status_code == 200
