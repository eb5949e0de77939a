"""teledrop as a Lambda function in the tests: its environment and the client's side of
its HTTP answers (payload format 2.0 results).

A function is configured the way one is deployed: by environment variables alone, one
``TELEDROP_<SECTION>__<KEY>`` per setting (TOML-quoted, so a secret of digits stays a
string), with the suite's entry points plus the two backends a function may use.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from tests.live_server import _toml_value
from tests.services.seaweedfs import S3Endpoint
from tests.support.entry_points import entry_points_env

HANDLER = "teledrop.hosts.aws_lambda.handler"
BACKENDS = ("s3_storage", "postgres_meta")


def backend_sections(endpoint: S3Endpoint, bucket: str, dsn: str,
                     **storage: Any) -> dict[str, Any]:
    """The config tables that put a function on ``bucket`` and the database ``dsn``."""
    return {"storage": {"plugin": "s3_storage"}, "metadata": {"plugin": "postgres_meta"},
            "plugins": {"s3_storage": endpoint.storage_settings(bucket, **storage),
                        "postgres_meta": {"dsn": dsn, "max_connections": 2}}}


def function_env(sections: Mapping[str, Any], prefix: str = "TELEDROP") -> dict[str, str]:
    """``sections`` (nested config tables) as a function's environment variables."""
    env: dict[str, str] = {}
    for key, value in sections.items():
        name = f"{prefix}_{key.upper()}" if prefix == "TELEDROP" else f"{prefix}__{key.upper()}"
        if isinstance(value, Mapping):
            env.update(function_env(value, name))
        else:
            env[name] = _toml_value(value)
    if prefix == "TELEDROP":
        env.update(entry_points_env(*BACKENDS))
    return env


def result_body(result: Mapping[str, Any]) -> bytes:
    """The bytes of a function's result (base64 undone)."""
    body = result.get("body") or ""
    return base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()


def result_json(result: Mapping[str, Any]) -> Any:
    try:
        return json.loads(result_body(result))
    except ValueError:
        raise AssertionError(f"not JSON: {result!r:.500}") from None
