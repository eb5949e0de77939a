"""Who may upload and read what, through the test client and a real gunicorn.

Owners: a config token and a store token each name an owner, a drop uploaded with either
belongs to it, an unknown or revoked token is a 401, and anonymous uploads work as
without owners unless ``require_token`` or ``upload_tokens`` asks for a token.
Private drops: 404 to everyone but the owner on every read path, exactly like an unknown slug.
Passwords: stored only as an argon2 hash; given by header, HTTP Basic (any user) or the
browser form; never from a query string; five wrong guesses a minute per drop, then 429 even
for the right one — also across two gunicorn workers hit at once.
Previews: ``?preview`` shows safe types inline under a restrictive CSP, nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from argon2 import PasswordHasher
from flask import Flask
from werkzeug.test import TestResponse

import teledrop.core.drops
from teledrop import composition
from teledrop.core.config import load_config
from teledrop.core.drop import now
from teledrop.core.errors import InvalidOption
from teledrop.core.owners import create_token, revoke_token
from teledrop.core.passwords import ATTEMPT_WINDOW, MAX_ATTEMPTS
from teledrop.web.app import service_of
from tests.http_helpers import (
    DROP_FIELDS,
    JSON,
    assert_json_error,
    assert_nothing_stored,
    assert_text_error,
    created_json,
    post_file,
    put_file,
    slug_of,
    upload,
)
from tests.live_server import LiveServer, live_server
from tests.support.owners import Owners, bearer, owner_of, owner_upload
from tests.support.owners import owners  # noqa: F401 - a fixture

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
PASSWORD = "correct horse"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def with_password(password: str) -> dict[str, str]:
    return {"X-Drop-Password": password}


# --- owners ----------------------------------------------------------------------------

def test_a_store_token_makes_its_name_the_owner(app: Flask, client: Any, owners: Owners) -> None:
    assert owner_of(app, owner_upload(client, owners.alice)["slug"]) == "alice"
    raw = put_file(client, "/raw.bin", b"raw", headers=bearer(owners.bob))
    assert owner_of(app, created_json(raw)["slug"]) == "bob"


@pytest.mark.parametrize("name", ["token:0123456789abcdef", "", "-dash", "a" * 65, "sp ace"])
def test_a_store_token_name_cannot_pose_as_a_config_owner_or_be_odd(app: Flask,
                                                                   name: str) -> None:
    with pytest.raises(InvalidOption):
        create_token(service_of(app), name)


def test_a_config_token_owner_is_named_after_the_tokens_hash(make_app: Any) -> None:
    app = make_app(auth={"upload_tokens": ["first-config-token", "second-config-token"]})
    client = app.test_client()
    first = owner_of(app, owner_upload(client, "first-config-token")["slug"])
    second = owner_of(app, owner_upload(client, "second-config-token")["slug"])
    assert first == "token:" + hashlib.sha256(b"first-config-token").hexdigest()[:16]
    assert second is not None and second.startswith("token:") and second != first
    assert "first-config-token" not in first


def test_an_anonymous_upload_keeps_the_api_contract(app: Flask, client: Any) -> None:
    response = post_file(client, b"anonymous bytes", "anon.txt")
    assert response.status_code == 201 and response.mimetype == "text/plain"
    slug = slug_of(response)
    assert response.get_data(as_text=True) == f"http://localhost/{slug}\n"
    assert response.headers["X-Delete-Token"]
    info = client.get(f"/api/drops/{slug}").get_json()
    assert set(info) == DROP_FIELDS
    assert (info["title"], info["description"], info["private"], info["has_password"]) == \
        ("", "", False, False)
    assert client.get(f"/{slug}").get_data() == b"anonymous bytes"
    assert owner_of(app, slug) is None
    assert set(upload(client)) == DROP_FIELDS | {"delete_token"}


def test_an_anonymous_upload_may_have_a_title_and_description(client: Any) -> None:
    drop = upload(client, title="Holiday photos", description="from the beach")
    assert (drop["title"], drop["description"]) == ("Holiday photos", "from the beach")


def test_title_and_description_may_come_in_the_query(client: Any, owners: Owners) -> None:
    response = put_file(client, "/q.txt", b"q", headers=bearer(owners.alice),
                        query={"title": "From the query", "description": "too"})
    drop = created_json(response)
    assert (drop["title"], drop["description"]) == ("From the query", "too")


@pytest.mark.parametrize("field", ["title", "description"])
def test_an_overlong_title_or_description_at_upload_stores_nothing(
        app: Flask, client: Any, data_dir: Path, field: str) -> None:
    assert_json_error(post_file(client, fields={field: "x" * 1001}, headers=JSON), 400,
                      "invalid_option")
    assert_nothing_stored(app, data_dir)


@pytest.mark.parametrize("authorization", ["Bearer unknown-token", "bearer unknown-token"])
def test_an_unknown_bearer_token_is_401_even_where_anonymous_uploads_are_allowed(
        app: Flask, client: Any, data_dir: Path, owners: Owners, authorization: str) -> None:
    response = post_file(client, headers={"Authorization": authorization, **JSON})
    assert_json_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_text_error(put_file(client, headers={"Authorization": authorization}), 401)
    assert_nothing_stored(app, data_dir)


def test_a_revoked_store_token_is_401(app: Flask, client: Any, data_dir: Path,
                                      owners: Owners) -> None:
    revoke_token(service_of(app), "alice")
    assert_json_error(post_file(client, headers=bearer(owners.alice)), 401, "unauthorized")
    assert_nothing_stored(app, data_dir)
    owner_upload(client, owners.bob)


@pytest.mark.parametrize("auth", [{"require_token": True},
                                  {"upload_tokens": ["config-token"]}])
def test_when_tokens_are_required_anonymous_uploads_are_401(make_app: Any, data_dir: Path,
                                                            auth: dict[str, Any]) -> None:
    app = make_app(auth=auth)
    client = app.test_client()
    response = post_file(client)
    assert_text_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_text_error(put_file(client), 401)
    assert_nothing_stored(app, data_dir)
    store_token = create_token(service_of(app), "carol")
    slug = owner_upload(client, store_token)["slug"]
    assert owner_of(app, slug) == "carol"
    assert client.get(f"/{slug}").status_code == 200  # reading still needs no token


# --- private drops ---------------------------------------------------------------------

def read_paths(slug: str) -> list[tuple[str, str]]:
    return [("GET", f"/{slug}"), ("GET", f"/{slug}/any-name.txt"), ("HEAD", f"/{slug}"),
            ("GET", f"/api/drops/{slug}")]


def request(client: Any, method: str, path: str, **kwargs: Any) -> TestResponse:
    return client.open(path, method=method, **kwargs)


@pytest.fixture
def private_drop(client: Any, owners: Owners) -> str:
    return owner_upload(client, owners.alice, b"private bytes", "private.txt",
                        private="true")["slug"]


@pytest.mark.parametrize("who", ["anonymous", "another owner"])
def test_a_private_drop_is_404_to_others_like_an_unknown_slug(client: Any, owners: Owners,
                                                              private_drop: str,
                                                              who: str) -> None:
    headers = bearer(owners.bob, accept_json=False) if who == "another owner" else {}
    for (method, path), (_, unknown_path) in zip(read_paths(private_drop),
                                                 read_paths("nosuchdrop"), strict=True):
        for accept in ({}, JSON):
            seen = request(client, method, path, headers={**headers, **accept})
            unknown = request(client, method, unknown_path, headers={**headers, **accept})
            assert seen.status_code == 404, (method, path)
            assert seen.get_data() == unknown.get_data()
            assert set(seen.headers.keys()) == set(unknown.headers.keys())


def test_a_private_drop_is_404_even_with_its_password_header(client: Any, owners: Owners) -> None:
    slug = owner_upload(client, owners.alice, private="true", password=PASSWORD)["slug"]
    assert client.get(f"/{slug}", headers=with_password(PASSWORD)).status_code == 404
    assert client.get(f"/{slug}", headers=basic("x", PASSWORD)).status_code == 404


def test_the_owner_reads_a_private_drop(app: Flask, client: Any, owners: Owners,
                                        private_drop: str) -> None:
    headers = bearer(owners.alice, accept_json=False)
    response = client.get(f"/{private_drop}", headers=headers)
    assert response.status_code == 200 and response.get_data() == b"private bytes"
    head = client.head(f"/{private_drop}", headers=headers)
    assert head.status_code == 200 and head.headers["Content-Length"] == "13"
    info = client.get(f"/api/drops/{private_drop}", headers=headers).get_json()
    assert info["private"] is True and info["downloads"] == 1


def test_a_private_download_refused_to_others_is_not_counted(app: Flask, client: Any,
                                                             owners: Owners,
                                                             private_drop: str) -> None:
    client.get(f"/{private_drop}")
    client.get(f"/{private_drop}", headers=bearer(owners.bob))
    drop = service_of(app).metadata.get(private_drop)
    assert drop is not None and drop.downloads == 0


@pytest.mark.parametrize("where", ["form", "query"])
def test_private_without_a_token_is_400_and_stores_nothing(app: Flask, client: Any,
                                                           data_dir: Path, where: str) -> None:
    options = {"private": "true"}
    response = post_file(client, headers=JSON, fields=options if where == "form" else None,
                         query=options if where == "query" else None)
    assert "owner" in assert_json_error(response, 400, "invalid_option")
    assert_nothing_stored(app, data_dir)


def test_private_may_be_set_in_the_query_by_an_owner(client: Any, owners: Owners) -> None:
    response = put_file(client, "/p.txt", b"p", headers=bearer(owners.alice),
                        query={"private": "true"})
    slug = created_json(response)["slug"]
    assert client.get(f"/{slug}").status_code == 404


@pytest.mark.parametrize("value", ["maybe", "2", "yes please"])
def test_a_private_value_that_is_not_a_boolean_is_400(app: Flask, client: Any, data_dir: Path,
                                                      owners: Owners, value: str) -> None:
    response = post_file(client, fields={"private": value}, headers=bearer(owners.alice))
    assert_json_error(response, 400, "invalid_option")
    assert_nothing_stored(app, data_dir)


# --- passwords: storing them --------------------------------------------------------------

def stored_password_hash(data_dir: Path, slug: str) -> str | None:
    with closing(sqlite3.connect(data_dir / "teledrop.db")) as conn:
        row = conn.execute("SELECT password_hash FROM drops WHERE slug = ?", (slug,)).fetchone()
    assert row is not None, slug
    return row[0]


def assert_argon2_of(stored: str | None, password: str) -> None:
    assert stored is not None and stored.startswith("$argon2id$")
    assert password not in stored
    assert PasswordHasher().verify(stored, password)


@pytest.mark.parametrize("how", ["form", "header", "put header"])
def test_a_password_is_stored_only_as_an_argon2_hash(client: Any, data_dir: Path,
                                                     how: str) -> None:
    if how == "form":
        response = post_file(client, fields={"password": PASSWORD}, headers=JSON)
    elif how == "header":
        response = post_file(client, headers={**JSON, **with_password(PASSWORD)})
    else:
        response = put_file(client, headers={**JSON, **with_password(PASSWORD)})
    drop = created_json(response)
    assert drop["has_password"] is True
    assert PASSWORD not in response.get_data(as_text=True)
    assert_argon2_of(stored_password_hash(data_dir, drop["slug"]), PASSWORD)
    with closing(sqlite3.connect(data_dir / "teledrop.db")) as conn:
        dump = "\n".join(conn.iterdump())
    assert PASSWORD not in dump


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_a_password_in_the_upload_query_is_400_and_stores_nothing(app: Flask, client: Any,
                                                                  data_dir: Path,
                                                                  method: str) -> None:
    query = {"password": PASSWORD}
    response = (post_file(client, headers=JSON, query=query) if method == "POST"
                else put_file(client, headers=JSON, query=query))
    assert "query" in assert_json_error(response, 400, "invalid_option")
    assert_nothing_stored(app, data_dir)


# --- passwords: reading -------------------------------------------------------------------

@pytest.fixture
def locked(client: Any, owners: Owners) -> str:
    """Alice's public drop with a password."""
    return owner_upload(client, owners.alice, b"locked bytes", "locked.txt",
                        password=PASSWORD)["slug"]


