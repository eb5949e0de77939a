"""``GET /openapi.json`` keeps the HTTP interface honest: it is a valid OpenAPI 3.1
document, every route the app serves is in it (and everything in it is served), and real
responses — uploads, drops, errors in JSON and plain text, downloads, /healthz — each
answer with a status the document lists for that operation, a media type it lists for
that status, a body that validates against that media type's schema, and every header it
promises.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from werkzeug.test import TestResponse

from teledrop.core.errors import MetadataUnavailable, StorageFull
from tests.http_helpers import JSON
from tests.plugins.faults import RaiseInCommit

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
#: Methods every route has without saying so (Flask adds them).
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
def document(client: Any) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def template(path: str) -> str:
    """A path template with its parameter names erased: ``/{slug}`` and ``/{filename}``
    are the same path to OpenAPI (and to a router)."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def rule_template(rule: str) -> str:
    return template(re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule))


def served_operations(app: Flask) -> set[tuple[str, str]]:
    """Every route's methods, but those Flask adds by itself (an OPTIONS a view declares,
    as the tus endpoints do, is served)."""
    return {(rule_template(rule.rule), method.lower())
            for rule in app.url_map.iter_rules()
            for method in (rule.methods or set()) - implicit_methods(rule)}


def implicit_methods(rule: Any) -> set[str]:
    return IMPLICIT_METHODS if getattr(rule, "provide_automatic_options", True) else {"HEAD"}


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
    return {(template(path), method) for path, item in document["paths"].items()
            for method in item if method in methods}


# --- the document itself ---------------------------------------------------------------

def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert re.fullmatch(r"3\.1\.\d+", document["openapi"])
    validate(document, cls=OpenAPIV31SpecValidator)


