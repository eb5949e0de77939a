"""The rest of the HTTP API through the test client: drop metadata, deletion, the error format
(JSON or one plain line, never a traceback), /healthz, the index page, and how links are
built (request host, X-Forwarded-* behind trusted proxies, base_url)."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from teledrop import hookimpl
from teledrop.core.config import Config
from teledrop.core.errors import MetadataUnavailable, StorageUnavailable
from teledrop.core.owners import create_token
from teledrop.core.upload import UploadRequest
from teledrop.web.app import service_of
from teledrop_local_storage import LocalStorage
from teledrop_sqlite_meta import SqliteMetadata
from tests.http_helpers import (
    DROP_FIELDS,
    JSON,
    assert_json_error,
    assert_nothing_stored,
    assert_text_error,
    created_json,
    post_file,
    put_file,
    records,
    slug_of,
    stored_paths,
    upload,
)

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


# --- GET /api/drops/{slug} -------------------------------------------------------------

def test_drop_metadata_is_the_upload_json_without_the_delete_token(client: Any) -> None:
    created = upload(client, b"meta", "meta.txt", max_downloads="4")
    response = client.get(f"/api/drops/{created['slug']}")
    assert response.status_code == 200 and response.mimetype == "application/json"
    info = response.get_json()
    assert set(info) == DROP_FIELDS
    assert info == {k: created[k] for k in DROP_FIELDS}
    assert created["delete_token"] not in response.get_data(as_text=True)
    assert "delete_token" not in response.get_data(as_text=True)


def test_drop_metadata_of_an_unknown_slug_is_404(client: Any) -> None:
    assert_json_error(client.get("/api/drops/nosuchdrop", headers=JSON), 404, "not_found")
    assert_text_error(client.get("/api/drops/nosuchdrop"), 404)


# --- DELETE /{slug} --------------------------------------------------------------------

def test_delete_with_the_token_removes_file_and_record(app: Flask, client: Any,
                                                       data_dir: Path) -> None:
    keep = upload(client, b"keep", "keep.txt")
    kept_files = stored_paths(data_dir)
    gone = upload(client, b"remove me", "bye.txt")
    response = client.delete(f"/{gone['slug']}", headers={"X-Delete-Token": gone["delete_token"]})
    assert response.status_code == 204 and response.data == b""
    assert stored_paths(data_dir) == kept_files
    assert [d.slug for d in records(app)] == [keep["slug"]]
    assert_text_error(client.get(f"/{gone['slug']}"), 404)
    assert_text_error(client.get(f"/api/drops/{gone['slug']}"), 404)
    assert_text_error(client.delete(f"/{gone['slug']}",
                                    headers={"X-Delete-Token": gone["delete_token"]}), 404)
    assert client.get(f"/{keep['slug']}").data == b"keep"


def test_delete_frees_a_custom_slug(client: Any) -> None:
    first = upload(client, b"v1", slug="release")
    client.delete("/release", headers={"X-Delete-Token": first["delete_token"]})
    upload(client, b"v2", slug="release")
    assert client.get("/release").data == b"v2"


def test_an_exhausted_drop_can_still_be_deleted_by_its_owner(app: Flask, client: Any,
                                                             data_dir: Path) -> None:
    drop = upload(client, b"once", max_downloads="1")
    client.get(f"/{drop['slug']}")
    response = client.delete(f"/{drop['slug']}", headers={"X-Delete-Token": drop["delete_token"]})
    assert response.status_code == 204
    assert_nothing_stored(app, data_dir)


@pytest.mark.parametrize("token", [None, "", "wrong", "other drop's", "prefix"])
def test_delete_without_the_right_token_is_403_and_removes_nothing(app: Flask, client: Any,
                                                                   data_dir: Path,
                                                                   token: str | None) -> None:
    drop = upload(client, b"precious", "precious.txt")
    other = upload(client, b"other")
    presented = {"other drop's": other["delete_token"],
                 "prefix": drop["delete_token"][:-1]}.get(token or "", token)
    headers = {} if presented is None else {"X-Delete-Token": presented}
    files = stored_paths(data_dir)
    assert_text_error(client.delete(f"/{drop['slug']}", headers=headers), 403)
    assert_json_error(client.delete(f"/{drop['slug']}", headers={**headers, **JSON}), 403,
                      "forbidden")
    assert stored_paths(data_dir) == files
    assert len(records(app)) == 2
    assert client.get(f"/{drop['slug']}").data == b"precious"


def test_delete_of_an_unknown_slug_is_404(client: Any) -> None:
    assert_json_error(client.delete("/nosuchdrop", headers={**JSON, "X-Delete-Token": "x"}),
                      404, "not_found")


# --- the error format ------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/nosuchdrop", "/api/drops/a/b",
                                  "/healthz/x", "/static/app.js", "/favicon.ico"])
def test_an_unknown_path_is_404_in_both_formats(client: Any, path: str) -> None:
    assert_text_error(client.get(path), 404)
    assert_json_error(client.get(path, headers=JSON), 404, "not_found")


@pytest.mark.parametrize(("method", "path"), [
    ("DELETE", "/"), ("PATCH", "/"), ("POST", "/openapi.json"), ("PATCH", "/someslug"),
    ("PUT", "/a/b"), ("POST", "/healthz"), ("DELETE", "/api/drops/someslug"),
    ("POST", "/api/drops/someslug"),
])
def test_a_wrong_method_is_405_in_both_formats(client: Any, method: str, path: str) -> None:
    text = client.open(path, method=method)
    assert_text_error(text, 405)
    assert text.headers.get("Allow")
    assert_json_error(client.open(path, method=method, headers=JSON), 405, "method_not_allowed")
    assert method not in text.headers["Allow"]  # a 405 never allows its own method


@pytest.mark.parametrize("path", ["/api/drops/healthz", "/api/drops/api"])
def test_editing_a_reserved_word_is_404_not_405(app: Flask, path: str) -> None:
    """No drop can be called healthz; PATCH is this route's method, so 405 would lie."""
    token = create_token(service_of(app), "alice")
    response = app.test_client().patch(path, json={"title": "x"},
                                       headers={"Authorization": f"Bearer {token}", **JSON})
    assert_json_error(response, 404, "not_found")