def assert_password_required(response: TestResponse) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert b"locked bytes" not in response.get_data()


def test_without_the_password_every_read_is_401(client: Any, locked: str) -> None:
    for method, path in read_paths(locked):
        assert_password_required(request(client, method, path))
    assert_json_error(client.get(f"/{locked}", headers=JSON), 401, "password_required")
    assert_text_error(client.get(f"/api/drops/{locked}"), 401)


@pytest.mark.parametrize("headers", [
    with_password(PASSWORD),
    basic("anyone", PASSWORD),
    basic("", PASSWORD),
    basic("alice", PASSWORD),
], ids=["X-Drop-Password", "basic-any-user", "basic-empty-user", "basic-owner-name"])
def test_the_right_password_reads_the_drop(client: Any, locked: str,
                                           headers: dict[str, str]) -> None:
    response = client.get(f"/{locked}", headers=headers)
    assert response.status_code == 200 and response.get_data() == b"locked bytes"
    assert client.head(f"/{locked}", headers=headers).status_code == 200
    info = client.get(f"/api/drops/{locked}", headers=headers).get_json()
    assert info["has_password"] is True and info["downloads"] == 1


def utf8_header(text: str) -> str:
    """A header value as a client sends UTF-8 text: WSGI hands the bytes over as latin-1."""
    return text.encode("utf-8").decode("latin-1")