def test_the_validator_refuses_a_broken_document(document: dict[str, Any]) -> None:
    # The check above can fail: a dangling reference is caught.
    broken = {**document, "paths": {**document["paths"], "/x": {"get": {"responses": {
        "200": {"description": "x", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Nowhere"}}}}}}}}}
    with pytest.raises(Exception, match="Nowhere"):
        validate(broken, cls=OpenAPIV31SpecValidator)


def test_every_served_route_is_documented(app: Flask, document: dict[str, Any]) -> None:
    missing = served_operations(app) - documented_operations(document)
    assert not missing, f"served but not in /openapi.json: {sorted(missing)}"


def test_every_documented_operation_is_served(app: Flask, document: dict[str, Any]) -> None:
    served = served_operations(app) | {(path, "head") for path, method in served_operations(app)
                                       if method == "get"}
    extra = documented_operations(document) - served
    assert not extra, f"in /openapi.json but not served: {sorted(extra)}"


# --- real responses against it ---------------------------------------------------------

def resolved(schema: Any, document: dict[str, Any]) -> Any:
    """``schema`` with every local ``$ref`` replaced by what it points at."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            target: Any = document
            for part in schema["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return resolved(target, document)
        return {key: resolved(value, document) for key, value in schema.items()}
    if isinstance(schema, list):
        return [resolved(item, document) for item in schema]
    return schema


def operation(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    for documented, item in document["paths"].items():
        if template(documented) == template(path) and method in item:
            return item[method]
    raise AssertionError(f"{method.upper()} {path} is not in the document")


def documented_media(content: dict[str, Any], mimetype: str) -> str | None:
    """The most specific media type (or range: ``text/*``, ``*/*``) in ``content`` that
    covers ``mimetype``."""
    major = mimetype.split("/", 1)[0]
    for candidate in (mimetype, f"{major}/*", "*/*"):
        if candidate in content:
            return candidate
    return None


def assert_conforms(document: dict[str, Any], path: str, method: str,
                    response: Response) -> None:
    """``response`` (to ``method`` on the documented ``path``) is what the document says."""
    responses = operation(document, path, method)["responses"]
    status = str(response.status_code)
    assert status in responses, \
        f"{method.upper()} {path} answered {status}; documented: {sorted(responses)}"
    spec = responses[status]
    for name in spec.get("headers", {}):
        assert name in response.headers, f"{status} promises a {name} header"
    content = spec.get("content")
    if not content or method == "head":
        assert response.data == b"", f"{status} has a body the document does not describe"
        return
    media = documented_media(content, response.mimetype)
    assert media is not None, \
        f"{status} answered {response.mimetype}; documented: {sorted(content)}"
    schema = resolved(content[media]["schema"], document)
    if response.mimetype == "application/json":
        instance: Any = response.get_json()
    else:  # text, or bytes (a JSON Schema string with a contentMediaType)
        instance = response.get_data().decode("latin-1")
    Draft202012Validator(schema, format_checker=FormatChecker()).validate(instance)


def test_assert_conforms_catches_an_undocumented_status_and_a_wrong_body(
        client: Any, document: dict[str, Any]) -> None:
    with pytest.raises(AssertionError, match="answered 418"):
        assert_conforms(document, "/healthz", "get", Response(b"", 418))
    wrong = Response(b'{"status": "fine"}', 200, mimetype="application/json")
    with pytest.raises(Exception, match="fine"):
        assert_conforms(document, "/healthz", "get", wrong)


@pytest.fixture
def world(make_app: Callable[..., Flask]) -> dict[str, Any]:
    """An app with a few drops in every state, and apps that fail on purpose."""
    app = make_app(limits={"max_upload_size": 1000})
    client = app.test_client()
    kept = client.put("/kept.txt", data=b"kept bytes", headers=JSON).get_json()
    once = client.put("/once.txt?max_downloads=1", data=b"once", headers=JSON).get_json()
    assert client.get(f"/{once['slug']}").status_code == 200
    return {
        "client": client,
        "kept": kept,
        "exhausted": once,
        "token_client": make_app(auth={"upload_tokens": ["s3cret"]}).test_client(),
        "full_client": make_app(plugins=[RaiseInCommit(StorageFull())]).test_client(),
        "down_client": make_app(plugins=[RaiseInCommit(MetadataUnavailable())]).test_client(),
    }


def upload_form(client: Any, headers: dict[str, str] | None = None, data: bytes = b"abc",
                **fields: str) -> TestResponse:
    return client.post("/", data={**fields, "file": (io.BytesIO(data), "a.txt")},
                       headers=headers or {})


#: name -> (documented path, method, request against ``world``)
Request = Callable[[dict[str, Any]], TestResponse]
SCENARIOS: dict[str, tuple[str, str, Request]] = {
    "index, curl": ("/", "get", lambda w: w["client"].get("/")),
    "index, browser": ("/", "get", lambda w: w["client"].get("/", headers=BROWSER)),
    "upload form, json": ("/", "post", lambda w: upload_form(w["client"], JSON)),
    "upload form, text": ("/", "post", lambda w: upload_form(w["client"])),
    "upload form, options": ("/", "post", lambda w: upload_form(
        w["client"], JSON, slug="my-slug", expires="1h", max_downloads="2")),
    "put root, json": ("/", "put", lambda w: w["client"].put("/", data=b"x", headers=JSON)),
    "put name, json": ("/{slug}", "put",
                       lambda w: w["client"].put("/n.bin", data=b"x", headers=JSON)),
    "put name, text": ("/{slug}", "put", lambda w: w["client"].put("/n.bin", data=b"x")),
    "bad option": ("/", "post", lambda w: upload_form(w["client"], JSON, expires="soon")),
    "bad option, text": ("/{slug}", "put",
                         lambda w: w["client"].put("/n.bin?max_downloads=0", data=b"x")),
    "malformed form": ("/", "post", lambda w: w["client"].post(
        "/", data=b"x", content_type="multipart/form-data; boundary=b", headers=JSON)),
    "no token": ("/", "post", lambda w: upload_form(w["token_client"], JSON)),
    "slug taken": ("/", "post", lambda w: upload_form(w["client"], JSON,
                                                      slug=w["kept"]["slug"])),
    "too large": ("/{slug}", "put",
                  lambda w: w["client"].put("/n.bin", data=b"x" * 1001, headers=JSON)),
    "no length": ("/{slug}", "put", lambda w: w["client"].put("/n.bin", headers=JSON)),
    "storage full": ("/", "post", lambda w: upload_form(w["full_client"], JSON)),
    "metadata down": ("/{slug}", "put",
                      lambda w: w["down_client"].put("/n.bin", data=b"x", headers=JSON)),
    "drop": ("/api/drops/{slug}", "get",
             lambda w: w["client"].get(f"/api/drops/{w['kept']['slug']}")),
    "drop, unknown": ("/api/drops/{slug}", "get",
                      lambda w: w["client"].get("/api/drops/nosuchdrop", headers=JSON)),
    "drop, gone": ("/api/drops/{slug}", "get",
                   lambda w: w["client"].get(f"/api/drops/{w['exhausted']['slug']}",
                                             headers=JSON)),
    "download": ("/{slug}", "get", lambda w: w["client"].get(f"/{w['kept']['slug']}")),
    "download by name": ("/{slug}/{name}", "get",
                         lambda w: w["client"].get(f"/{w['kept']['slug']}/any.txt")),
    "download range": ("/{slug}", "get", lambda w: w["client"].get(
        f"/{w['kept']['slug']}", headers={"Range": "bytes=1-3"})),
    "download not modified": ("/{slug}", "get", lambda w: w["client"].get(
        f"/{w['kept']['slug']}", headers={"If-None-Match": f'"{w["kept"]["hash"]}"'})),
    "download bad range": ("/{slug}", "get", lambda w: w["client"].get(
        f"/{w['kept']['slug']}", headers={"Range": "bytes=999-", **JSON})),
    "download unknown": ("/{slug}", "get", lambda w: w["client"].get("/nosuchdrop")),
    "download gone": ("/{slug}", "get",
                      lambda w: w["client"].get(f"/{w['exhausted']['slug']}", headers=JSON)),
    "head": ("/{slug}", "head", lambda w: w["client"].head(f"/{w['kept']['slug']}")),
    "delete, wrong token": ("/{slug}", "delete", lambda w: w["client"].delete(
        f"/{w['kept']['slug']}", headers={"X-Delete-Token": "wrong", **JSON})),
    "delete": ("/{slug}", "delete", lambda w: w["client"].delete(
        f"/{w['kept']['slug']}", headers={"X-Delete-Token": w["kept"]["delete_token"]})),
    "delete, unknown": ("/{slug}", "delete", lambda w: w["client"].delete(
        "/nosuchdrop", headers={"X-Delete-Token": "x"})),
    "healthz": ("/healthz", "get", lambda w: w["client"].get("/healthz")),
    "openapi": ("/openapi.json", "get", lambda w: w["client"].get("/openapi.json")),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_real_response_conforms_to_the_document(world: dict[str, Any],
                                                  document: dict[str, Any],
                                                  scenario: str) -> None:
    path, method, send = SCENARIOS[scenario]
    assert_conforms(document, path, method, send(world))


def test_healthz_unavailable_conforms(client: Any, data_dir: Path,
                                      document: dict[str, Any]) -> None:
    (data_dir / "files" / "staging").rmdir()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert_conforms(document, "/healthz", "get", response)


def test_the_drop_schemas_name_exactly_the_fields_of_a_drop(world: dict[str, Any],
                                                            document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    drop = world["client"].get(f"/api/drops/{world['kept']['slug']}").get_json()
    assert set(schemas["Drop"]["properties"]) == set(drop)
    assert set(schemas["CreatedDrop"]["properties"]) == set(world["kept"])