class Exploding:
    """A plugin with a bug: a plain exception where a refusal would be a TeledropError."""

    teledrop_plugin_name = "exploding"

    @hookimpl
    def teledrop_authorize_upload(self, request: UploadRequest, config: Config) -> None:
        raise RuntimeError("secret-detail /srv/keys/id_rsa")


def test_a_server_error_shows_only_a_generic_message(make_app: Any, data_dir: Path) -> None:
    app = make_app(plugins=[Exploding()])
    client = app.test_client()
    text = post_file(client)
    assert assert_text_error(text, 500) == "internal server error"
    message = assert_json_error(put_file(client, headers=JSON), 500)
    assert message == "internal server error"
    for response in (text, put_file(client)):
        assert "secret-detail" not in response.get_data(as_text=True)
        assert "RuntimeError" not in response.get_data(as_text=True)
    assert_nothing_stored(app, data_dir)


# --- /healthz --------------------------------------------------------------------------

def test_healthz_is_ok(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_healthz_is_503_when_the_storage_directory_is_gone(client: Any, data_dir: Path) -> None:
    (data_dir / "files" / "staging").rmdir()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["status"] != "ok"


class UnreachableStorage(LocalStorage):
    def check(self) -> None:
        raise StorageUnavailable("the disk is not mounted")


class UnreachableMetadata(SqliteMetadata):
    def check(self) -> None:
        raise MetadataUnavailable("the database does not answer")


class Unreachable:
    """Backends that start but fail their health check."""

    teledrop_plugin_name = "unreachable"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    @hookimpl
    def teledrop_storage_backends(self) -> dict[str, Any]:
        return {"unreachable": lambda settings, config:
                UnreachableStorage(str(self.data_dir / "files"))}

    @hookimpl
    def teledrop_metadata_backends(self) -> dict[str, Any]:
        return {"unreachable": lambda settings, config:
                UnreachableMetadata(str(self.data_dir / "teledrop.db"))}


@pytest.mark.parametrize(("section", "code"), [("storage", "storage_unavailable"),
                                               ("metadata", "metadata_unavailable")])
def test_healthz_is_503_when_a_backend_fails_its_check(make_app: Any, data_dir: Path,
                                                       section: str, code: str) -> None:
    app = make_app(plugins=[Unreachable(data_dir)], **{section: {"plugin": "unreachable"}})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] != "ok" and body["error"]["code"] == code


