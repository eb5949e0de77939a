"""The plugin system (teledrop/plugins/manager.py, docs/plugins.md): a fresh manager per
app, ``[plugins] disabled`` blocks entry-point plugins but never the essential chain,
plugin mistakes stop start-up with a one-line ConfigError, and a third-party plugin is
loaded through nothing but its entry point, listed with its distribution by
``describe_plugins`` and ``teledrop plugins``, and has its hooks called."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

from teledrop import composition, hookimpl
from teledrop.cli import main
from teledrop.core.config import Config, load_config
from teledrop.core.errors import ConfigError, StartupError, Unauthorized
from teledrop.plugins.manager import (
    ENTRY_POINTS_ENV, ESSENTIAL, PluginInfo, blocked_names, describe_plugins, make_plugin_manager,
    selected_entry_points,
)
from teledrop.web import create_app
from teledrop.web.app import service_of
from tests.http_helpers import put_file
from tests.live_server import REPO, live_server
from tests.plugins.faults import CreatedLog
from tests.plugins.memory import MemoryPlugin
from tests.support.entry_points import also_load, write_dist_info

DEFAULT_PLUGINS = {"commit_chain", "default_auth", "default_hasher", "default_slug",
                   "local_storage", "sqlite_meta"}


@pytest.fixture
def disabling(make_app: Callable[..., Flask]) -> Callable[..., Flask]:
    """``disabling(names, **sections)``: an app with ``[plugins] disabled = names``."""
    return lambda names, **sections: make_app(plugins_section={"disabled": names}, **sections)


def plugins_of(app: Flask) -> dict[str, PluginInfo]:
    return {info.name: info for info in describe_plugins(service_of(app).pm)}


def start_error(make_app: Callable[..., Flask], *plugins: object, **sections: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        make_app(plugins=list(plugins), **sections)
    assert "\n" not in str(info.value)
    return info.value


def upload(app: Flask, **headers: str) -> Any:
    return put_file(app.test_client(), "/a.txt", b"abc", headers=headers)


# --- the manager ---------------------------------------------------------------------

def test_default_plugins_come_from_entry_points(app: Flask) -> None:
    plugins = plugins_of(app)
    assert set(plugins) == DEFAULT_PLUGINS
    for name in DEFAULT_PLUGINS - ESSENTIAL:
        assert plugins[name].source.endswith("(entry point)"), plugins[name]
    assert plugins["default_auth"].source.startswith("teledrop ")
    assert plugins["local_storage"].source.startswith("teledrop-local-storage ")
    assert plugins["sqlite_meta"].source.startswith("teledrop-sqlite-meta ")
    assert plugins["commit_chain"].source.endswith("(registered by teledrop)")
    assert plugins["commit_chain"].hooks == ("teledrop_commit_drop",)
    assert plugins["default_slug"].hooks == ("teledrop_check_slug", "teledrop_generate_slug")


def test_each_app_gets_its_own_manager(make_app: Callable[..., Flask]) -> None:
    log = CreatedLog()
    with_log, without = make_app(plugins=[log]), make_app()
    assert service_of(with_log).pm is not service_of(without).pm
    assert log.teledrop_plugin_name in plugins_of(with_log)
    assert log.teledrop_plugin_name not in plugins_of(without)
    assert upload(without).status_code == 201
    assert log.seen == []
    assert upload(with_log).status_code == 201
    assert len(log.seen) == 1
    # Each app's chain writes to its own metadata store.
    assert service_of(with_log).pm.get_plugin("commit_chain") is not \
        service_of(without).pm.get_plugin("commit_chain")


def test_managers_share_nothing() -> None:
    first, second = make_plugin_manager(), make_plugin_manager()
    first.register(CreatedLog(), name="only-in-first")
    assert first.get_plugin("only-in-first") is not None
    assert second.get_plugin("only-in-first") is None


def test_only_named_entry_points_are_loaded(myplug: Path) -> None:
    pm = make_plugin_manager(only=["default_hasher", "myplug"])
    assert {name for name, _ in pm.list_name_plugin()} == {"default_hasher", "myplug"}


def test_without_a_selection_every_installed_entry_point_is_loaded(
        myplug: Path, monkeypatch: pytest.MonkeyPatch, make_app: Callable[..., Flask]) -> None:
    monkeypatch.delenv(ENTRY_POINTS_ENV)
    assert selected_entry_points() is None
    assert "myplug" in {name for name, _ in make_plugin_manager().list_name_plugin()}
    assert "myplug" in plugins_of(make_app())


def test_the_environment_selects_entry_points(myplug: Path, monkeypatch: pytest.MonkeyPatch,
                                              make_app: Callable[..., Flask]) -> None:
    monkeypatch.setenv(ENTRY_POINTS_ENV, " default_auth, ,myplug")
    assert selected_entry_points() == {"default_auth", "myplug"}
    monkeypatch.setenv(ENTRY_POINTS_ENV, ",".join(sorted(DEFAULT_PLUGINS - ESSENTIAL)))
    assert set(plugins_of(make_app())) == DEFAULT_PLUGINS


def test_an_explicit_selection_wins_over_the_environment(
        myplug: Path, make_config: Callable[..., Config]) -> None:
    app = create_app(make_config(), entry_points=sorted(DEFAULT_PLUGINS - ESSENTIAL))
    try:
        assert set(plugins_of(app)) == DEFAULT_PLUGINS
    finally:
        service_of(app).close()


@pytest.mark.entry_points("marked")
def test_a_test_marked_with_entry_points_loads_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    make_app: Callable[..., Flask]) -> None:
    (tmp_path / "marked_module.py").write_text("")
    write_dist_info(tmp_path, "marked", {"marked": "marked_module"})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "marked_module", raising=False)
    importlib.invalidate_caches()
    assert "marked" in plugins_of(make_app())


def test_a_selected_entry_point_that_is_not_installed_stops_start_up() -> None:
    with pytest.raises(ConfigError) as info:
        make_plugin_manager(only=["default_hasher", "no_such_plugin"])
    assert info.value.key == "no_such_plugin"
    assert "not installed" in str(info.value) and "default_hasher" in str(info.value)
    assert "\n" not in str(info.value)


def test_disabling_default_auth_stops_token_checks(make_app: Callable[..., Flask],
                                                   disabling: Callable[..., Flask]) -> None:
    tokens = {"upload_tokens": ["s3cret"]}
    guarded = make_app(auth=tokens)
    refused = upload(guarded)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert upload(guarded, Authorization="Bearer s3cret").status_code == 201

    open_app = disabling(["default_auth"], auth=tokens)
    assert "default_auth" not in plugins_of(open_app)
    assert blocked_names(service_of(open_app).pm) == ["default_auth"]
    assert upload(open_app).status_code == 201


def test_disabling_the_commit_chain_is_refused(disabling: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigError) as info:
        disabling(["default_auth", "commit_chain"])
    err = info.value
    assert err.key == "plugins.disabled"
    assert "commit_chain" in str(err) and "essential" in str(err)


def test_disabling_the_chain_from_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[plugins]\ndisabled = ["commit_chain"]\n')
    with pytest.raises(ConfigError) as info:
        composition.start(load_config(str(path), environ={}))
    assert str(info.value).startswith(f"{path}: plugins.disabled: ")


class MisspeltHook:
    teledrop_plugin_name = "misspelt"

    @hookimpl
    def teledrop_drop_creatd(self, drop: Any) -> None:
        pass


class WrongArgument:
    teledrop_plugin_name = "wrong-argument"

    @hookimpl
    def teledrop_drop_created(self, dropp: Any) -> None:
        pass


def test_misspelt_hook_stops_start_up(make_app: Callable[..., Flask]) -> None:
    err = start_error(make_app, MisspeltHook())
    assert "teledrop_drop_creatd" in str(err)
    assert "misspelt" in str(err)


def test_hook_with_unknown_argument_stops_start_up(make_app: Callable[..., Flask]) -> None:
    # create_app promises a one-line StartupError when plugins are wrong.
    with pytest.raises(StartupError) as info:
        make_app(plugins=[WrongArgument()])
    assert "dropp" in str(info.value) and "\n" not in str(info.value)


class OffersLocalStorage:
    teledrop_plugin_name = "impostor"

    @hookimpl
    def teledrop_storage_backends(self) -> dict[str, Any]:
        return {"local_storage": lambda settings, config: None}


class OffersSqliteMeta:
    teledrop_plugin_name = "impostor-meta"

    @hookimpl
    def teledrop_metadata_backends(self) -> dict[str, Any]:
        return {"sqlite_meta": lambda settings, config: None}


class DeclaresLocalStorageSettings:
    teledrop_plugin_name = "impostor-settings"

    @hookimpl
    def teledrop_config_schema(self) -> dict[str, type]:
        return {"local_storage": dict}


@pytest.mark.parametrize(("plugin", "name"), [
    (OffersLocalStorage(), "local_storage"),
    (OffersSqliteMeta(), "sqlite_meta"),
    (DeclaresLocalStorageSettings(), "local_storage"),
])
def test_name_offered_twice_stops_start_up(make_app: Callable[..., Flask], plugin: object,
                                           name: str) -> None:
    err = start_error(make_app, plugin)
    assert name in str(err) and "two plugins" in str(err)


@pytest.mark.parametrize(("sections", "key", "expected"), [
    ({"storage": {"plugin": "s3"}}, "storage.plugin",
     "storage plugin 's3' is not installed (available: local_storage)"),
    ({"metadata": {"plugin": "postgres"}}, "metadata.plugin",
     "metadata plugin 'postgres' is not installed (available: sqlite_meta)"),
])
def test_unknown_backend_names_the_available_ones(make_app: Callable[..., Flask],
                                                  sections: dict[str, Any], key: str,
                                                  expected: str) -> None:
    err = start_error(make_app, **sections)
    assert err.key == key
    assert expected in str(err)


def test_available_backends_include_plugin_ones(make_app: Callable[..., Flask]) -> None:
    err = start_error(make_app, MemoryPlugin(), storage={"plugin": "nfs"})
    assert "(available: local_storage, memory)" in str(err)


def test_disabled_storage_plugin_is_not_available(disabling: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigError) as info:
        disabling(["local_storage"])
    err = info.value
    assert "storage plugin 'local_storage' is not installed (available: none)" in str(err)


class FailingFactory:
    teledrop_plugin_name = "failing-factory"

    @hookimpl
    def teledrop_storage_backends(self) -> dict[str, Any]:
        def factory(settings: Any, config: Any) -> Any:
            raise OSError("bucket unreachable")

        return {"flaky": factory}


def test_backend_that_fails_to_start_is_a_config_error(make_app: Callable[..., Flask]) -> None:
    err = start_error(make_app, FailingFactory(), storage={"plugin": "flaky"})
    assert err.key == "storage.plugin"
    assert "'flaky' failed to start: bucket unreachable" in str(err)


# --- a third-party plugin, installed only as a distribution with an entry point ---------

MYPLUG = '''
from pathlib import Path

from teledrop import hookimpl
from teledrop.core.errors import Unauthorized

EVENTS = Path({events!r})


@hookimpl
def teledrop_drop_created(drop):
    with EVENTS.open("a") as f:
        f.write(drop.slug + "\\n")


@hookimpl
def teledrop_authorize_upload(request):
    if request.headers.get("X-Myplug") == "refuse":
        raise Unauthorized("myplug refuses")
'''


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """``install(dist, entry_name, module, source)``: a distribution on sys.path with one
    ``teledrop`` entry point, as ``pip install`` would leave it."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules: list[str] = []

    def make(dist: str, entry_name: str, module: str, source: str) -> None:
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        write_dist_info(site, dist, {entry_name: module})
        also_load(monkeypatch, entry_name)
        modules.append(module)
        importlib.invalidate_caches()

    yield make
    for module in modules:
        sys.modules.pop(module, None)


