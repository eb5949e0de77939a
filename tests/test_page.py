"""The upload page as HTML, through Flask's test client: every control has a label, the expiry
presets stay within ``max_expires`` and the server accepts each of them, the token field
appears only when uploads need a token (and never leaks one), the page's own CSS and JS are
served with the right types and nothing is loaded from elsewhere, the form works as a plain
multipart POST, and user input is escaped on the result page."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from flask import Flask

from teledrop.core.drop import Drop
from teledrop.core.errors import InvalidSlug
from teledrop.core.slugs import check_custom_slug
from teledrop.core.units import parse_duration
from teledrop.web.app import service_of
from teledrop.web.page import EXPIRY_PRESETS, describe_size, result_html
from tests.http_helpers import (
    JSON,
    assert_nothing_stored,
    blake3_hash,
    created_json,
    lifetime,
    post_file,
    records,
    slug_of,
)

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
STATIC = Path(__file__).resolve().parent.parent / "teledrop" / "web" / "static"
CONTROLS = {"input", "select", "textarea"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "poster", "data"}
HOSTILE_NAME = "<img src=x onerror=alert(1)>&'.txt"


class Page(HTMLParser):
    """The tags of a page with their attributes, the text of each label, and the text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.labels: dict[str, str] = {}
        self.text: list[str] = []
        self.options: list[dict[str, str | None]] = []
        self._label: str | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "label":
            self._label = attributes.get("for") or ""
            self.labels.setdefault(self._label, "")
        elif tag == "option":
            self.options.append(attributes)

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._label is not None:
            self.labels[self._label] += data

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    def by_id(self, element_id: str) -> tuple[str, dict[str, str | None]] | None:
        return next(((t, a) for t, a in self.tags if a.get("id") == element_id), None)

    def controls(self) -> list[tuple[str, dict[str, str | None]]]:
        return [(t, a) for t, a in self.tags
                if t in CONTROLS and a.get("type") not in ("hidden", "submit")]

    def urls(self) -> list[str]:
        return [value for _, attrs in self.tags for name, value in attrs.items()
                if name in URL_ATTRIBUTES and value is not None]

    def all_text(self) -> str:
        return "".join(self.text)


def index_page(client: Any) -> Page:
    response = client.get("/", headers=BROWSER)
    assert response.status_code == 200 and response.mimetype == "text/html"
    return Page(response.get_data(as_text=True))


def form_post(client: Any, data: bytes, filename: str, fields: dict[str, str] | None = None,
              headers: dict[str, str] | None = None) -> Any:
    """What a browser without JavaScript sends: the page's option fields, then the file."""
    body = {**(fields or {}), "file": (io.BytesIO(data), filename)}
    return client.post("/", data=body, content_type="multipart/form-data",
                       headers={**BROWSER, **(headers or {})})


@pytest.fixture
def token_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(auth={"upload_tokens": ["page-secret-token-1", "page-secret-token-2"]})


# --- accessibility ----------------------------------------------------------------------

@pytest.mark.parametrize("tokens", [[], ["a-token"]])
def test_every_control_has_a_label_with_text(make_app: Callable[..., Flask],
                                             tokens: list[str]) -> None:
    page = index_page(make_app(auth={"upload_tokens": tokens}).test_client())
    controls = page.controls()
    assert {a.get("name") for _, a in controls} >= {"file", "expires", "max_downloads", "slug"}
    for tag, attrs in controls:
        assert attrs.get("id"), f"<{tag}> without an id cannot have a label: {attrs}"
        assert page.labels.get(attrs["id"], "").strip(), f"no label text for #{attrs['id']}"


def test_ids_are_unique_and_every_description_exists(client: Any) -> None:
    page = index_page(client)
    ids = [a["id"] for _, a in page.tags if a.get("id")]
    assert len(ids) == len(set(ids))
    described = [ref for _, a in page.tags for ref in (a.get("aria-describedby") or "").split()]
    assert described, "the hints are tied to their fields"
    assert set(described) <= set(ids)


def test_the_page_has_a_language_a_title_and_a_live_status_region(client: Any) -> None:
    page = index_page(client)
    assert page.all("html")[0].get("lang") == "en"
    assert page.all("title")
    status = [a for _, a in page.tags if a.get("role") == "status" or a.get("aria-live")]
    assert status and all(a.get("aria-live", "polite") == "polite" for a in status)


def test_the_one_button_is_a_real_submit_button(client: Any) -> None:
    buttons = index_page(client).all("button")
    assert [b.get("type") for b in buttons] == ["submit"]


# --- expiry presets ---------------------------------------------------------------------

