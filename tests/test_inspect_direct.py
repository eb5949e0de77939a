"""Direct uploads feed the inspection hook too: the completion's one read of the object
goes through the plugins' inspectors as it is hashed, their ``finish()`` runs before the
commit, and a refusal (on the bytes, at the finish, on the name) aborts the upload and
leaves nothing in the bucket nor a record. Against a real S3 server (SeaweedFS)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from teledrop.core.errors import UnsupportedMediaType
from teledrop.web.app import service_of
from tests.http_helpers import assert_json_error, blake3_hash, records
from tests.plugins.inspectors import Inspect
from tests.services.seaweedfs import S3Endpoint
from tests.support.direct import (  # noqa: F401 (direct_app is a fixture)
    PART,
    bucket_state,
    complete,
    create,
    direct_app,
    pattern,
    put_parts,
)

pytestmark = pytest.mark.entry_points("s3_storage")
PATTERN = b"REFUSE-ME"


@pytest.fixture
def inspect() -> Inspect:
    return Inspect(refuse_pattern=PATTERN)


@pytest.fixture
def app(direct_app: Callable[..., Flask], inspect: Inspect) -> Flask:  # noqa: F811
    app = direct_app([inspect])
    inspect.service = service_of(app)
    return app


def send(app: Flask, data: bytes, filename: str = "big.bin") -> object:
    created = create(app, len(data), filename=filename)
    assert created.status_code == 201, created.data
    upload = created.json
    return complete(app, upload["id"], put_parts(upload, data))


def test_the_completion_feeds_the_inspectors_every_byte(app: Flask, inspect: Inspect) -> None:
    data = pattern(PART + 4321)
    done = send(app, data)
    assert done.status_code == 201, done.data
    (seen,) = inspect.opened
    assert seen.data == data and seen.views
    assert (seen.finished, seen.closed) == (1, 1) and seen.committed_at_finish is False
    assert (seen.filename, seen.content_type) == ("big.bin", "application/x-test")
    assert [d.hash for d in records(app)] == [blake3_hash(data)]


def test_a_refused_object_leaves_nothing(app: Flask, inspect: Inspect, s3_server: S3Endpoint,
                                         s3_bucket: str) -> None:
    data = pattern(PART) + PATTERN + pattern(1000)  # in the second part
    assert assert_json_error(send(app, data), 422, "content_refused") == "found REFUSE-ME"
    assert inspect.opened[0].closed == 1
    assert bucket_state(s3_server, s3_bucket) == (set(), [])
    assert records(app) == [] and service_of(app).metadata.blob_ids() == set()


def test_a_refusal_on_the_name_aborts_the_upload(app: Flask, inspect: Inspect,
                                                 s3_server: S3Endpoint, s3_bucket: str) -> None:
    inspect.fail_open = UnsupportedMediaType("no executables")
    assert assert_json_error(send(app, pattern(1000), "setup.exe"), 415) == "no executables"
    assert bucket_state(s3_server, s3_bucket) == (set(), [])
    assert service_of(app).metadata.blob_ids() == set()