NON_ASCII_PASSWORD = "pässwörd €"


@pytest.mark.parametrize("set_by", ["form", "header"])
@pytest.mark.parametrize("read_by", ["header", "basic", "form"])
def test_a_non_ascii_password_works_however_it_is_given(client: Any, set_by: str,
                                                        read_by: str) -> None:
    if set_by == "form":
        created = post_file(client, fields={"password": NON_ASCII_PASSWORD}, headers=JSON)
    else:
        created = put_file(client, headers={**JSON,
                                            **with_password(utf8_header(NON_ASCII_PASSWORD))})
    slug = created_json(created)["slug"]
    if read_by == "form":
        response = client.post(f"/{slug}", data={"password": NON_ASCII_PASSWORD})
    elif read_by == "basic":
        response = client.get(f"/{slug}", headers=basic("u", NON_ASCII_PASSWORD))
    else:
        response = client.get(f"/{slug}", headers=with_password(utf8_header(NON_ASCII_PASSWORD)))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_data() == b"hello"


@pytest.mark.parametrize("headers", [
    with_password("wrong"), with_password(""), basic("anyone", "wrong"),
    with_password(PASSWORD.upper()), with_password(PASSWORD + " "),
])
def test_a_wrong_password_is_401(client: Any, locked: str, headers: dict[str, str]) -> None:
    assert_password_required(client.get(f"/{locked}", headers=headers))


