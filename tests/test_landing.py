"""The landing page of ``GET /{slug}``, through Flask's test client: a browser navigation
gets an HTML page about the drop (its name, size, type, expiry, downloads left, title,
description, preview, a Download button to ``/{slug}/{filename}`` and the QR code of the
link), and every other request gets the bytes exactly as before; viewing never counts a
download; gone, password-protected and private drops keep their rules; hostile names and
titles are escaped."""

from __future__ import annotations

import time
import urllib.parse
from typing import Any
from urllib.parse import quote, urljoin

import pytest
import segno
from flask import Flask

from teledrop.web.app import service_of
from teledrop.hosts.pages import html_first
from teledrop.hosts.qr import qr_data_uri, qr_svg
from tests.http_helpers import JSON, post_file, slug_of
from tests.support.html import HOSTILE_NAME, Page

#: What Chromium sends when a person opens a link.
NAVIGATE = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                      "image/webp,*/*;q=0.8",
            "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document",
            "Sec-Fetch-Site": "none", "Sec-Fetch-User": "?1"}
#: A browser that sends no fetch metadata: ``Accept`` alone says it navigates.
OLD_BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
DATA = b"the drop's own bytes\n"
HOSTILE = HOSTILE_NAME


def upload(client: Any, data: bytes = DATA, filename: str = "notes.txt",
           content_type: str | None = "text/plain", **options: str) -> str:
    response = post_file(client, data, filename, content_type, query=options, headers=JSON)
    assert response.status_code == 201, response.get_data(as_text=True)
    return slug_of(response)


def downloads(app: Flask, slug: str) -> int:
    drop = service_of(app).metadata.get(slug)
    assert drop is not None
    return drop.downloads


def landing(response: Any) -> Page:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    return Page(response.get_data(as_text=True))


def facts(page: Page) -> dict[str, str]:
    """The page's list of facts, term to text."""
    html_terms = [t for t in page.text if t.strip()]
    pairs: dict[str, str] = {}
    for term in ("File", "Size", "Type", "Expires", "Downloads left"):
        at = html_terms.index(term)
        pairs[term] = html_terms[at + 1].strip()
    return pairs


def previews(page: Page, tag: str) -> list[dict[str, str | None]]:
    """The ``tag`` elements of the page but its QR code."""
    return [e for e in page.all(tag) if "qr" not in (e.get("class") or "")]


# --- who gets the page ------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    NAVIGATE,
    OLD_BROWSER,
    {"Accept": "text/html"},
    {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Accept": "*/*"},
    {"Sec-Fetch-Mode": "navigate"},
], ids=["chromium", "no-fetch-metadata", "html-only", "navigate-any-accept", "navigate-only"])
def test_a_browser_navigation_gets_the_landing_page(app: Flask, client: Any,
                                                    headers: dict[str, str]) -> None:
    slug = upload(client)
    page = landing(client.get(f"/{slug}", headers=headers))
    assert "notes.txt" in page.all_text()
    assert downloads(app, slug) == 0


@pytest.mark.parametrize(("path", "headers"), [
    ("/{slug}", {}),
    ("/{slug}", {"Accept": "*/*", "User-Agent": "curl/8.5.0"}),
    ("/{slug}", {"Accept": "*/*", "User-Agent": "Wget/1.21.3"}),
    ("/{slug}", {"Accept": "*/*, text/html"}),
    ("/{slug}", {"Accept": "application/json"}),
    ("/{slug}", {"Accept": "text/html;q=0, */*"}),
    ("/{slug}", {"Accept": "image/avif,image/webp,*/*;q=0.8", "Sec-Fetch-Mode": "no-cors",
                 "Sec-Fetch-Dest": "image"}),
    ("/{slug}", {"Accept": "text/html", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}),
    ("/{slug}", {**NAVIGATE, "Sec-Fetch-Dest": "iframe"}),
    ("/{slug}?download", NAVIGATE),
    ("/{slug}?download=1", OLD_BROWSER),
    ("/{slug}?preview", NAVIGATE),
    ("/{slug}/notes.txt", NAVIGATE),
    ("/{slug}/any-name", OLD_BROWSER),
], ids=["no-headers", "curl", "wget", "any-first", "json", "html-refused", "img", "fetch",
        "iframe", "download", "download-old-browser", "preview", "named", "named-other"])
def test_everything_else_gets_the_bytes_and_counts(app: Flask, client: Any, path: str,
                                                   headers: dict[str, str]) -> None:
    slug = upload(client)
    response = client.get(path.format(slug=slug), headers=headers)
    assert response.status_code == 200 and response.data == DATA
    assert response.headers["Content-Type"] == "text/plain"
    assert downloads(app, slug) == 1


