"""Schemathesis against ``/openapi.json``, in-process on the Flask app: for every operation
the document describes, generated requests (valid and not) never get a 5xx, and every
response conforms to the document — its status, media type, headers and body schema.

Every operation runs twice: anonymously, and with an owner's token, so that the owner API
(the list, PATCH, an owner's delete and reads) answers more than 401. The slug the document
gives as its example names the owner's password-protected drop.

Bounded and deterministic (a fixed example budget, derandomized generation) so the suite
stays fast and a failure replays; each operation runs against a fresh app on fresh data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from teledrop.core.owners import create_token
from teledrop.web.app import service_of
from teledrop.web.openapi import openapi_document

MAX_EXAMPLES = 25


@schemathesis.check
def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """No 5xx, but the documented 501 of direct uploads on a storage that cannot take
    them (these apps run on local_storage): clients fall back on it."""
    if response.status_code == 501 and case.path.startswith("/api/direct-uploads") \
            and "cannot take direct uploads" in response.text:  # JSON or plain text
        return None
    return not_a_server_error(ctx, response, case)


CHECKS = [no_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


#: The slug of the document's examples.
EXAMPLE_SLUG = openapi_document()["paths"]["/{slug}"]["parameters"][0]["example"]


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    # A small upload limit, so a generated body can also cross it (413 is documented).
    app = make_app(limits={"max_upload_size": 4096})
    # A real drop, so that paths naming a slug sometimes find one.
    assert app.test_client().put("/seed.txt?slug=seed-drop", data=b"seed").status_code == 201
    return app


@pytest.fixture(params=["anonymous", "owner"])
def headers(request: pytest.FixtureRequest, app: Flask) -> dict[str, str]:
    """What each request carries: nothing, or an owner's token; that owner has a
    password-protected drop under the example slug."""
    token = create_token(service_of(app), "fuzzer")
    owner = {"Authorization": f"Bearer {token}"}
    created = app.test_client().put(f"/report.pdf?slug={EXAMPLE_SLUG}", data=b"owned",
                                    headers={**owner, "X-Drop-Password": "pw"})
    assert created.status_code == 201, created.data
    return owner if request.param == "owner" else {}


# tus bodies are raw bytes under their own media type.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")

# Loaded at collection, so that each operation is a test of its own (pytest 9 cannot run
# schemathesis' fixture-loaded schemas); the test below proves it is the served document.
schema = schemathesis.openapi.from_dict(openapi_document())


def test_the_document_under_test_is_the_one_served(app: Flask) -> None:
    assert app.test_client().get("/openapi.json").get_json() == openapi_document()


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_the_api_conforms_to_its_document(case: Any, app: Flask, headers: dict[str, str]) -> None:
    case.call_and_validate(app=app, headers=headers, checks=CHECKS)


def test_the_owner_runs_reach_the_owner_api(app: Flask, headers: dict[str, str]) -> None:
    """The token works for the owner run: a listing is no 401, and it holds the drop."""
    listed = app.test_client().get("/api/drops", headers=headers)
    if headers:
        assert listed.status_code == 200
        assert [d["slug"] for d in listed.get_json()["drops"]] == [EXAMPLE_SLUG]
    else:
        assert listed.status_code == 401