def test_the_header_wins_over_basic(client: Any, locked: str) -> None:
    headers = {**with_password("wrong"), **basic("u", PASSWORD)}
    assert_password_required(client.get(f"/{locked}", headers=headers))


def test_the_owner_needs_no_password(client: Any, owners: Owners, locked: str) -> None:
    response = client.get(f"/{locked}", headers=bearer(owners.alice, accept_json=False))
    assert response.status_code == 200 and response.get_data() == b"locked bytes"
    assert_password_required(client.get(f"/{locked}", headers=bearer(owners.bob, False)))


class PasswordForm(HTMLParser):
    """The ``<form>`` of the password page and the names of its inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.form: dict[str, str | None] = {}
        self.inputs: dict[str, dict[str, str | None]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            self.form = dict(attrs)
        elif tag == "input":
            named = dict(attrs)
            self.inputs[named.get("name") or ""] = named


def password_form(response: TestResponse) -> PasswordForm:
    assert response.status_code == 401 and response.mimetype == "text/html"
    # a challenge browsers do not answer with their own prompt: the form is the prompt
    assert response.headers["WWW-Authenticate"].startswith("X-Drop-Password ")
    parser = PasswordForm()
    parser.feed(response.get_data(as_text=True))
    return parser


def form_target(page_url: str, form: PasswordForm) -> str:
    """Where a browser on ``page_url`` posts the form."""
    assert form.form.get("method") == "post"
    return urljoin(page_url, form.form.get("action") or "")


@pytest.mark.parametrize("path", ["/{slug}", "/{slug}/locked.txt"])
def test_a_browser_gets_the_password_form_then_the_file(client: Any, locked: str,
                                                        path: str) -> None:
    page = path.format(slug=locked)
    form = password_form(client.get(page, headers={"Accept": BROWSER_ACCEPT}))
    assert form_target(f"http://localhost{page}", form) == f"http://localhost{page}"
    assert form.inputs["password"].get("type") == "password"
    response = client.post(page, data={"password": PASSWORD}, headers={"Accept": BROWSER_ACCEPT})
    if page == f"/{locked}":  # the short link's landing page first, its button posts again
        assert response.status_code == 200 and response.mimetype == "text/html"
        assert f'action="{locked}/locked.txt"' in response.get_data(as_text=True)
        response = client.post(f"{page}/locked.txt", data={"password": PASSWORD},
                               headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200 and response.get_data() == b"locked bytes"
    assert response.headers["Content-Disposition"].startswith("attachment")


def test_a_wrong_password_in_the_form_shows_the_form_again(client: Any, locked: str) -> None:
    response = client.post(f"/{locked}", data={"password": "nope"},
                           headers={"Accept": BROWSER_ACCEPT})
    form = password_form(response)
    assert "password" in form.inputs
    assert "wrong password" in response.get_data(as_text=True).lower()


def test_the_form_posts_back_under_a_proxy_prefix(make_app: Any) -> None:
    client = make_app(server={"proxy_hops": 1}).test_client()
    proxied = {"X-Forwarded-Prefix": "/files"}
    slug = slug_of(post_file(client, fields={"password": PASSWORD}, headers=proxied))
    form = password_form(client.get(f"/{slug}", headers={**proxied, "Accept": BROWSER_ACCEPT}))
    assert form_target(f"http://localhost/files/{slug}", form) == f"http://localhost/files/{slug}"


def test_a_script_asking_for_json_gets_a_json_401_not_the_form(client: Any, locked: str) -> None:
    response = client.get(f"/{locked}", headers={"Accept": "application/json, text/html"})
    assert_json_error(response, 401, "password_required")


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/{slug}"), ("HEAD", "/{slug}"), ("POST", "/{slug}"), ("GET", "/api/drops/{slug}"),
    ("GET", "/{slug}/name.txt"),
])
def test_a_password_in_the_query_string_is_400(app: Flask, client: Any, locked: str,
                                               method: str, path: str) -> None:
    response = request(client, method, path.format(slug=locked),
                       query_string={"password": PASSWORD}, headers=JSON)
    assert response.status_code == 400
    if method != "HEAD":
        assert "query" in assert_json_error(response, 400, "invalid_option")
    drop = service_of(app).metadata.get(locked)
    assert drop is not None and drop.downloads == 0


# --- passwords: rate limiting -------------------------------------------------------------

def guess(client: Any, slug: str, password: str) -> TestResponse:
    return client.get(f"/{slug}", headers=with_password(password))


def exhaust(client: Any, slug: str) -> None:
    for _ in range(MAX_ATTEMPTS):
        assert_password_required(guess(client, slug, "wrong"))


def assert_too_many(response: TestResponse) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) == ATTEMPT_WINDOW
    assert b"locked bytes" not in response.get_data()


def test_the_sixth_wrong_password_within_a_minute_is_429(client: Any, locked: str) -> None:
    exhaust(client, locked)
    assert_too_many(guess(client, locked, "wrong"))
    as_json = client.get(f"/{locked}", headers={**JSON, **with_password("wrong")})
    assert_json_error(as_json, 429, "too_many_attempts")
    assert_text_error(guess(client, locked, "wrong"), 429)


@pytest.mark.parametrize("headers", [with_password(PASSWORD), basic("u", PASSWORD)])
def test_once_limited_even_the_right_password_is_429(client: Any, locked: str,
                                                     headers: dict[str, str]) -> None:
    exhaust(client, locked)
    assert_too_many(client.get(f"/{locked}", headers=headers))
    assert_too_many(client.post(f"/{locked}", data={"password": PASSWORD},
                                headers={"Accept": BROWSER_ACCEPT}))


def test_the_form_counts_towards_the_limit(client: Any, locked: str) -> None:
    for _ in range(MAX_ATTEMPTS):
        password_form(client.post(f"/{locked}", data={"password": "nope"},
                                  headers={"Accept": BROWSER_ACCEPT}))
    assert_too_many(guess(client, locked, PASSWORD))


def test_asking_without_a_password_is_not_a_wrong_guess(client: Any, locked: str) -> None:
    for _ in range(MAX_ATTEMPTS + 3):
        assert_password_required(client.get(f"/{locked}"))
    assert guess(client, locked, PASSWORD).status_code == 200


def test_the_limit_is_per_drop(client: Any, owners: Owners, locked: str) -> None:
    other = owner_upload(client, owners.alice, b"other", "other.txt", password=PASSWORD)["slug"]
    exhaust(client, locked)
    assert guess(client, other, PASSWORD).get_data() == b"other"


def test_the_owner_is_not_locked_out(client: Any, owners: Owners, locked: str) -> None:
    exhaust(client, locked)
    response = client.get(f"/{locked}", headers=bearer(owners.alice, False))
    assert response.status_code == 200 and response.get_data() == b"locked bytes"


def test_the_limit_lifts_after_the_window(client: Any, locked: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    exhaust(client, locked)
    assert_too_many(guess(client, locked, PASSWORD))
    later = now() + ATTEMPT_WINDOW + 1
    monkeypatch.setattr(teledrop.core.drops, "now", lambda: later)
    assert guess(client, locked, PASSWORD).get_data() == b"locked bytes"
    exhaust(client, locked)  # a fresh window allows a fresh five
    assert_too_many(guess(client, locked, "wrong"))


# --- previews -----------------------------------------------------------------------------

INLINE = {"pic.png": "image/png", "doc.pdf": "application/pdf", "notes.txt": "text/plain",
          "clip.mp4": "video/mp4"}
ATTACHED = {"logo.svg": "image/svg+xml", "page.html": "text/html"}


def download(client: Any, slug: str, preview: bool) -> TestResponse:
    response = client.get(f"/{slug}", query_string={"preview": ""} if preview else None)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    return response


@pytest.mark.parametrize(("filename", "content_type"), INLINE.items())
def test_preview_shows_safe_types_inline(client: Any, filename: str, content_type: str) -> None:
    slug = upload(client, b"\x00preview", filename)["slug"]
    shown = download(client, slug, preview=True)
    assert shown.mimetype == content_type
    assert shown.headers["Content-Disposition"] == f"inline; filename={filename}"
    assert shown.get_data() == b"\x00preview"
    plain = download(client, slug, preview=False)
    assert plain.headers["Content-Disposition"] == f"attachment; filename={filename}"


@pytest.mark.parametrize(("filename", "content_type"), ATTACHED.items())
def test_preview_never_renders_active_content(client: Any, filename: str,
                                              content_type: str) -> None:
    slug = upload(client, b"<svg onload=alert(1)>", filename)["slug"]
    for preview in (True, False):
        response = download(client, slug, preview)
        assert response.mimetype == content_type
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert "sandbox" in response.headers["Content-Security-Policy"]


def test_preview_of_a_protected_drop_still_needs_the_password(client: Any, locked: str) -> None:
    assert_password_required(client.get(f"/{locked}?preview"))
    shown = client.get(f"/{locked}?preview", headers=with_password(PASSWORD))
    assert shown.headers["Content-Disposition"].startswith("inline")


# --- across two gunicorn workers ----------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("owner-access"),
                     server={"workers": 2, "threads": 8}) as running:
        yield running


def live_locked(server: LiveServer) -> str:
    response = server.request("POST", "/", files={"file": ("locked.txt", b"locked bytes")},
                              data={"password": PASSWORD}, headers=JSON)
    assert response.status_code == 201, response.text
    return response.json()["slug"]


def live_guess(server: LiveServer, slug: str, password: str) -> int:
    # A session per request: a new connection each time, which either worker may accept.
    return server.request("GET", f"/{slug}", headers=with_password(password)).status_code


@pytest.mark.gunicorn
def test_the_limit_holds_across_workers_one_guess_at_a_time(server: LiveServer) -> None:
    slug = live_locked(server)
    statuses = [live_guess(server, slug, f"wrong-{i}") for i in range(MAX_ATTEMPTS + 1)]
    assert statuses == [401] * MAX_ATTEMPTS + [429]
    response = server.request("GET", f"/{slug}", headers=with_password(PASSWORD))
    assert response.status_code == 429 and response.headers["Retry-After"] == str(ATTEMPT_WINDOW)
    assert server.request("GET", f"/{slug}", auth=("any", PASSWORD)).status_code == 429


@pytest.mark.gunicorn
def test_guesses_sent_at_once_get_no_more_than_the_limit(server: LiveServer) -> None:
    """Sixteen wrong guesses in flight together, over both workers' threads: only five may
    be checked against the hash; the rest must be refused unchecked."""
    slug = live_locked(server)
    attempts = 16
    barrier = threading.Barrier(attempts)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        barrier.wait()
        status = live_guess(server, slug, f"guess-{i}")
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [401] * MAX_ATTEMPTS + [429] * (attempts - MAX_ATTEMPTS)
    assert live_guess(server, slug, PASSWORD) == 429


@pytest.mark.gunicorn
def test_a_live_private_drop_is_404_and_its_owner_reads_it(server: LiveServer) -> None:
    service = composition.start(load_config(str(server.config_path), environ={}))
    try:
        token = create_token(service, "live-owner")
    finally:
        service.close()
    created = server.request("PUT", "/secret.txt", data=b"live secret",
                             headers={**bearer(token), "X-Drop-Password": PASSWORD},
                             params={"private": "true"})
    assert created.status_code == 201, created.text
    slug = created.json()["slug"]
    for path in (f"/{slug}", f"/api/drops/{slug}"):
        assert server.request("GET", path).status_code == 404
        assert server.request("GET", path, headers=with_password(PASSWORD)).status_code == 404
    mine = server.request("GET", f"/{slug}", headers=bearer(token, False))
    assert mine.status_code == 200 and mine.content == b"live secret"
    listed = server.request("GET", "/api/drops", headers=bearer(token)).json()
    assert [d["slug"] for d in listed["drops"]] == [slug]
