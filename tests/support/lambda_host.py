"""The Lambda host in-process, in tests: its environment on the test's bucket and database,
hosts started as a cold start would be (with an owner token), requests as events, and
what their results carry."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from teledrop.core.errors import TokenExists
from teledrop.core.interfaces import TokenRecord
from teledrop.core.tokens import hash_token
from teledrop.hosts import aws_lambda
from teledrop.hosts.aws_lambda import LambdaHost
from tests.lambda_events import event
from tests.services.seaweedfs import S3Endpoint

#: The owner token every host made by :func:`make_host` knows.
OWNER_TOKEN = "lambda-owner-token"


@pytest.fixture
def lambda_env(tmp_path: Path, s3_server: S3Endpoint, s3_bucket: str,
               postgres_dsn: str) -> dict[str, str]:
    """The environment of a function on this test's bucket and database: the backends in
    the file ``TELEDROP_CONFIG`` names, their settings in ``TELEDROP_*`` variables."""
    path = tmp_path / "teledrop.toml"
    path.write_text('[storage]\nplugin = "s3_storage"\n[metadata]\nplugin = "postgres_meta"\n')
    env = {"TELEDROP_CONFIG": str(path), "TELEDROP_PLUGINS__POSTGRES_META__DSN": postgres_dsn}
    settings = s3_server.storage_settings(s3_bucket, part_size="5MiB")
    env.update({f"TELEDROP_PLUGINS__S3_STORAGE__{key.upper()}": str(value)
                for key, value in settings.items()})
    return env


@pytest.fixture
def make_host(lambda_env: dict[str, str]) -> Iterator[Callable[..., LambdaHost]]:
    """``make_host(plugins=(), **env)``: a host started as a cold start would be."""
    hosts: list[LambdaHost] = []

    def make(plugins: tuple[object, ...] = (), **env: str) -> LambdaHost:
        host = LambdaHost(aws_lambda.start({**lambda_env, **env}, plugins))
        hosts.append(host)
        try:  # an owner, as `teledrop token add` makes one
            host.service.metadata.add_token(TokenRecord("owner", hash_token(OWNER_TOKEN), 0))
        except TokenExists:
            pass
        return host

    yield make
    for host in hosts:
        host.service.close()


def body_of(result: dict[str, Any]) -> bytes:
    body = result.get("body", "")
    return base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()


def put(host: LambdaHost, data: bytes, name: str = "report.bin", query: str = "",
        **headers: str) -> dict[str, Any]:
    result = host(event("PUT", f"/{name}", query, headers, data))
    assert result["statusCode"] == 201, body_of(result)
    return result


def slug_of(result: dict[str, Any]) -> str:
    return result["headers"]["Location"].rsplit("/", 1)[1]


def follow(result: dict[str, Any]) -> requests.Response:
    """The presigned GET a 302 points to, fetched from the bucket."""
    assert result["statusCode"] == 302, body_of(result)
    response = requests.get(result["headers"]["Location"], timeout=30)
    assert response.status_code == 200, response.text
    return response