# --- GET / -----------------------------------------------------------------------------

class FormFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str | None]] = []
        self.inputs: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            self.forms.append(dict(attrs))
        elif tag == "input":
            self.inputs.append(dict(attrs))


def test_a_browser_gets_an_upload_form(client: Any) -> None:
    response = client.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = FormFinder()
    page.feed(response.get_data(as_text=True))
    # the upload form; the owner's search and edit forms are the script's, never posted
    assert [(f.get("method", "").lower(), f.get("enctype")) for f in page.forms
            if f.get("method")] == [("post", "multipart/form-data")]
    assert {"type": "file", "name": "file"}.items() <= \
        next(i for i in page.inputs if i.get("type") == "file").items()


@pytest.mark.parametrize("accept", [None, "*/*", "text/plain"])
def test_curl_gets_plain_text_usage(client: Any, accept: str | None) -> None:
    response = client.get("/", headers={} if accept is None else {"Accept": accept})
    assert response.status_code == 200 and response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert "curl" in text and "http://localhost/" in text
    assert "<" not in text


# --- links: request host, proxies, base_url --------------------------------------------

FORWARDED = {"X-Forwarded-Host": "files.example.org", "X-Forwarded-Proto": "https",
             "X-Forwarded-Prefix": "/drop", "X-Forwarded-For": "203.0.113.9"}


def links(client: Any, headers: dict[str, str]) -> tuple[str, str, str]:
    """The link of a text upload, of a JSON upload and of its metadata, for one set of
    request headers."""
    text = post_file(client, headers=headers)
    assert text.status_code == 201
    created = created_json(post_file(client, headers={**headers, **JSON}))
    info = client.get(f"/api/drops/{created['slug']}", headers=headers).get_json()
    return (text.get_data(as_text=True).removesuffix(f"{slug_of(text)}\n"),
            created["url"].removesuffix(created["slug"]),
            info["url"].removesuffix(created["slug"]))


def test_forwarded_headers_are_ignored_by_default(client: Any) -> None:
    assert links(client, FORWARDED) == ("http://localhost/",) * 3
    response = post_file(client, headers=FORWARDED)
    assert response.headers["Location"] == f"/{slug_of(response)}"


def test_forwarded_headers_are_honoured_behind_a_trusted_proxy(make_app: Any) -> None:
    client = make_app(server={"proxy_hops": 1}).test_client()
    assert links(client, FORWARDED) == ("https://files.example.org/drop/",) * 3
    response = post_file(client, headers=FORWARDED)
    assert response.headers["Location"].startswith("/drop/")
    assert client.get("/", headers=FORWARDED).get_data(as_text=True).count(
        "https://files.example.org/drop/") >= 2


def test_only_the_trusted_hops_of_a_forwarded_chain_count(make_app: Any) -> None:
    client = make_app(server={"proxy_hops": 1}).test_client()
    spoofed = {"X-Forwarded-Host": "evil.example, files.example.org",
               "X-Forwarded-Proto": "http, https"}
    assert links(client, spoofed) == ("https://files.example.org/",) * 3


@pytest.mark.parametrize(("base_url", "prefix"), [
    ("https://drop.example.com", "https://drop.example.com/"),
    ("https://drop.example.com/", "https://drop.example.com/"),
    ("https://example.com/files/", "https://example.com/files/"),
])
def test_base_url_makes_the_links(make_app: Any, base_url: str, prefix: str) -> None:
    client = make_app(server={"base_url": base_url, "proxy_hops": 1}).test_client()
    assert links(client, FORWARDED) == (prefix,) * 3
    assert f"curl -F file=@report.pdf {prefix}" in client.get("/").get_data(as_text=True)
