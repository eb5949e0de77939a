"""teledrop as a Lambda function in the tests: its environment and the client's side of
its HTTP answers (payload format 2.0 results), and the function deployed behind
ministack's HTTP API on a bucket and a database of its own.

A function is configured the way one is deployed: by environment variables alone, one
``TELEDROP_<SECTION>__<KEY>`` per setting (TOML-quoted, so a secret of digits stays a
string), with the suite's entry points plus the two backends a function may use.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tests.live_server import _toml_value
from tests.services.ministack import HttpApi, Ministack
from tests.services.postgres import PostgresServer
from tests.support.entry_points import entry_points_env
from tests.support.hosts import BACKEND_ENTRY_POINTS, SharedBackends, shared_backends

HANDLER = "teledrop.hosts.aws_lambda.handler"


@pytest.fixture(scope="module")
def backends(ministack: Ministack, postgres_server: PostgresServer,
             ) -> Iterator[SharedBackends]:
    """A bucket on ministack's S3 and a database of its own."""
    with shared_backends(ministack.s3, postgres_server) as shared:
        yield shared


@pytest.fixture(scope="module")
def api(ministack: Ministack, backends: SharedBackends) -> Iterator[HttpApi]:
    """teledrop's handler behind ministack's HTTP API."""
    deployed = ministack.http_api(HANDLER, function_env(backends.host_sections()))
    yield deployed
    ministack.remove(deployed)


def function_env(sections: Mapping[str, Any]) -> dict[str, str]:
    """``sections`` (nested config tables, e.g. ``SharedBackends.host_sections()``) as a
    function's environment variables."""
    return {**dict(_variables(sections, "TELEDROP_")),
            **entry_points_env(*BACKEND_ENTRY_POINTS)}


def _variables(tables: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, str]]:
    for key, value in tables.items():
        name = prefix + key.upper()
        if isinstance(value, Mapping):
            yield from _variables(value, f"{name}__")
        else:
            yield name, _toml_value(value)


def result_body(result: Mapping[str, Any]) -> bytes:
    """The bytes of a function's result (base64 undone)."""
    body = result.get("body") or ""
    return base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()


def result_json(result: Mapping[str, Any]) -> Any:
    try:
        return json.loads(result_body(result))
    except ValueError:
        raise AssertionError(f"not JSON: {result!r:.500}") from None