@pytest.mark.parametrize(("max_expires", "default_expires"), [
    ("30d", "7d"), ("1h", "10m"), ("90061", "3600"), ("1", "1"), ("400d", "7d"), ("2d", "2d"),
])
def test_expiry_presets_stay_within_max_expires(make_app: Callable[..., Flask],
                                                max_expires: str, default_expires: str) -> None:
    app = make_app(limits={"max_expires": max_expires, "default_expires": default_expires})
    page = index_page(app.test_client())
    assert page.by_id("expires") == ("select", {"id": "expires", "name": "expires"})
    seconds = [parse_duration(o["value"] or "") for o in page.options]
    ceiling, default = parse_duration(max_expires), parse_duration(default_expires)
    assert seconds == sorted(set(seconds)), "one option per duration, shortest first"
    assert max(seconds) == ceiling and min(seconds) >= 1
    assert {p for p in EXPIRY_PRESETS if p <= ceiling} <= set(seconds)
    selected = [parse_duration(o["value"] or "") for o in page.options if "selected" in o]
    assert selected == [default]


def test_the_server_accepts_every_expiry_preset(make_app: Callable[..., Flask]) -> None:
    app = make_app(limits={"max_expires": "3d", "default_expires": "1h"})
    client = app.test_client()
    values = [o["value"] or "" for o in index_page(client).options]
    assert len(values) >= 4
    for value in values:
        drop = created_json(post_file(client, b"x", "x.txt", fields={"expires": value},
                                      headers=JSON))
        assert lifetime(drop) == parse_duration(value)


def test_expiry_labels_are_words_not_codes(client: Any) -> None:
    page = Page(client.get("/", headers=BROWSER).get_data(as_text=True))
    text = page.all_text()
    assert "7 days" in text and "30 days" in text and "1 hour" in text
    assert ">7d<" not in client.get("/", headers=BROWSER).get_data(as_text=True)


# --- custom slug ------------------------------------------------------------------------

@pytest.mark.parametrize("slug", ["abc", "ab", "a" * 64, "a" * 65, "_ab", ".ab", "-ab", "a.b-c_d",
                                  "9zz", "a b c", "ab/c", "äbc", "abc.", "A--", "ab\n"])
def test_the_slug_pattern_is_the_server_rule(client: Any, slug: str) -> None:
    attrs = index_page(client).by_id("slug")
    assert attrs is not None
    pattern = attrs[1]["pattern"] or ""
    try:
        check_custom_slug(slug)
        valid = True
    except InvalidSlug:
        valid = False
    # HTML patterns are anchored at both ends, like fullmatch.
    assert (re.fullmatch(pattern, slug) is not None) is valid
    assert int(attrs[1]["maxlength"] or 0) == 64


# --- upload token -----------------------------------------------------------------------

def test_no_token_field_when_anyone_may_upload(client: Any) -> None:
    page = index_page(client)
    assert page.by_id("token") is None
    assert "token" not in page.labels


def test_a_token_field_when_uploads_need_one_and_no_token_in_the_page(token_app: Flask) -> None:
    response = token_app.test_client().get("/", headers=BROWSER)
    page = Page(response.get_data(as_text=True))
    found = page.by_id("token")
    assert found is not None
    tag, attrs = found
    assert tag == "input" and attrs.get("type") == "password"
    # Never a form field: the token goes in the Authorization header only.
    assert "name" not in attrs
    assert page.labels["token"].strip()
    assert b"page-secret-token" not in response.data


def test_a_form_post_without_the_token_is_refused_with_one_line(token_app: Flask,
                                                                data_dir: Path) -> None:
    response = form_post(token_app.test_client(), b"data", "a.txt")
    assert response.status_code == 401
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True).count("\n") == 1
    assert_nothing_stored(token_app, data_dir)


# --- assets -----------------------------------------------------------------------------

def assets(page: Page) -> dict[str, str]:
    """URL -> expected media type, for every script and stylesheet the page loads."""
    found = {a["src"] or "": "javascript" for a in page.all("script") if a.get("src")}
    found |= {a["href"] or "": "text/css" for a in page.all("link")
              if a.get("rel") == "stylesheet"}
    return found


def test_static_assets_are_served_with_their_types(client: Any) -> None:
    wanted = assets(index_page(client))
    assert set(wanted.values()) == {"javascript", "text/css"}
    for url, kind in wanted.items():
        response = client.get(urljoin("http://localhost/", url))
        assert response.status_code == 200, url
        assert response.mimetype in ({"text/javascript", "application/javascript"}
                                     if kind == "javascript" else {kind}), url
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.data.strip()


def test_the_script_runs_after_parsing_and_no_inline_code(client: Any) -> None:
    html = client.get("/", headers=BROWSER).get_data(as_text=True)
    page = Page(html)
    scripts = page.all("script")
    assert scripts and all(s.get("src") and "defer" in s for s in scripts)
    assert "<style" not in html and " style=" not in html
    assert not [a for _, a in page.tags if any(name.startswith("on") for name in a)]


