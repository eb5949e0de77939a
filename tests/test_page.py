"""The upload page as HTML, through Flask's test client: every control has a label, the expiry
presets stay within ``max_expires`` and the server accepts each of them, the token field
appears only when uploads need a token (and never leaks one), the page's own CSS and JS are
served with the right types and nothing is loaded from elsewhere, the form works as a plain
multipart POST, and user input is escaped on the result page."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import pytest
from flask import Flask

from teledrop.core.drop import Drop
from teledrop.core.errors import InvalidSlug
from teledrop.core.interfaces import SORT_KEYS
from teledrop.core.manage import EDITABLE, MAX_PAGE_SIZE
from teledrop.core.options import MAX_DESCRIPTION, MAX_TITLE
from teledrop.core.slugs import check_custom_slug
from teledrop.core.units import parse_duration
from teledrop.core.upload import OPTION_NAMES
from teledrop.hosts.pages import (
    DEFAULT_PAGE_SIZE,
    EXPIRY_PRESETS,
    describe_size,
    password_html,
    result_html,
)
from teledrop.web.app import service_of
from tests.http_helpers import (
    JSON,
    assert_nothing_stored,
    blake3_hash,
    created_json,
    epoch,
    lifetime,
    post_file,
    records,
    slug_of,
)
from tests.support.html import HOSTILE_NAME, Page

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
STATIC = Path(__file__).resolve().parent.parent / "teledrop" / "web" / "static"
TEMPLATES = STATIC.parent / "templates"
UPLOAD_FIELDS = {"file", "expires", "max_downloads", "slug", "title", "description", "private",
                 "password"}


#: Elements that always have an end tag and group controls: a tag is "in" the ones open
#: around it.
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


def test_the_upload_forms_one_button_is_a_real_submit_button(client: Any) -> None:
    buttons = index_page(client).all("button", within="upload")
    assert [b.get("type") for b in buttons] == ["submit"]


def test_every_button_says_what_it_does(client: Any) -> None:
    """A button without a type submits its form: each one states it."""
    buttons = index_page(client).all("button")
    assert len(buttons) > 1
    assert all(b.get("type") in ("submit", "button") for b in buttons), buttons


# --- expiry presets ---------------------------------------------------------------------

@pytest.mark.parametrize(("max_expires", "default_expires"), [
    ("30d", "7d"), ("1h", "10m"), ("90061", "3600"), ("1", "1"), ("400d", "7d"), ("2d", "2d"),
])
def test_expiry_presets_stay_within_max_expires(make_app: Callable[..., Flask],
                                                max_expires: str, default_expires: str) -> None:
    app = make_app(limits={"max_expires": max_expires, "default_expires": default_expires})
    page = index_page(app.test_client())
    assert page.by_id("expires") == ("select", {"id": "expires", "name": "expires"})
    seconds = [parse_duration(o["value"] or "") for o in page.options("expires")]
    ceiling, default = parse_duration(max_expires), parse_duration(default_expires)
    assert seconds == sorted(set(seconds)), "one option per duration, shortest first"
    assert max(seconds) == ceiling and min(seconds) >= 1
    assert {p for p in EXPIRY_PRESETS if p <= ceiling} <= set(seconds)
    selected = [parse_duration(o["value"] or "") for o in page.options("expires")
                if "selected" in o]
    assert selected == [default]


def test_the_server_accepts_every_expiry_preset(make_app: Callable[..., Flask]) -> None:
    app = make_app(limits={"max_expires": "3d", "default_expires": "1h"})
    client = app.test_client()
    values = [o["value"] or "" for o in index_page(client).options("expires")]
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
    # The page's own files (the vendored tus client is the npm package's, checked by the CSP).
    for path in (p for p in STATIC.iterdir() if p.is_file()):
        text = path.read_text().replace('xmlns="http://www.w3.org/2000/svg"', "")  # a name
        assert "://" not in text and "@import" not in text and "url(" not in text, path.name


@pytest.mark.parametrize("script", sorted(p.name for p in STATIC.glob("*.js")))
def test_the_scripts_never_turn_data_into_html(script: str) -> None:
    text = (STATIC / script).read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "setAttribute(\"on", "srcdoc"):
        assert sink not in text, sink


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_the_templates_never_turn_escaping_off(template: str) -> None:
    text = (TEMPLATES / template).read_text()
    assert not re.search(r"\|\s*safe\b|autoescape\s+false|Markup", text)


def test_every_module_the_scripts_import_is_served_as_javascript(client: Any) -> None:
    """The page's scripts are ES modules: an import the server does not answer with a
    JavaScript type stops the whole script, silently."""
    tags = index_page(client).all("script")
    scripts = [a["src"] or "" for a in tags]
    # The tus client, npm's build, is a classic script; the page's own are modules.
    assert scripts and all(a.get("type") == "module" or a["src"] == "static/vendor/tus.min.js"
                           for a in tags)
    seen: set[str] = set()
    while scripts:
        url = urljoin("http://localhost/", scripts.pop())
        if url in seen:
            continue
        seen.add(url)
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.mimetype in {"text/javascript", "application/javascript"}, url
        for target in re.findall(r'^\s*(?:import|export)\b[^;]*?from\s+"([^"]+)"',
                                 response.get_data(as_text=True), re.M | re.S):
            assert target.startswith("./"), f"{url} imports {target} from elsewhere"
            scripts.append(urljoin(url, target))
    # Every script but landing.js (the landing and result pages' own) is the upload page's.
    assert {urlsplit(u).path for u in seen} == \
        {f"/static/{p.name}" for p in STATIC.glob("*.js") if p.name != "landing.js"} \
        | {"/static/vendor/tus.min.js"}


# --- the form without JavaScript --------------------------------------------------------

def test_the_form_posts_multipart_to_the_upload_route(client: Any) -> None:
    page = index_page(client)
    # The other forms (the list's search, the edit dialog) are the script's, never posted.
    posted = [f for f in page.all("form") if f.get("method")]
    assert [f.get("id") for f in posted] == ["upload"]
    (form,) = posted
    assert (form.get("method") or "").lower() == "post"
    assert form.get("enctype") == "multipart/form-data"
    assert urlsplit(urljoin("http://localhost/", form.get("action") or "")).path == "/"
    names = {a.get("name") for _, a in page.controls(within="upload")}
    assert names == UPLOAD_FIELDS
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
    assert assets(page) == {"static/page.css": "text/css", "static/landing.js": "javascript"}


def test_a_form_post_with_empty_options_takes_the_defaults(app: Flask, client: Any) -> None:
    # What a browser posts for every text field left empty (an unticked box sends nothing).
    empty = {name: "" for name in UPLOAD_FIELDS - {"file", "private"}}
    response = form_post(client, b"x", "x.bin", empty)
    assert response.status_code == 201
    (drop,) = records(app)
    assert drop.max_downloads is None and not drop.custom_slug
    assert (drop.title, drop.description, drop.password_hash, drop.private) == \
        ("", "", None, False)
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
    # The one image is the link's QR code, drawn here.
    assert [(img["class"], (img["src"] or "")[:19]) for img in page.all("img")] == \
        [("qr", "data:image/svg+xml;")]
    assert HOSTILE_NAME in page.all_text()
    assert "<img src=x" not in html


def test_result_html_escapes_every_value(app: Flask) -> None:
    drop = Drop(slug="s", blob_id="b", filename="<script>alert(1)</script>", size=5,
                content_type="text/plain", hash="blake3:<b>", created_at=0, expires_at=60,
                delete_token="tok<en>&\"")
    with app.app_context():
        html = result_html(drop, 'http://h/"><script>alert(2)</script>')
    page = Page(html)
    assert {tag for tag, _ in page.tags}.isdisjoint({"b", "en"})
    assert [a.get("src") for a in page.all("script")] == ["static/landing.js"]
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


# --- owners: upload options -------------------------------------------------------------

OWNER = "page-owner-token"
OWNED = {"Authorization": f"Bearer {OWNER}", **JSON}


@pytest.fixture
def owner_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(auth={"upload_tokens": [OWNER]})


def owned_drop(client: Any, **fields: str) -> dict[str, Any]:
    return created_json(post_file(client, b"owned", "owned.txt", fields=fields, headers=OWNED))


def test_the_owner_options_are_labelled_fields_of_the_upload_form(client: Any) -> None:
    page = index_page(client)
    fields = {a.get("name"): (t, a) for t, a in page.controls(within="upload")}
    assert fields["title"][0] == "input" and fields["title"][1]["maxlength"] == str(MAX_TITLE)
    assert fields["description"][0] == "textarea"
    assert fields["description"][1]["maxlength"] == str(MAX_DESCRIPTION)
    # A browser must not fill the reader's password in with one of its own saved ones.
    assert (fields["password"][1]["type"], fields["password"][1]["autocomplete"]) == \
        ("password", "new-password")
    assert "value" not in fields["password"][1]
    assert (fields["private"][1]["type"], fields["private"][1]["value"]) == ("checkbox", "true")
    for name in ("title", "description", "password", "private"):
        assert page.labels[fields[name][1]["id"] or ""].strip(), name


def test_the_private_box_is_hidden_without_javascript(client: Any) -> None:
    """A plain form cannot send a token, so "private" could only be refused."""
    page = index_page(client)
    found = page.by_id("private")
    assert found is not None
    wrapper = next(a for t, a in reversed(page.tags[:page.tags.index(found)]) if t == "div")
    assert "needs-js" in (wrapper.get("class") or "").split()
    # The script swaps no-js for js on <html>; until then the rule hides the box.
    assert page.all("html")[0].get("class") == "no-js"
    css = (STATIC / "page.css").read_text()
    assert re.search(r"\.no-js \.needs-js\s*\{\s*display:\s*none;", css)


def test_a_form_post_takes_title_description_and_password(app: Flask, client: Any) -> None:
    response = form_post(client, b"protected", "p.txt",
                         {"title": " Minutes ", "description": "line one\nline two",
                          "password": " spaced pass "})
    assert response.status_code == 201
    (drop,) = records(app)
    assert (drop.title, drop.description) == ("Minutes", "line one\nline two")
    path = urlsplit(response.headers["Location"]).path
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"X-Drop-Password": "spaced pass"}).status_code == 401
    assert client.get(path, headers={"X-Drop-Password": " spaced pass "}).data == b"protected"
    text = Page(response.get_data(as_text=True)).all_text()
    assert "Minutes" in text and "Access" in text and "password" in text
    assert "spaced pass" not in response.get_data(as_text=True)


def test_a_private_form_post_without_a_token_is_refused_in_one_line(
        app: Flask, client: Any, data_dir: Path) -> None:
    response = form_post(client, b"x", "x.txt", {"private": "true"})
    assert response.status_code == 400 and response.mimetype == "text/plain"
    assert response.get_data(as_text=True).count("\n") == 1
    assert_nothing_stored(app, data_dir)


# --- owners: the token field -------------------------------------------------------------

@pytest.mark.parametrize(("auth", "field", "absent"), [
    ({}, "owner-token", "token"),
    ({"upload_tokens": ["t-1"]}, "token", "owner-token"),
    ({"require_token": True}, "token", "owner-token"),
], ids=["open", "config-tokens", "store-tokens"])
def test_one_token_field_where_the_server_wants_it(make_app: Callable[..., Flask],
                                                   auth: dict[str, Any], field: str,
                                                   absent: str) -> None:
    page = index_page(make_app(auth=auth).test_client())
    assert page.by_id(absent) is None
    found = page.by_id(field)
    assert found is not None
    tag, attrs = found
    assert tag == "input" and attrs.get("type") == "password" and "name" not in attrs
    assert page.labels[field].strip()
    around = page.within[page.tags.index(found)]
    # Required: in the upload form. Optional: with the list it opens.
    assert ("upload" if field == "token" else "my-drops") in around


# --- owners: the "My drops" section ------------------------------------------------------

def test_my_drops_waits_for_the_script_and_is_accessible(client: Any) -> None:
    page = index_page(client)
    section = page.by_id("my-drops")
    assert section is not None and "hidden" in section[1]
    heading = page.by_id(section[1]["aria-labelledby"] or "")
    assert heading is not None and heading[0] == "h2"
    live = [a for a in page.all("p", within="my-drops") if a.get("role") == "status"]
    assert [a.get("aria-live") for a in live] == ["polite"]
    headers = page.all("th", within="my-drops")
    assert len(headers) >= 7 and all(h.get("scope") == "col" for h in headers)
    dialog = page.by_id("edit-dialog")
    assert dialog is not None and dialog[0] == "dialog"
    assert page.by_id(dialog[1]["aria-labelledby"] or "") is not None
    assert [a.get("role") for a in page.all("p", within="edit-dialog") if a.get("role")] == \
        ["alert"]


def test_the_list_controls_send_only_what_the_api_takes(owner_app: Flask) -> None:
    client = owner_app.test_client()
    owned_drop(client)
    page = index_page(client)
    names = {a.get("name") for _, a in page.controls(within="drops-query")}
    assert names == {"q", "sort", "order", "private", "has_password", "expired", "page_size"}
    assert {o["value"] for o in page.options("drops-sort")} == set(SORT_KEYS)
    sizes = [int(o["value"] or 0) for o in page.options("drops-page-size")]
    assert sizes and max(sizes) <= MAX_PAGE_SIZE and min(sizes) >= 1
    for _, attrs in page.controls(within="drops-query"):
        if attrs.get("name") == "q":
            continue
        values = [o["value"] or "" for o in page.options(attrs["id"] or "")]
        assert values, attrs
        for value in filter(None, values):
            response = client.get("/api/drops", query_string={attrs["name"]: value},
                                  headers=OWNED)
            assert response.status_code == 200, (attrs["name"], value, response.data)
    # The form's defaults are the API's: the first view is the server's own first page.
    defaults = {o["value"] for t, a in page.controls(within="drops-query") if t == "select"
                for o in page.options(a["id"] or "") if "selected" in o}
    assert {"created_at", "desc", str(DEFAULT_PAGE_SIZE)} <= defaults


def test_the_edit_dialog_has_a_field_for_everything_patch_takes(client: Any) -> None:
    page = index_page(client)
    names = {a.get("name") for _, a in page.controls(within="edit-dialog")}
    # clear_password is the dialog's own: it sends "password": null.
    assert names - {"clear_password"} == set(EDITABLE)
    buttons = page.all("button", within="edit-dialog")
    assert sorted(b.get("type") or "" for b in buttons) == ["button", "submit"]


def test_every_expiry_the_edit_dialog_offers_is_accepted(
        make_app: Callable[..., Flask]) -> None:
    app = make_app(auth={"upload_tokens": [OWNER]},
                   limits={"max_expires": "3d", "default_expires": "1h"})
    client = app.test_client()
    drop = owned_drop(client)
    values = [o["value"] or "" for o in index_page(client).options("edit-expires")]
    assert values[0] == "" and len(values) >= 4, "first: keep the date"
    for value in values[1:]:
        response = client.patch(f"/api/drops/{drop['slug']}", json={"expires": value},
                                headers=OWNED)
        assert response.status_code == 200, (value, response.data)
        left = epoch(response.get_json()["expires_at"]) - time.time()
        assert left == pytest.approx(parse_duration(value), abs=2), value


def test_a_huge_download_limit_from_the_dialog_gets_a_one_line_refusal(
        owner_app: Flask) -> None:
    """The dialog sends the number typed; past SQLite's integers that must still be a 400."""
    client = owner_app.test_client()
    drop = owned_drop(client)
    response = client.patch(f"/api/drops/{drop['slug']}", json={"max_downloads": 10**20},
                            headers=OWNED)
    assert response.status_code == 400, response.data
    assert response.get_json()["error"]["code"] == "invalid_option"