@pytest.fixture
def myplug(install: Callable[..., None], tmp_path: Path) -> Path:
    """The ``myplug`` distribution installed; returns the file its event hook appends to."""
    events = tmp_path / "events.log"
    install("myplug", "myplug", "myplug_module", MYPLUG.format(events=str(events)))
    return events


def test_third_party_plugin_is_loaded_from_its_entry_point(myplug: Path,
                                                           make_app: Callable[..., Flask]) -> None:
    info = plugins_of(make_app())["myplug"]
    assert info.source == "myplug 0.1 (entry point)"
    assert info.hooks == ("teledrop_authorize_upload", "teledrop_drop_created")


def test_third_party_event_hook_is_called(myplug: Path, make_app: Callable[..., Flask]) -> None:
    response = upload(make_app())
    assert response.status_code == 201
    slug = response.headers["Location"].lstrip("/")
    assert myplug.read_text() == f"{slug}\n"


def test_third_party_auth_hook_can_refuse(myplug: Path, make_app: Callable[..., Flask],
                                          data_dir: Path) -> None:
    app = make_app()
    response = upload(app, **{"X-Myplug": "refuse", "Accept": "application/json"})
    assert response.status_code == Unauthorized.status
    assert response.get_json()["error"]["message"] == "myplug refuses"
    assert service_of(app).metadata.blob_ids() == set()
    assert [p for p in (data_dir / "files").rglob("*") if p.is_file()] == []
    assert not myplug.exists()


