"""Shared fixtures: a fresh config, plugin manager and app per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import werkzeug.test
from flask import Flask

from teledrop.core.config import Config, load_config
from teledrop.core.service import Teledrop
from teledrop.web import create_app
from teledrop.plugins.manager import ENTRY_POINTS_ENV
from teledrop.web.app import service_of
from tests.live_server import merged
from tests.plugins.memory import MemoryPlugin
from tests.support.entry_points import also_load, entry_points_env

pytest_plugins = ["tests.services.postgres", "tests.services.seaweedfs", "tests.services.lambda_rie",
                  "tests.services.ministack"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "entry_points(*names): installed plugins this test "
                                       "loads besides the suite's own (tests/support/entry_points.py)")


@pytest.fixture(autouse=True, scope="session")
def suite_entry_points() -> Iterator[None]:
    """Every app the suite starts loads only the suite's entry points."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENTRY_POINTS_ENV, entry_points_env()[ENTRY_POINTS_ENV])
        yield


@pytest.fixture(autouse=True)
def rfc_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """werkzeug's test client makes a form's boundary from ``time()`` and ``random()``,
    and about one in a few hundred is longer than RFC 2046's 70 characters, which teledrop
    refuses (400): a random float of few digits keeps every boundary within the RFC."""
    monkeypatch.setattr(werkzeug.test, "random", lambda: 0.5)


@pytest.fixture(autouse=True)
def marked_entry_points(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    names = [name for mark in request.node.iter_markers("entry_points") for name in mark.args]
    if names:
        also_load(monkeypatch, *names)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def make_config(tmp_path: Path, data_dir: Path) -> Callable[..., Config]:
    """``make_config(limits={"max_upload_size": "1MiB"}, ...)``: defaults, with storage and
    metadata under this test's ``tmp_path``."""
    empty = tmp_path / "teledrop.toml"
    empty.write_text("")

    def make(**sections: Any) -> Config:
        base = {"plugins": {"local_storage": {"root": str(data_dir / "files")},
                            "sqlite_meta": {"path": str(data_dir / "teledrop.db")}}}
        return load_config(str(empty), environ={}, overrides=merged(base, sections))

    return make


@pytest.fixture
def make_app(make_config: Callable[..., Config]) -> Iterator[Callable[..., Flask]]:
    """``make_app(plugins=[...], **sections)``: a Flask app on the real default plugins
    (plus ``plugins``), configured by ``sections``; ``plugins_section`` is the config's
    ``[plugins]`` table (``plugins`` being taken by the plugin objects), and ``config`` a
    whole config instead (``make_app(config=make_config(plugins={...}))``)."""
    apps: list[Flask] = []

    def make(plugins: tuple[object, ...] | list[object] = (),
             plugins_section: dict[str, Any] | None = None, config: Config | None = None,
             **sections: Any) -> Flask:
        if plugins_section is not None:
            sections["plugins"] = plugins_section
        app = create_app(config or make_config(**sections), plugins)
        app.testing = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        service_of(app).close()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


@pytest.fixture
def service(app: Flask) -> Teledrop:
    return service_of(app)


@pytest.fixture
def memory() -> MemoryPlugin:
    return MemoryPlugin()


@pytest.fixture
def memory_app(make_app: Callable[..., Flask], memory: MemoryPlugin) -> Flask:
    """An app on in-memory backends (``memory.storage``, ``memory.metadata``)."""
    return make_app(plugins=[memory], storage={"plugin": "memory"}, metadata={"plugin": "memory"})