# --- owners: the password form ----------------------------------------------------------

@pytest.mark.parametrize(("mount", "suffix"), [("", ""), ("", "/report.txt"),
                                               ("/mounted/here", ""),
                                               ("/mounted", "/r%C3%A9sum%C3%A9%201.txt")])
def test_the_password_form_posts_to_the_drop_and_finds_its_stylesheet(
        client: Any, mount: str, suffix: str) -> None:
    created = post_file(client, b"locked bytes", "r.txt", fields={"password": "pw"},
                        headers=JSON)
    base = f"http://localhost{mount}"  # the test client's SCRIPT_NAME is the mount
    path = f"/{slug_of(created)}{suffix}"
    url = base + path

    def under_mount(absolute: str) -> str:
        assert absolute.startswith(base + "/"), absolute
        return absolute[len(base):]

    response = client.get(path, headers=BROWSER, base_url=base)
    assert response.status_code == 401 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    page = Page(html)
    (form,) = page.all("form")
    assert (form.get("method") or "").lower() == "post"
    action = urljoin(url, form.get("action") or "")
    assert action == url and "pw" not in action
    (sheet,) = [a["href"] or "" for a in page.all("link") if a.get("rel") == "stylesheet"]
    assert urlsplit(urljoin(url, sheet)).path == f"{mount}/static/page.css"
    assert client.get(under_mount(urljoin(url, sheet)), base_url=base).mimetype == "text/css"
    assert page.all("script") == [] and "<style" not in html and " style=" not in html
    field = page.by_id("password")
    assert field is not None and field[1].get("autocomplete") == "current-password"
    assert page.labels["password"].strip()

    wrong = client.post(under_mount(action), data={"password": "nope"}, headers=BROWSER,
                        base_url=base)
    assert wrong.status_code == 401
    wrong_page = Page(wrong.get_data(as_text=True))
    (alert,) = [a for t, a in wrong_page.tags if a.get("role") == "alert"]
    assert "error" in (alert.get("class") or "")
    assert "Wrong password" in wrong_page.all_text()
    assert wrong_page.by_id("password")[1].get("aria-invalid") == "true"  # type: ignore[index]
    right = client.post(under_mount(action), data={"password": "pw"}, headers=BROWSER,
                        base_url=base)
    if suffix:  # the named URL is the bytes
        assert right.status_code == 200 and right.data == b"locked bytes"
        return
    # The short link shows the landing page, whose Download button posts the password again.
    assert right.status_code == 200 and right.mimetype == "text/html"
    (download,) = Page(right.get_data(as_text=True)).all("form")
    target = urljoin(url, download.get("action") or "")
    assert target == f"{url}/r.txt"
    got = client.post(under_mount(target), data={"password": "pw"}, headers=BROWSER,
                      base_url=base)
    assert got.status_code == 200 and got.data == b"locked bytes"


