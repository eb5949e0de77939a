"""The example plugin in examples/teledrop_webhook works as its README and docs/plugins.md
promise: found through the entry point its pyproject declares, it POSTs one signed JSON
event per created or deleted drop to a receiver on 127.0.0.1, never sends the delete token,
never holds an upload for longer than its timeout nor fails it when the receiver is down,
slow or answers badly, and bad settings stop start-up naming ``plugins.webhook.<key>``."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import logging
import os
import socket
import threading
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import blake3
import pytest
from click.testing import CliRunner
from flask import Flask

from teledrop.cli import main
from teledrop.core import gc
from teledrop.core.errors import ConfigError
from teledrop.plugins.manager import describe_plugins
from teledrop.web.app import service_of
from tests.http_helpers import put_json
from tests.support.entry_points import also_load, write_dist_info
from tests.support.examples import example_module

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "teledrop_webhook"
MODULE = "teledrop_webhook"
SECRET = "correct horse battery staple"
PAYLOAD = b"webhook payload \x00\xff" * 100


# --- a receiver on 127.0.0.1 -----------------------------------------------------------

@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every POST before answering, so an event sent synchronously is recorded by
    the time the request that caused it has its response."""

    server: ThreadingHTTPServer
    deliveries: list[Delivery] = field(default_factory=list)
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/hook") -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"


def handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.deliveries.append(Delivery(self.path, dict(self.headers.items()), body))
            if receiver.delay:
                receiver.release.wait(receiver.delay)
            self.send_response(receiver.status)
            for name, value in receiver.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver(ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler))
    receiver.server.RequestHandlerClass = handler_for(receiver)
    # A short poll keeps shutdown() quick.
    thread = threading.Thread(target=receiver.server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield receiver
    receiver.release.set()  # a slow answer still pending ends now
    receiver.server.shutdown()
    receiver.server.server_close()
    thread.join()


@pytest.fixture
def closed_url() -> str:
    """A URL on which nothing listens: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # urllib honours proxy variables; the receiver is on loopback and must be reached directly.
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


# --- loading the example ---------------------------------------------------------------

@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The example's package, importable from its source tree."""
    yield from example_module(monkeypatch, EXAMPLE.name, MODULE)


@pytest.fixture
def installed(webhook: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The example as ``pip install`` would leave it: a dist-info whose entry points are the
    ones its pyproject.toml declares. Returns the distribution's name."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    name, version = project["name"], project["version"]
    site = tmp_path / "site"
    entries = project["entry-points"]["teledrop"]
    write_dist_info(site, name, entries, version)
    also_load(monkeypatch, *entries)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return f"{name} {version}"


@pytest.fixture
def start(make_app: Callable[..., Flask]) -> Callable[..., Flask]:
    """``start(settings, plugins=[...], **sections)``: an app with ``[plugins.webhook] =
    settings``."""
    def make(settings: dict[str, Any] | None = None, plugins: list[object] | None = None,
             disabled: list[str] | None = None, **sections: Any) -> Flask:
        table: dict[str, Any] = {"disabled": disabled or []}
        if settings is not None:
            table["webhook"] = settings
        return make_app(plugins or [], plugins_section=table, **sections)

    return make


@pytest.fixture
def registered(start: Callable[..., Flask], webhook: ModuleType) -> Callable[..., Flask]:
    """``registered(settings, **sections)``: an app with the module passed to create_app."""
    return lambda settings=None, **sections: start(settings, [webhook], **sections)


def upload(app: Flask, **query: str) -> Any:
    response = put_json(app.test_client(), PAYLOAD, "/report.bin", **query)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response


def expected_signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def drop_as_api_shows_it(app: Flask, slug: str) -> dict[str, Any]:
    response = app.test_client().get(f"/api/drops/{slug}")
    assert response.status_code == 200
    return response.get_json()


# --- loading ---------------------------------------------------------------------------

def test_found_through_the_entry_point_its_pyproject_declares(
        installed: str, start: Callable[..., Flask], receiver: Receiver) -> None:
    app = start({"url": receiver.url()})
    info = {i.name: i for i in describe_plugins(service_of(app).pm)}["webhook"]
    assert info.source == f"{installed} (entry point)"
    assert info.hooks == ("teledrop_config_schema", "teledrop_drop_created",
                          "teledrop_drop_deleted")
    slug = upload(app).get_json()["slug"]
    assert [d.json()["drop"]["slug"] for d in receiver.deliveries] == [slug]


def test_registered_module_has_the_entry_point_name(registered: Callable[..., Flask]) -> None:
    names = {i.name for i in describe_plugins(service_of(registered()).pm)}
    assert "webhook" in names and MODULE not in names


def test_disabled_plugin_sends_nothing(installed: str, start: Callable[..., Flask],
                                       receiver: Receiver) -> None:
    # Its table may stay in the config while it is disabled.
    app = start({"url": receiver.url()}, disabled=["webhook"])
    assert "webhook" not in {i.name for i in describe_plugins(service_of(app).pm)}
    upload(app)
    assert receiver.deliveries == []


def test_config_command_masks_the_secret(installed: str, tmp_path: Path, data_dir: Path,
                                         receiver: Receiver) -> None:
    config = tmp_path / "teledrop.toml"
    config.write_text(f'[plugins.webhook]\nurl = "{receiver.url()}"\nsecret = "{SECRET}"\n'
                      f'[plugins.local_storage]\nroot = "{data_dir}/files"\n'
                      f'[plugins.sqlite_meta]\npath = "{data_dir}/t.db"\n')
    result = CliRunner().invoke(main, ["config", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert f'url = "{receiver.url()}"  # {config}' in result.output
    assert f'secret = "****"  # {config}' in result.output
    assert "timeout = 2.0  # default" in result.output
    assert SECRET not in result.output


# --- events ----------------------------------------------------------------------------

def test_upload_posts_one_signed_created_event(registered: Callable[..., Flask],
                                               receiver: Receiver) -> None:
    app = registered({"url": receiver.url(), "secret": SECRET})
    response = upload(app)
    created = response.get_json()
    (delivery,) = receiver.deliveries
    assert delivery.path == "/hook"
    assert delivery.headers["Content-Type"] == "application/json"
    assert delivery.headers["X-Teledrop-Event"] == "created"
    assert hmac.compare_digest(delivery.headers["X-Teledrop-Signature"],
                               expected_signature(delivery.body))
    event = delivery.json()
    assert event["event"] == "created"
    assert event["drop"]["slug"] == created["slug"]
    assert event["drop"]["hash"] == created["hash"] == "blake3:" + blake3.blake3(PAYLOAD).hexdigest()
    assert event["drop"]["size"] == len(PAYLOAD)
    assert event["drop"]["filename"] == "report.bin"
    # Everything the API shows but the link, which only a request can tell without base_url.
    api = drop_as_api_shows_it(app, created["slug"])
    assert event["drop"] == {key: value for key, value in api.items() if key != "url"}


def test_the_delete_token_is_never_sent(registered: Callable[..., Flask],
                                        receiver: Receiver) -> None:
    app = registered({"url": receiver.url(), "secret": SECRET})
    response = upload(app)
    token = response.headers["X-Delete-Token"]
    assert response.get_json()["delete_token"] == token
    deleted = app.test_client().delete(f"/{response.get_json()['slug']}",
                                       headers={"X-Delete-Token": token})
    assert deleted.status_code == 204
    assert len(receiver.deliveries) == 2
    for delivery in receiver.deliveries:
        assert "delete_token" not in delivery.json()["drop"]
        assert token.encode() not in delivery.body
        assert token not in json.dumps(delivery.headers)


def test_delete_posts_a_deleted_event(registered: Callable[..., Flask],
                                      receiver: Receiver) -> None:
    app = registered({"url": receiver.url(), "secret": SECRET})
    response = upload(app)
    slug = response.get_json()["slug"]
    client = app.test_client()
    # A wrong token deletes nothing, so announces nothing.
    assert client.delete(f"/{slug}", headers={"X-Delete-Token": "wrong"}).status_code == 403
    assert len(receiver.deliveries) == 1
    assert client.delete(f"/{slug}", headers={
        "X-Delete-Token": response.headers["X-Delete-Token"]}).status_code == 204
    delivery = receiver.deliveries[1]
    assert delivery.headers["X-Teledrop-Event"] == "deleted"
    assert delivery.headers["X-Teledrop-Signature"] == expected_signature(delivery.body)
    event = delivery.json()
    assert (event["event"], event["reason"]) == ("deleted", "deleted")
    assert event["drop"]["slug"] == slug
    assert event["drop"]["size"] == len(PAYLOAD)


def test_gc_announces_expired_drops(registered: Callable[..., Flask], receiver: Receiver,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    app = registered({"url": receiver.url()})
    slug = upload(app, expires="60s").get_json()["slug"]
    later = gc.now() + 3600
    monkeypatch.setattr(gc, "now", lambda: later)
    removed = list(gc.collect(service_of(app)))
    assert [(r.kind, r.name) for r in removed] == [("drop", slug)]
    event = receiver.deliveries[-1].json()
    assert (event["event"], event["reason"], event["drop"]["slug"]) == ("deleted", "expired", slug)


def test_drop_url_comes_from_base_url(registered: Callable[..., Flask],
                                      receiver: Receiver) -> None:
    app = registered({"url": receiver.url()},
                     server={"base_url": "https://drop.example.com/d/"})
    slug = upload(app).get_json()["slug"]
    assert receiver.deliveries[0].json()["drop"]["url"] == f"https://drop.example.com/d/{slug}"


def test_without_secret_there_is_no_signature(registered: Callable[..., Flask],
                                              receiver: Receiver) -> None:
    upload(registered({"url": receiver.url()}))
    (delivery,) = receiver.deliveries
    assert "X-Teledrop-Signature" not in delivery.headers
    assert delivery.json()["event"] == "created"


def test_signature_helper_matches_hmac_sha256(webhook: ModuleType) -> None:
    body = b'{"event":"created"}'
    assert webhook.signature(SECRET, body) == expected_signature(body)
    assert webhook.signature("other", body) != expected_signature(body)


def test_empty_url_sends_nothing(registered: Callable[..., Flask], receiver: Receiver,
                                 caplog: pytest.LogCaptureFixture) -> None:
    app = registered()  # no [plugins.webhook] table at all
    response = upload(app)
    app.test_client().delete(f"/{response.get_json()['slug']}",
                             headers={"X-Delete-Token": response.headers["X-Delete-Token"]})
    assert receiver.deliveries == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


# --- a receiver that fails never fails the upload ---------------------------------------

def assert_one_warning(caplog: pytest.LogCaptureFixture, slug: str, origin: str) -> str:
    """The failure is logged once by the plugin (teledrop saw no exception) and shows the
    receiver's origin, never its path."""
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in warnings] == [MODULE], [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert slug in message and f"to {origin}:" in message and "/hook" not in message
    return message


def test_receiver_down_costs_a_warning_not_the_upload(
        registered: Callable[..., Flask], closed_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    app = registered({"url": closed_url, "timeout": 1})
    response = upload(app)
    slug = response.get_json()["slug"]
    assert app.test_client().get(f"/{slug}").data == PAYLOAD
    assert "refused" in assert_one_warning(caplog, slug, closed_url.rsplit("/", 1)[0]).lower()


def test_slow_receiver_holds_the_upload_no_longer_than_the_timeout(
        registered: Callable[..., Flask], receiver: Receiver,
        caplog: pytest.LogCaptureFixture) -> None:
    receiver.delay = 30
    app = registered({"url": receiver.url(), "timeout": 0.3})
    response = upload(app)  # answered although the receiver would take 30 s
    slug = response.get_json()["slug"]
    assert len(receiver.deliveries) == 1  # it arrived; the answer did not
    assert "timed out" in assert_one_warning(caplog, slug, receiver.url(""))
    assert app.test_client().get(f"/api/drops/{slug}").status_code == 200


@pytest.mark.parametrize(("status", "headers"), [
    (500, {}),
    (302, {"Location": "/elsewhere"}),
    (307, {"Location": "/elsewhere"}),
])
def test_error_or_redirect_is_logged_and_not_followed(
        registered: Callable[..., Flask], receiver: Receiver, status: int,
        headers: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    receiver.status, receiver.headers = status, headers
    app = registered({"url": receiver.url(), "secret": SECRET})
    slug = upload(app).get_json()["slug"]
    assert [d.path for d in receiver.deliveries] == ["/hook"]
    assert f"HTTP Error {status}" in assert_one_warning(caplog, slug, receiver.url(""))


# --- settings --------------------------------------------------------------------------

@pytest.mark.parametrize(("settings", "key", "problem"), [
    ({"url": "ftp://files.example.com/hook"}, "url", "got scheme 'ftp'"),
    ({"url": "hooks.example.com/hook"}, "url", "got scheme 'none'"),
    ({"url": "https:///hook"}, "url", "has no host"),
    ({"url": "http://127.0.0.1:99999/hook"}, "url", "not a valid URL"),
    ({"url": 42}, "url", "expected str"),
    ({"colour": "blue"}, "colour", "unknown key (known: secret, timeout, url)"),
    ({"timeout": 0}, "timeout", "more than 0"),
    ({"timeout": 60}, "timeout", "at most 10 seconds"),
    ({"timeout": "fast"}, "timeout", "expected float"),
])
def test_bad_settings_stop_start_up(registered: Callable[..., Flask],
                                    settings: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        registered(settings)
    assert info.value.key == f"plugins.webhook.{key}"
    assert problem in info.value.problem
    assert "\n" not in str(info.value)


def test_bad_url_from_a_file_names_the_file_not_the_secret_path(
        installed: str, tmp_path: Path) -> None:
    config = tmp_path / "teledrop.toml"
    config.write_text('[plugins.webhook]\nurl = "ftp://example.com/s3cret-path"\n')
    result = CliRunner().invoke(main, ["plugins", "--config", str(config)])
    assert result.exit_code != 0
    (line,) = [line for line in result.output.splitlines() if line.strip()]
    assert f"{config}: plugins.webhook.url: must be an http:// or https:// URL" in line
    assert "s3cret-path" not in line