def test_third_party_plugin_can_be_disabled(myplug: Path,
                                            disabling: Callable[..., Flask]) -> None:
    app = disabling(["myplug"])
    assert "myplug" not in plugins_of(app)
    assert upload(app, **{"X-Myplug": "refuse"}).status_code == 201
    assert not myplug.exists()


def test_third_party_plugin_with_misspelt_hook_stops_start_up(
        install: Callable[..., None], make_app: Callable[..., Flask]) -> None:
    install("typoplug", "typoplug", "typoplug_module", """
        from teledrop import composition, hookimpl

        @hookimpl
        def teledrop_drop_creatd(drop):
            pass
    """)
    err = start_error(make_app)
    assert "typoplug" in str(err) and "teledrop_drop_creatd" in str(err)


def test_third_party_plugin_with_wrong_argument_stops_start_up(
        install: Callable[..., None], make_app: Callable[..., Flask]) -> None:
    install("argplug", "argplug", "argplug_module", """
        from teledrop import composition, hookimpl

        @hookimpl
        def teledrop_drop_created(slug):
            pass
    """)
    err = start_error(make_app)
    assert "argplug" in str(err) and "slug" in str(err)


def test_third_party_plugin_that_fails_to_import_is_named(
        install: Callable[..., None], make_app: Callable[..., Flask]) -> None:
    install("brokenplug", "brokenplug", "brokenplug_module", """
        raise RuntimeError("missing licence key")
    """)
    err = start_error(make_app)
    assert "missing licence key" in str(err)
    assert "brokenplug" in str(err)