def test_head_range_and_if_none_match_are_as_before(app: Flask, client: Any) -> None:
    slug = upload(client)
    head = client.head(f"/{slug}", headers=NAVIGATE)
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == str(len(DATA))
    assert head.headers["ETag"]
    part = client.get(f"/{slug}", headers={**NAVIGATE, "Range": "bytes=4-7"})
    assert part.status_code == 206 and part.data == DATA[4:8]
    etag = head.headers["ETag"]
    assert client.get(f"/{slug}", headers={"If-None-Match": etag}).status_code == 304
    assert downloads(app, slug) == 1  # the range; HEAD and 304 never count


def test_every_answer_of_the_short_link_varies_on_what_chooses_it(client: Any) -> None:
    slug = upload(client)
    answers = [client.get(f"/{slug}", headers=NAVIGATE), client.get(f"/{slug}"),
               client.head(f"/{slug}"),
               client.get(f"/{slug}", headers={"Range": "bytes=0-0"})]
    for response in answers:
        vary = {v.strip().lower() for v in response.headers.get("Vary", "").split(",")}
        assert {"accept", "sec-fetch-mode", "sec-fetch-dest"} <= vary, response


@pytest.mark.parametrize(("accept", "first"), [
    ("text/html", True), ("TEXT/HTML ; q=0.9, */*", True), ("text/html;q=0", False),
    ("text/html;q=x", False), ("*/*", False), ("", False), ("application/xhtml+xml", False),
    ("image/webp,text/html", False),
])
def test_html_first_reads_the_first_listed_type(accept: str, first: bool) -> None:
    assert html_first(accept) is first


# --- what the page says -----------------------------------------------------------------

def test_the_page_tells_everything_about_the_drop(app: Flask, client: Any) -> None:
    slug = upload(client, max_downloads="3", expires="6d", title="Quarterly notes",
                  description="Numbers for the meeting.")
    client.get(f"/{slug}")  # one download taken
    response = client.get(f"/{slug}", headers=NAVIGATE)
    page = landing(response)
    text = page.all_text()
    assert page.all("h1") and "Quarterly notes" in text and "Numbers for the meeting." in text
    told = facts(page)
    assert told["File"] == "notes.txt"
    assert told["Size"] == f"{len(DATA)} bytes"
    assert told["Type"] == "text/plain"
    assert told["Downloads left"] == "2 of 3"
    assert "(in 6 days)" in text
    (expiry,) = page.all("time")
    drop = service_of(app).metadata.get(slug)
    assert drop is not None
    assert expiry["datetime"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(drop.expires_at))
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert downloads(app, slug) == 1


def test_the_download_button_leads_to_the_bytes(app: Flask, client: Any) -> None:
    name = "résumé 1 #2.txt"
    slug = upload(client, filename=name)
    url = f"http://localhost/{slug}"
    page = landing(client.get(f"/{slug}", headers=NAVIGATE))
    (button,) = [a for a in page.all("a") if "download" in (a.get("class") or "")]
    target = urljoin(url, button["href"] or "")
    assert target == f"{url}/{quote(name, safe='')}"
    path = urllib.parse.urlsplit(target).path
    response = client.get(path, headers=NAVIGATE)
    assert response.status_code == 200 and response.data == DATA
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert downloads(app, slug) == 1


def test_the_page_finds_its_files_under_a_mount_path(client: Any) -> None:
    slug = upload(client)
    base = "http://localhost/mounted/here"
    page = landing(client.get(f"/{slug}", headers=NAVIGATE, base_url=base))
    for url in page.urls():
        if url.startswith("data:"):
            continue
        assert urljoin(f"{base}/{slug}", url).startswith(base + "/"), url


def test_the_qr_code_is_segnos_drawing_of_the_link(client: Any) -> None:
    slug = upload(client)
    page = landing(client.get(f"/{slug}", headers=NAVIGATE))
    (qr,) = [img for img in page.all("img") if "qr" in (img.get("class") or "")]
    assert qr["src"] == qr_data_uri(f"http://localhost/{slug}")
    assert qr["alt"]