def test_the_page_loads_nothing_from_elsewhere(client: Any) -> None:
    page = index_page(client)
    urls = page.urls()
    assert urls
    for url in urls:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("", "") or url == "data:,", url
    csp = [a.get("content") or "" for a in page.all("meta")
           if (a.get("http-equiv") or "").lower() == "content-security-policy"]
    assert len(csp) == 1 and "default-src 'none'" in csp[0]
    assert "http" not in csp[0] and "*" not in csp[0]
    for name in ("page.js", "page.css"):
        text = (STATIC / name).read_text()
        assert "://" not in text and "@import" not in text and "url(" not in text, name


def test_the_script_never_turns_data_into_html() -> None:
    script = (STATIC / "page.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function"):
        assert sink not in script, sink


# --- the form without JavaScript --------------------------------------------------------

def test_the_form_posts_multipart_to_the_upload_route(client: Any) -> None:
    page = index_page(client)
    (form,) = page.all("form")
    assert (form.get("method") or "").lower() == "post"
    assert form.get("enctype") == "multipart/form-data"
    assert urlsplit(urljoin("http://localhost/", form.get("action") or "")).path == "/"
    names = {a.get("name") for _, a in page.controls()}
    assert names == {"file", "expires", "max_downloads", "slug"}
    file_input = page.by_id("file")
    assert file_input is not None
    # One file per request is what the server takes; the script allows many.
    assert "multiple" not in file_input[1]


def test_a_form_post_answers_with_a_result_page(app: Flask, client: Any) -> None:
    data = b"plain form upload\n" * 100
    response = form_post(client, data, "notes.txt",
                         {"expires": "1h", "max_downloads": "2", "slug": "from-the-form"})
    assert response.status_code == 201 and response.mimetype == "text/html"
    page = Page(response.get_data(as_text=True))
    (link,) = [a["href"] or "" for a in page.all("a") if a.get("class") == "link"]
    assert urlsplit(link).path == "/from-the-form" == response.headers["Location"]
    text = page.all_text()
    assert response.headers["X-Delete-Token"] in text
    assert blake3_hash(data) in text and f"({len(data):,} bytes)" in text and "notes.txt" in text
    (drop,) = records(app)
    assert (drop.slug, drop.max_downloads, drop.expires_at - drop.created_at) == \
        ("from-the-form", 2, 3600)
    assert client.get(urlsplit(link).path).data == data
    assert assets(page) == {"static/page.css": "text/css"}


def test_a_form_post_with_empty_options_takes_the_defaults(app: Flask, client: Any) -> None:
    response = form_post(client, b"x", "x.bin", {"expires": "", "max_downloads": "", "slug": ""})
    assert response.status_code == 201
    (drop,) = records(app)
    assert drop.max_downloads is None and not drop.custom_slug
    assert drop.expires_at - drop.created_at == service_of(app).config.limits.default_expires
    assert drop.slug == slug_of(response)


def test_a_form_post_with_a_taken_slug_gets_one_plain_line(app: Flask, client: Any) -> None:
    assert form_post(client, b"first", "a.txt", {"slug": "taken"}).status_code == 201
    response = form_post(client, b"second", "b.txt", {"slug": "taken"})
    assert response.status_code == 409 and response.mimetype == "text/plain"
    assert "taken" in response.get_data(as_text=True)
    assert len(records(app)) == 1


# --- escaping ---------------------------------------------------------------------------

def test_the_result_page_escapes_the_filename(client: Any) -> None:
    response = form_post(client, b"evil", HOSTILE_NAME)
    assert response.status_code == 201
    html = response.get_data(as_text=True)
    page = Page(html)
    assert "img" not in {tag for tag, _ in page.tags}
    assert HOSTILE_NAME in page.all_text()
    assert "<img" not in html


def test_result_html_escapes_every_value() -> None:
    drop = Drop(slug="s", blob_id="b", filename="<script>alert(1)</script>", size=5,
                content_type="text/plain", hash="blake3:<b>", created_at=0, expires_at=60,
                delete_token="tok<en>&\"")
    html = result_html(drop, 'http://h/"><script>alert(2)</script>')
    page = Page(html)
    assert {tag for tag, _ in page.tags}.isdisjoint({"script", "b", "en"})
    text = page.all_text()
    assert "<script>alert(1)</script>" in text and "tok<en>&\"" in text
    (link,) = [a["href"] for a in page.all("a") if a.get("class") == "link"]
    assert link == 'http://h/"><script>alert(2)</script>'


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 bytes"), (1, "1 byte"), (1023, "1023 bytes"), (1024, "1.0 KiB (1,024 bytes)"),
    (4000, "3.9 KiB (4,000 bytes)"), (4 * 1024**2, "4.0 MiB (4,194,304 bytes)"),
    (10 * 1024**3, "10 GiB (10,737,418,240 bytes)"),
])
def test_sizes_are_written_like_the_script_writes_them(size: int, text: str) -> None:
    assert describe_size(size) == text


def test_the_terminal_hint_names_the_configured_address(make_app: Callable[..., Flask]) -> None:
    app = make_app(server={"base_url": "https://drop.example/x"})
    page = index_page(app.test_client())
    assert "curl -T FILE https://drop.example/x/" in page.all_text()