def cli_plugins(tmp_path: Path, data_dir: Path, extra: str = "") -> dict[str, list[str]]:
    """``teledrop plugins`` output as ``{"name  [source]": [hooks]}``."""
    config = tmp_path / "cli.toml"
    config.write_text(f'[plugins.local_storage]\nroot = "{data_dir}/files"\n'
                      f'[plugins.sqlite_meta]\npath = "{data_dir}/t.db"\n' + extra)
    result = CliRunner().invoke(main, ["plugins", "--config", str(config)])
    assert result.exit_code == 0, result.output
    listing: dict[str, list[str]] = {}
    last = ""  # the plugin line the indented hook lines below it belong to
    for line in result.output.splitlines():
        if line.startswith("    "):
            listing[last].append(line.strip())
        else:
            last = line
            listing[last] = []
    return listing


def test_cli_lists_third_party_plugin_with_its_hooks(myplug: Path, tmp_path: Path,
                                                     data_dir: Path) -> None:
    listing = cli_plugins(tmp_path, data_dir)
    assert listing["myplug  [myplug 0.1 (entry point)]"] == [
        "teledrop_authorize_upload", "teledrop_drop_created"]
    names = {entry.split("  ")[0] for entry in listing}
    assert names == DEFAULT_PLUGINS | {"myplug"}


def test_cli_lists_disabled_plugins(myplug: Path, tmp_path: Path, data_dir: Path) -> None:
    listing = cli_plugins(tmp_path, data_dir, '[plugins]\ndisabled = ["myplug", "default_auth"]\n')
    assert listing["myplug  [disabled]"] == []
    assert listing["default_auth  [disabled]"] == []
    assert not any(entry.startswith("myplug  [myplug") for entry in listing)


def test_cli_reports_plugin_errors_in_one_line(tmp_path: Path, data_dir: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[storage]\nplugin = "s3"\n'
                      f'[plugins.local_storage]\nroot = "{data_dir}/files"\n'
                      f'[plugins.sqlite_meta]\npath = "{data_dir}/t.db"\n')
    result = CliRunner().invoke(main, ["plugins", "--config", str(config)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    (line,) = [line for line in result.output.splitlines() if line.strip()]
    assert "available: local_storage" in line and str(config) in line


@pytest.mark.gunicorn
def test_a_live_server_loads_the_entry_points_it_is_given(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "refuser_module.py").write_text(textwrap.dedent("""
        from teledrop import hookimpl
        from teledrop.core.errors import Unauthorized

        @hookimpl
        def teledrop_authorize_upload(request):
            raise Unauthorized("refuser refuses")
    """))
    write_dist_info(site, "refuser", {"refuser": "refuser_module"})
    env = {"PYTHONPATH": f"{site}:{REPO}"}
    (tmp_path / "plain").mkdir()
    (tmp_path / "named").mkdir()
    with live_server(tmp_path / "plain", env=env, server={"workers": 1}) as server:
        assert server.request("PUT", "/a.txt", data=b"a").status_code == 201
    with live_server(tmp_path / "named", env=env, entry_points=("refuser",),
                     server={"workers": 1}) as server:
        refused = server.request("PUT", "/a.txt", data=b"a")
        assert refused.status_code == 401 and "refuser refuses" in refused.text
        assert "refuser  [refuser 0.1 (entry point)]" in server.cli("plugins").stdout