def test_the_qr_route_draws_only_this_servers_links(client: Any) -> None:
    slug = upload(client)
    link = f"http://localhost/{slug}"
    response = client.get("/api/qr.svg", query_string={"link": link})
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert response.data == qr_svg(link)
    assert response.data.startswith(b"<svg") and b"<script" not in response.data
    expected = segno.make(link, error="m")
    assert f'width="{expected.symbol_size(scale=5)[0]}"'.encode() in response.data \
        or f"width='{expected.symbol_size(scale=5)[0]}'".encode() in response.data
    for other in ("https://example.com/abc", "http://localhost/api", "http://localhost/",
                  "http://localhost/a/b", ""):
        refused = client.get("/api/qr.svg", query_string={"link": other}, headers=JSON)
        assert refused.status_code == 400, other


@pytest.mark.parametrize(("content_type", "tag"), [
    ("image/png", "img"), ("video/mp4", "video"), ("audio/ogg", "audio")])
def test_a_shown_type_is_previewed_inline_without_counting(
        app: Flask, client: Any, content_type: str, tag: str) -> None:
    slug = upload(client, filename="media.bin", content_type=content_type)
    page = landing(client.get(f"/{slug}", headers=NAVIGATE))
    (element,) = previews(page, tag)
    assert element["src"] == f"{slug}/media.bin?preview"
    if tag != "img":
        assert element["preload"] == "none"  # nothing is fetched until it is played
    assert downloads(app, slug) == 0


def test_a_limited_drop_offers_its_preview_as_a_link_and_survives_viewing(
        app: Flask, client: Any) -> None:
    slug = upload(client, filename="photo.png", content_type="image/png", max_downloads="1")
    for _ in range(3):
        page = landing(client.get(f"/{slug}", headers=NAVIGATE))
        assert previews(page, "img") == []
        assert any(a["href"] == f"{slug}/photo.png?preview" for a in page.all("a"))
    assert downloads(app, slug) == 0
    assert "1 of 1" in facts(landing(client.get(f"/{slug}", headers=NAVIGATE)))["Downloads left"]
    assert client.get(f"/{slug}").status_code == 200
    assert client.get(f"/{slug}", headers=NAVIGATE).status_code == 410


def test_a_type_never_shown_inline_has_no_preview(client: Any) -> None:
    slug = upload(client, filename="page.html", content_type="text/html")
    page = landing(client.get(f"/{slug}", headers=NAVIGATE))
    assert not any("?preview" in url for url in page.urls())
    assert page.all("iframe") == [] and page.all("video") == []


@pytest.mark.parametrize(("gone", "status"), [
    ("expired", 410), ("exhausted", 410), ("deleted", 404), ("unknown", 404)])
