"""The example plugin in examples/teledrop_clamav against a real clamd (started by the
session, on its own socket and port, with a signature database made by sigtool): found
through the entry point its pyproject declares, it refuses the EICAR pattern wherever it
lies in a file (across the reads' edges too) with 422 and the signature's name, by every
upload path, passes clean files, keeps nothing of a refused one, and answers 503, never a
silent pass, when clamd is down, silent or refuses the stream's size."""

from __future__ import annotations

import base64
import importlib
import socket
import threading
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from teledrop.core.errors import ConfigError
from teledrop.hosts import body as body_module
from teledrop.hosts.body import READ_SIZE
from teledrop.plugins.manager import describe_plugins
from teledrop.web.app import service_of
from tests.http_helpers import JSON, MULTIPART, assert_json_error, assert_nothing_stored, \
    blake3_hash, file_part, multipart_body, post_file, put_file, records
from tests.services.clamd import EICAR, FOUND_AS, STREAM_MAX, Clamd, clamd  # noqa: F401
from tests.support.entry_points import also_load, write_dist_info
from tests.support.examples import example_module

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "teledrop_clamav"
MODULE = "teledrop_clamav"
TUS = {"Tus-Resumable": "1.0.0"}
#: A file of several reads.
CLEAN = bytes(range(256)) * (3 * READ_SIZE // 256)
#: The pattern across the edge of the first two reads of a body.
EDGE = READ_SIZE - 20
INFECTED = CLEAN[:EDGE] + EICAR + CLEAN[EDGE:]


@pytest.fixture
def clamav(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The example's package, importable from its source tree."""
    yield from example_module(monkeypatch, EXAMPLE.name, MODULE)


@pytest.fixture
def start(make_app: Callable[..., Flask], clamav: ModuleType) -> Callable[..., Flask]:
    """``start(settings)``: an app with the module registered and ``[plugins.clamav] =
    settings``."""
    return lambda settings: make_app([clamav], plugins_section={"clamav": settings})


@pytest.fixture
def app(start: Callable[..., Flask], clamd: Clamd) -> Flask:  # noqa: F811
    return start({"socket": str(clamd.socket)})


def post(app: Flask, data: bytes) -> TestResponse:
    return post_file(app.test_client(), data, "a.bin", headers=JSON)


def put(app: Flask, data: bytes) -> TestResponse:
    return put_file(app.test_client(), "/a.bin", data, headers=JSON)


def tus(app: Flask, data: bytes, pieces: int = 1) -> TestResponse:
    client = app.test_client()
    meta = "filename " + base64.b64encode(b"a.bin").decode()
    url = client.post("/api/uploads", headers={**TUS, "Upload-Length": str(len(data)),
                                               "Upload-Metadata": meta}).headers["Location"]
    step = max(1, -(-len(data) // pieces))
    response = None
    for offset in range(0, max(len(data), 1), step):
        response = client.patch(url, data=data[offset:offset + step], headers={
            **TUS, **JSON, "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset)})
        if response.status_code != 204:
            break
    assert response is not None
    return response


def tus_in_pieces(app: Flask, data: bytes) -> TestResponse:
    return tus(app, data, pieces=3)


UPLOADS = {"multipart": post, "put": put, "tus": tus, "tus-3-patches": tus_in_pieces}


def test_found_through_the_entry_point_its_pyproject_declares(
        clamav: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        make_app: Callable[..., Flask], clamd: Clamd) -> None:  # noqa: F811
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    assert project["name"] == "teledrop-clamav"
    entries = project["entry-points"]["teledrop"]
    assert entries == {"clamav": MODULE}
    write_dist_info(tmp_path / "site", project["name"], entries, project["version"])
    also_load(monkeypatch, *entries)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    app = make_app(plugins_section={"clamav": {"socket": str(clamd.socket)}})
    info = {i.name: i for i in describe_plugins(service_of(app).pm)}["clamav"]
    assert info.source == f"teledrop-clamav {project['version']} (entry point)"
    assert info.hooks == ("teledrop_config_schema", "teledrop_inspect_upload")
    assert assert_json_error(put(app, INFECTED), 422, "infected").endswith(FOUND_AS)


@pytest.mark.parametrize("send", UPLOADS.values(), ids=UPLOADS.keys())
def test_an_infected_file_is_refused_with_its_signature_and_leaves_nothing(
        app: Flask, data_dir: Path, send: Callable[..., TestResponse],
        caplog: pytest.LogCaptureFixture) -> None:
    message = assert_json_error(send(app, INFECTED), 422, "infected")
    assert message == f"the file is infected: {FOUND_AS}"
    assert_nothing_stored(app, data_dir)
    assert service_of(app).metadata.blob_ids() == set()
    assert f"clamav: refused 'a.bin': {FOUND_AS}" in caplog.text


@pytest.mark.parametrize("where", ["start", "end", "alone"])
def test_the_pattern_is_found_anywhere(app: Flask, where: str) -> None:
    data = {"start": EICAR + CLEAN, "end": CLEAN + EICAR, "alone": EICAR}[where]
    assert assert_json_error(put(app, data), 422, "infected").endswith(FOUND_AS)


@pytest.mark.parametrize("send", UPLOADS.values(), ids=UPLOADS.keys())
def test_a_clean_file_passes(app: Flask, send: Callable[..., TestResponse]) -> None:
    assert send(app, CLEAN).status_code in (201, 204)
    assert [d.hash for d in records(app)] == [blake3_hash(CLEAN)]


def test_an_empty_file_passes(app: Flask) -> None:
    assert put(app, b"").status_code == 201
    assert post(app, b"").status_code == 201


def test_a_chunk_of_no_bytes_mid_stream_does_not_end_the_scan(
        clamav: ModuleType, clamd: Clamd) -> None:  # noqa: F811
    """A chunk of length 0 is INSTREAM's end mark: sent on, clamd would stop reading there
    and call the rest of the file clean."""
    scan = clamav.ClamdScan(clamav.ClamavSettings(socket=str(clamd.socket)), "a.bin")
    try:
        scan.update(memoryview(CLEAN))
        scan.update(memoryview(b""))
        scan.update(memoryview(EICAR))
        with pytest.raises(clamav.Infected):
            scan.finish()
    finally:
        scan.close()


def test_a_read_that_ends_with_the_file_parts_headers_scans_the_whole_file(
        app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client can size what comes before the file so that a read ends right after its
    part's headers; the decoder's first piece of the file is then empty. The file behind
    it is scanned all the same."""
    body = multipart_body(file_part(EICAR, "a.bin"))
    monkeypatch.setattr(body_module, "READ_SIZE", body.index(EICAR))
    response = app.test_client().post("/", data=body, content_type=MULTIPART, headers=JSON)
    assert assert_json_error(response, 422, "infected").endswith(FOUND_AS)


def test_clamd_over_tcp(start: Callable[..., Flask], clamd: Clamd) -> None:  # noqa: F811
    app = start({"address": clamd.address, "socket": "/nonexistent"})
    assert post(app, CLEAN).status_code == 201
    assert assert_json_error(post(app, INFECTED), 422, "infected").endswith(FOUND_AS)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("settings", [
    {"socket": "/nonexistent/clamd.ctl"},
    {"address": f"127.0.0.1:{closed_port()}"},
], ids=["socket", "address"])
@pytest.mark.parametrize("send", UPLOADS.values(), ids=UPLOADS.keys())
def test_clamd_down_is_a_503_not_a_pass(start: Callable[..., Flask], data_dir: Path,
                                        settings: dict[str, str],
                                        send: Callable[..., TestResponse],
                                        caplog: pytest.LogCaptureFixture) -> None:
    app = start(settings)
    assert assert_json_error(send(app, CLEAN), 503, "scanner_unavailable") == \
        "the virus scanner is unavailable"
    assert_nothing_stored(app, data_dir)
    assert "clamav: clamd at" in caplog.text


@pytest.fixture
def silent_clamd(tmp_path: Path) -> Iterator[Path]:
    """A socket that accepts and reads but never answers."""
    path = tmp_path / "silent.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while not stop.is_set() and conn.recv(65536):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path
    stop.set()
    server.close()
    thread.join(5)


def test_a_silent_clamd_is_a_503_after_the_timeout(start: Callable[..., Flask],
                                                   silent_clamd: Path, data_dir: Path) -> None:
    app = start({"socket": str(silent_clamd), "timeout": "1s"})
    assert_json_error(put(app, CLEAN), 503, "scanner_unavailable")
    assert_nothing_stored(app, data_dir)


def test_a_file_past_clamds_stream_limit_is_refused(app: Flask, data_dir: Path) -> None:
    big = bytes(range(256)) * (STREAM_MAX // 256 + 4096)
    assert_json_error(put(app, big), 413, "too_large")
    assert_nothing_stored(app, data_dir)


@pytest.mark.parametrize(("settings", "key"), [
    ({"address": "clamd.example"}, "address"),
    ({"address": "clamd.example:99999"}, "address"),
    ({"socket": ""}, "socket"),
    ({"timeout": "0s"}, "timeout"),
])
def test_bad_settings_stop_start_up(start: Callable[..., Flask], settings: dict[str, Any],
                                    key: str) -> None:
    with pytest.raises(ConfigError) as info:
        start(settings)
    assert info.value.key == f"plugins.clamav.{key}"


def test_the_defaults(clamav: ModuleType) -> None:
    settings = clamav.ClamavSettings()
    assert (settings.socket, settings.address, settings.timeout) == \
        ("/run/clamav/clamd.ctl", "", 30)