def test_the_password_form_asks_first_without_an_error(client: Any) -> None:
    created = post_file(client, b"x", "x.txt", fields={"password": "pw"}, headers=JSON)
    page = Page(client.get(f"/{slug_of(created)}", headers=BROWSER).get_data(as_text=True))
    (alert,) = [a for t, a in page.tags if a.get("role") == "alert"]
    assert "error" not in (alert.get("class") or "")
    assert page.by_id("password")[1].get("aria-invalid") is None  # type: ignore[index]
    assert page.all("h1") and "protected" in page.all_text()


def test_password_html_escapes_its_values(app: Flask) -> None:
    with app.app_context():
        page = Page(password_html('/sl"ug<b>', "<i>wrong</i> & more"))
    assert {tag for tag, _ in page.tags}.isdisjoint({"b", "i", "script"})
    assert "<i>wrong</i> & more" in page.all_text()
    (form,) = page.all("form")
    assert form.get("action") == "./" + quote('sl"ug<b>', safe="")


# --- owners: curl's usage text ------------------------------------------------------------

def test_the_usage_text_names_every_upload_option_and_the_owner_api(client: Any) -> None:
    text = client.get("/").get_data(as_text=True)
    for name in OPTION_NAMES:
        assert f"{name}=" in text, name
    assert "X-Drop-Password" in text and "/api/drops" in text and "PATCH" in text
    assert "?password=" not in text