def test_a_gone_drop_is_a_page_saying_so_for_browsers_and_the_error_for_others(app: Flask, client: Any, gone: str,
                                              status: int,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    slug = upload(client, max_downloads="1")
    metadata = service_of(app).metadata
    drop = metadata.get(slug)
    assert drop is not None
    if gone == "expired":
        monkeypatch.setattr(time, "time", lambda: float(drop.expires_at + 1))
    elif gone == "exhausted":
        client.get(f"/{slug}")
    elif gone == "deleted":
        metadata.delete(slug, drop.blob_id)
    else:
        slug = "no-such-drop"
    for path in (f"/{slug}", f"/{slug}/notes.txt"):
        response = client.get(path, headers=NAVIGATE)
        assert response.status_code == status and response.mimetype == "text/html"
        assert response.headers["Vary"] == "Accept, Sec-Fetch-Mode, Sec-Fetch-Dest"
        text = response.get_data(as_text=True)
        assert "notes.txt" not in text
        page = Page(text)
        heading = "This file is gone" if status == 410 else "Nothing here"
        assert f"<h1>{heading}</h1>" in text
        root = "./" if path.count("/") == 1 else "../"
        assert {"href": root} in [{"href": a["href"]} for a in page.all("a")]  # upload a file
        # everything but a browser opening the link still gets the error itself
        plain = client.get(path)
        assert plain.status_code == status and plain.mimetype == "text/plain"
        assert plain.headers["Vary"] == "Accept, Sec-Fetch-Mode, Sec-Fetch-Dest"
        as_json = client.get(path, headers=JSON)
        assert as_json.status_code == status
        assert as_json.get_json()["error"]["code"] == ("gone" if status == 410 else "not_found")
        assert client.get(path, headers={**NAVIGATE, "Range": "bytes=0-1"}).mimetype \
            == "text/plain"


# --- password and private drops ---------------------------------------------------------

def test_a_password_drop_asks_first_then_shows_the_page_then_downloads(
        app: Flask, client: Any) -> None:
    response = post_file(client, DATA, "locked.txt", "text/plain", fields={"password": "pw"},
                         headers=JSON, query={"title": "Locked"})
    slug = slug_of(response)
    asked = client.get(f"/{slug}", headers=NAVIGATE)
    assert asked.status_code == 401 and asked.mimetype == "text/html"
    assert "Locked" not in asked.get_data(as_text=True)  # nothing shown before the password
    form = Page(asked.get_data(as_text=True)).all("form")[0]
    action = urljoin(f"http://localhost/{slug}", form["action"] or "")
    assert action == f"http://localhost/{slug}"

    wrong = client.post(f"/{slug}", data={"password": "nope"}, headers=NAVIGATE)
    assert wrong.status_code == 401 and "Locked" not in wrong.get_data(as_text=True)
    shown = client.post(f"/{slug}", data={"password": "pw"}, headers=NAVIGATE)
    page = landing(shown)
    assert "Locked" in page.all_text() and facts(page)["File"] == "locked.txt"
    assert shown.headers["Cache-Control"] == "no-store"
    assert not any("?preview" in url for url in page.urls())
    assert downloads(app, slug) == 0
    # The Download button posts the password again, to the named URL, never in a link.
    (download,) = [f for f in page.all("form")]
    assert (download["method"] or "").lower() == "post"
    target = urljoin(f"http://localhost/{slug}", download["action"] or "")
    assert target == f"http://localhost/{slug}/locked.txt"
    assert "pw" not in target
    hidden = [i for i in page.all("input") if i.get("name") == "password"]
    assert [i["type"] for i in hidden] == ["hidden"] and hidden[0]["value"] == "pw"
    got = client.post(f"/{slug}/locked.txt", data={"password": "pw"}, headers=NAVIGATE)
    assert got.status_code == 200 and got.data == DATA
    assert downloads(app, slug) == 1


def test_a_hostile_password_stays_a_value_of_the_hidden_field(client: Any) -> None:
    password = '"><script>alert(1)</script>'
    slug = slug_of(post_file(client, DATA, "locked.txt", fields={"password": password},
                             headers=JSON))
    page = landing(client.post(f"/{slug}", data={"password": password}, headers=NAVIGATE))
    assert [script.get("src") for script in page.all("script")] == ["static/landing.js"]
    (hidden,) = [i for i in page.all("input") if i.get("name") == "password"]
    assert hidden["value"] == password


def test_a_password_drop_gives_curl_no_page(client: Any) -> None:
    slug = slug_of(post_file(client, DATA, "locked.txt", fields={"password": "pw"},
                             headers=JSON))
    assert client.get(f"/{slug}").status_code == 401
    got = client.get(f"/{slug}", headers={"X-Drop-Password": "pw"})
    assert got.status_code == 200 and got.data == DATA


def test_a_private_drop_is_unknown_to_a_browser_without_the_token(
        make_app: Any) -> None:
    app = make_app(auth={"upload_tokens": ["owner-token"]})
    client = app.test_client()
    bearer = {"Authorization": "Bearer owner-token"}
    slug = upload_as(client, bearer, private="true")
    hidden = client.get(f"/{slug}", headers=NAVIGATE)
    assert hidden.status_code == 404 and "notes.txt" not in hidden.get_data(as_text=True)
    page = landing(client.get(f"/{slug}", headers={**NAVIGATE, **bearer}))
    assert facts(page)["File"] == "notes.txt"
    assert not any("?preview" in url for url in page.urls())  # an <img> carries no token
    assert downloads(app, slug) == 0


def upload_as(client: Any, headers: dict[str, str], **options: str) -> str:
    response = post_file(client, DATA, "notes.txt", "text/plain", query=options,
                         headers={**JSON, **headers})
    assert response.status_code == 201, response.get_data(as_text=True)
    return slug_of(response)


# --- escaping ---------------------------------------------------------------------------

def test_hostile_names_titles_and_descriptions_are_text(client: Any) -> None:
    slug = upload(client, filename=HOSTILE, content_type="image/png", title="<b>bold</b>",
                  description="<script>alert(2)</script>")
    page = landing(client.get(f"/{slug}", headers=NAVIGATE))
    assert "b" not in {tag for tag, _ in page.tags}
    assert [script.get("src") for script in page.all("script")] == ["static/landing.js"]
    assert [img for img in page.all("img") if img.get("src") == "x"] == []
    assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs)
    (preview,) = previews(page, "img")
    assert preview["src"] == f"{slug}/{quote(HOSTILE, safe='')}?preview"
    text = page.all_text()
    assert HOSTILE in text and "<b>bold</b>" in text and "<script>alert(2)</script>" in text
