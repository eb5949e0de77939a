"""Configuration: every key has its documented default, a file names only what
it changes, ``TELEDROP_<SECTION>__<KEY>`` overrides any key with a TOML-typed value, and
every mistake is a ConfigError whose message is one line naming the source, the key and
the problem. Plugin tables are checked when the app starts and the plugins are known."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from teledrop import composition
from teledrop.core.config import Config, load_config
from teledrop.core.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
DAY = 86400


@pytest.fixture
def config_file(tmp_path: Path):
    """``config_file(text)``: a TOML file under tmp_path, returned as a str path."""

    def write(text: str, name: str = "teledrop.toml") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


def load(path: str | None = None, **environ: str) -> Config:
    return load_config(path, environ=environ)


def config_error(path: str | None = None, **environ: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(path, **environ)
    return info.value


def assert_one_line(err: Exception, *parts: str) -> None:
    message = str(err)
    assert "\n" not in message and "Traceback" not in message
    for part in parts:
        assert part in message, (part, message)


def sections(config: Config) -> dict[str, Any]:
    return {name: dataclasses.asdict(getattr(config, name))
            for name in ("server", "limits", "auth", "storage", "metadata", "plugins")}


DEFAULTS = {
    "server": {"bind": "127.0.0.1:8000", "workers": 2, "threads": 8, "base_url": "",
               "proxy_hops": 0, "log_level": "info", "metrics": True,
               "metrics_dir": ""},
    "limits": {"max_upload_size": 10 * 1024**3, "default_expires": 7 * DAY,
               "max_expires": 30 * DAY, "idle_timeout": 60, "min_free_space": 1024**3,
               "max_total_size": None, "resumable_expires": DAY},
    "auth": {"upload_tokens": [], "require_token": False},
    "storage": {"plugin": "local_storage"},
    "metadata": {"plugin": "sqlite_meta"},
    "plugins": {"disabled": []},
}


# --- defaults and files ---------------------------------------------------------------

def test_empty_file_gives_every_documented_default(config_file) -> None:
    config = load(config_file(""))
    assert sections(config) == DEFAULTS
    assert config.plugin_tables == {}


def test_no_file_at_all_gives_the_defaults(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no conf/teledrop.toml here
    config = load()
    assert config.path is None
    assert sections(config) == DEFAULTS


def test_shipped_config_file_is_the_documented_default(monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    config = load()
    assert config.path == "conf/teledrop.toml"
    assert sections(config) == DEFAULTS
    assert config.plugin_tables == {"local_storage": {"root": "data/files"},
                                     "sqlite_meta": {"path": "data/teledrop.db"}}


def test_plugin_defaults_resolve_relative_to_working_directory(tmp_path: Path,
                                                                monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    service = composition.start(load())
    try:
        assert service.plugin_settings["local_storage"].root == "data/files"
        assert service.plugin_settings["sqlite_meta"].path == "data/teledrop.db"
        assert (tmp_path / "data" / "files").is_dir()
        assert (tmp_path / "data" / "teledrop.db").is_file()
    finally:
        service.close()


def test_file_names_only_what_it_changes(config_file) -> None:
    config = load(config_file('[server]\nworkers = 4\n[limits]\nmax_upload_size = "1MiB"\n'))
    expected = {**DEFAULTS,
                "server": {**DEFAULTS["server"], "workers": 4},
                "limits": {**DEFAULTS["limits"], "max_upload_size": 1024**2}}
    assert sections(config) == expected


def test_teledrop_config_env_names_the_file(config_file) -> None:
    path = config_file('[server]\nbind = "0.0.0.0:80"\n')
    config = load(TELEDROP_CONFIG=path)
    assert config.path == path and config.server.bind == "0.0.0.0:80"


def test_explicit_path_wins_over_teledrop_config(config_file) -> None:
    chosen = config_file("[server]\nworkers = 3\n", "chosen.toml")
    other = config_file("[server]\nworkers = 5\n", "other.toml")
    assert load(chosen, TELEDROP_CONFIG=other).server.workers == 3


def test_sizes_accept_integers_and_units(config_file) -> None:
    assert load(config_file("[limits]\nmax_upload_size = 4096\n")).limits.max_upload_size == 4096
    assert load(config_file('[limits]\nmax_upload_size = "2 GB"\n')).limits.max_upload_size \
        == 2 * 1000**3


def test_free_space_and_total_size_limits_are_sizes_that_can_be_turned_off(config_file) -> None:
    limits = load(config_file('[limits]\nmin_free_space = "0"\nmax_total_size = "2GiB"\n')).limits
    assert (limits.min_free_space, limits.max_total_size) == (0, 2 * 1024**3)
    limits = load(config_file('[limits]\nmin_free_space = 4096\nmax_total_size = ""\n')).limits
    assert (limits.min_free_space, limits.max_total_size) == (4096, None)


# --- environment overrides ------------------------------------------------------------

def test_env_overrides_a_file_value(config_file) -> None:
    config = load(config_file("[server]\nworkers = 4\n"), TELEDROP_SERVER__WORKERS="8")
    assert config.server.workers == 8
    assert config.sources["server.workers"] == "env TELEDROP_SERVER__WORKERS"


@pytest.mark.parametrize(("name", "text", "section", "key", "value"), [
    ("TELEDROP_SERVER__WORKERS", "8", "server", "workers", 8),
    ("TELEDROP_SERVER__BIND", "127.0.0.1:9000", "server", "bind", "127.0.0.1:9000"),
    ("TELEDROP_SERVER__BASE_URL", "https://drop.example", "server", "base_url",
     "https://drop.example"),
    ("TELEDROP_AUTH__UPLOAD_TOKENS", '["a", "b"]', "auth", "upload_tokens", ["a", "b"]),
    ("TELEDROP_LIMITS__MAX_UPLOAD_SIZE", "1048576", "limits", "max_upload_size", 1024**2),
    ("TELEDROP_LIMITS__MAX_UPLOAD_SIZE", "5MiB", "limits", "max_upload_size", 5 * 1024**2),
    ("TELEDROP_LIMITS__DEFAULT_EXPIRES", "90", "limits", "default_expires", 90),
    ("TELEDROP_LIMITS__DEFAULT_EXPIRES", "1d", "limits", "default_expires", DAY),
    ("TELEDROP_PLUGINS__DISABLED", '["default_auth"]', "plugins", "disabled",
     ["default_auth"]),
    ("TELEDROP_STORAGE__PLUGIN", "memory", "storage", "plugin", "memory"),
])
def test_env_value_is_toml_when_it_parses_else_a_string(
        config_file, name: str, text: str, section: str, key: str, value: Any) -> None:
    config = load(config_file(""), **{name: text})
    assert getattr(getattr(config, section), key) == value
    assert config.sources[f"{section}.{key}"] == f"env {name}"


def test_env_quoted_toml_string_is_a_string_not_a_number(config_file) -> None:
    err = config_error(config_file(""), TELEDROP_SERVER__WORKERS='"8"')
    assert_one_line(err, "env TELEDROP_SERVER__WORKERS", "server.workers", "expected int")


def test_env_nested_plugin_key(config_file) -> None:
    config = load(config_file(""), TELEDROP_PLUGINS__LOCAL_STORAGE__ROOT="/srv/drops")
    assert config.plugin_tables == {"local_storage": {"root": "/srv/drops"}}
    assert config.sources["plugins.local_storage.root"] == \
        "env TELEDROP_PLUGINS__LOCAL_STORAGE__ROOT"


def test_env_nested_plugin_key_merges_with_file_table(config_file, tmp_path: Path) -> None:
    path = config_file(f'[plugins.sqlite_meta]\npath = "{tmp_path}/meta.db"\n'
                       '[plugins.local_storage]\nroot = "/nowhere"\n')
    config = load(path, TELEDROP_PLUGINS__LOCAL_STORAGE__ROOT=str(tmp_path / "files"))
    assert config.plugin_tables == {"sqlite_meta": {"path": f"{tmp_path}/meta.db"},
                                    "local_storage": {"root": str(tmp_path / "files")}}
    service = composition.start(config)
    try:
        assert service.plugin_settings["local_storage"].root == str(tmp_path / "files")
        assert (tmp_path / "files" / "staging").is_dir()
    finally:
        service.close()


def test_unrelated_env_is_ignored(config_file) -> None:
    config = load(config_file(""), TELEDROP_URL="http://x", TELEDROP_TOKEN="t", HOME="/root",
                  OTHER__THING="1")
    assert sections(config) == DEFAULTS


def test_overrides_win_over_env(config_file) -> None:
    config = load_config(config_file(""), environ={"TELEDROP_SERVER__WORKERS": "8"},
                         overrides={"server": {"workers": 3}})
    assert config.server.workers == 3
    assert config.sources["server.workers"] == "overrides"


def test_sources_record_where_each_value_came_from(config_file) -> None:
    path = config_file("[server]\nworkers = 4\n[plugins.local_storage]\nroot = \"/r\"\n")
    config = load(path, TELEDROP_SERVER__THREADS="3")
    assert config.sources["server.workers"] == path
    assert config.sources["plugins.local_storage.root"] == path
    assert config.sources["server.threads"] == "env TELEDROP_SERVER__THREADS"
    assert "server.bind" not in config.sources  # a default has no source


# --- errors: one line, naming source, key and problem ---------------------------------

@pytest.mark.parametrize(("text", "key", "problem"), [
    ("[serverr]\nbind = \"x:1\"\n", "serverr", "unknown section"),
    ("server = 1\n", "server", "must be a table"),
    ("[server]\nport = 8000\n", "server.port", "unknown key"),
    ("[server]\nworkers = \"two\"\n", "server.workers", "expected int"),
    ("[server]\nworkers = true\n", "server.workers", "expected int"),
    ("[server]\nworkers = 0\n", "server.workers", "at least 1"),
    ("[server]\nbind = 8000\n", "server.bind", "expected str"),
    ("[server]\nbind = \"localhost\"\n", "server.bind", "HOST:PORT"),
    ("[server]\nbase_url = \"drop.example\"\n", "server.base_url", "http"),
    ("[server]\nproxy_hops = -1\n", "server.proxy_hops", "negative"),
    ("[auth]\nupload_tokens = \"secret\"\n", "auth.upload_tokens", "list of str"),
    ("[auth]\nupload_tokens = [1, 2]\n", "auth.upload_tokens", "list of str"),
    ("[auth]\nupload_tokens = [\" \"]\n", "auth.upload_tokens", "empty"),
    ("[limits]\nmax_upload_size = \"10 parsecs\"\n", "limits.max_upload_size", "not a size"),
    ("[limits]\nmax_upload_size = -5\n", "limits.max_upload_size", "negative"),
    ("[limits]\nmin_free_space = \"lots\"\n", "limits.min_free_space", "not a size"),
    ("[limits]\nmin_free_space = \"\"\n", "limits.min_free_space", "not a size"),
    ("[limits]\nmax_total_size = \"5 parsecs\"\n", "limits.max_total_size", "not a size"),
    ("[limits]\nmax_total_size = -1\n", "limits.max_total_size", "negative"),
    ("[limits]\ndefault_expires = \"soon\"\n", "limits.default_expires", "not a duration"),
    ("[limits]\nmax_expires = \"1 fortnight\"\n", "limits.max_expires", "not a duration"),
    ("[limits]\ndefault_expires = \"40d\"\n", "limits.default_expires", "max_expires"),
    ("[limits]\ndefault_expires = \"2h\"\nmax_expires = \"1h\"\n", "limits.default_expires",
     "max_expires"),
    ("[storage]\nplugin = 3\n", "storage.plugin", "expected str"),
    ("[storage]\nbackend = \"s3\"\n", "storage.backend", "unknown key"),
    ("[plugins]\ndisabled = \"default_auth\"\n", "plugins.disabled", "list of str"),
    ("[plugins]\nenabled = []\n", "plugins.enabled", "unknown key"),
])
def test_file_error_names_file_key_and_problem(config_file, text: str, key: str,
                                               problem: str) -> None:
    path = config_file(text)
    err = config_error(path)
    assert (err.source, err.key) == (path, key)
    assert_one_line(err, path, key, problem)


def test_invalid_toml_names_the_file(config_file) -> None:
    path = config_file("[server\nbind = \n")
    err = config_error(path)
    assert err.source == path
    assert_one_line(err, path, "not valid TOML")


@pytest.mark.parametrize("how", ["path", "env"])
def test_missing_file_names_the_file(tmp_path: Path, how: str) -> None:
    missing = str(tmp_path / "nope.toml")
    err = config_error(missing) if how == "path" else config_error(TELEDROP_CONFIG=missing)
    assert err.source == missing
    assert_one_line(err, missing, "no such file")


@pytest.mark.parametrize(("name", "text", "key", "problem"), [
    ("TELEDROP_SERVER__WORKERS", "many", "server.workers", "expected int"),
    ("TELEDROP_SERVER__NOPE", "1", "server.nope", "unknown key"),
    ("TELEDROP_NOPE__KEY", "1", "nope", "unknown section"),
    ("TELEDROP_LIMITS__MAX_UPLOAD_SIZE", "huge", "limits.max_upload_size", "not a size"),
    ("TELEDROP_LIMITS__DEFAULT_EXPIRES", "later", "limits.default_expires", "not a duration"),
    ("TELEDROP_LIMITS__DEFAULT_EXPIRES", "60d", "limits.default_expires", "max_expires"),
    ("TELEDROP_AUTH__UPLOAD_TOKENS", "secret", "auth.upload_tokens", "list of str"),
])
def test_env_error_names_the_variable(config_file, name: str, text: str, key: str,
                                      problem: str) -> None:
    err = config_error(config_file(""), **{name: text})
    assert (err.source, err.key) == (f"env {name}", key)
    assert_one_line(err, f"env {name}", key, problem)


def test_env_with_empty_part_is_refused(config_file) -> None:
    err = config_error(config_file(""), TELEDROP_SERVER____BIND="x:1")
    assert_one_line(err, "env TELEDROP_SERVER____BIND")


def test_env_cannot_nest_under_a_file_value(config_file) -> None:
    err = config_error(config_file('[server]\nbind = "a:1"\n'), TELEDROP_SERVER__BIND__HOST="x")
    assert_one_line(err, "env TELEDROP_SERVER__BIND__HOST", "server.bind")


# --- plugin tables: checked at start-up, once the plugins' schemas are known ----------

def start_error(config: Config) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        composition.start(config).close()
    return info.value


def plugin_paths(tmp_path: Path) -> str:
    return (f'[plugins.local_storage]\nroot = "{tmp_path}/files"\n'
            f'[plugins.sqlite_meta]\npath = "{tmp_path}/meta.db"\n')


@pytest.mark.parametrize(("extra", "key", "problem"), [
    ('[plugins.nosuch]\nx = 1\n', "plugins.nosuch", "no installed plugin"),
    ('[plugins.local_storage.extra]\nx = 1\n', "plugins.local_storage.extra", "unknown key"),
    ('[plugins.sqlite_meta.extra]\nx = 1\n', "plugins.sqlite_meta.extra", "unknown key"),
])
def test_plugin_table_errors_stop_start(config_file, tmp_path: Path, extra: str, key: str,
                                        problem: str) -> None:
    path = config_file(plugin_paths(tmp_path) + extra)
    err = start_error(load(path))
    assert (err.source, err.key) == (path, key)
    assert_one_line(err, path, key, problem)


@pytest.mark.parametrize(("table", "key", "problem"), [
    ({"local_storage": {"rooot": "/x"}}, "plugins.local_storage.rooot", "unknown key"),
    ({"local_storage": {"root": 5}}, "plugins.local_storage.root", "expected str"),
    ({"sqlite_meta": {"busy_timeout": "soon"}}, "plugins.sqlite_meta.busy_timeout",
     "expected int"),
    ({"sqlite_meta": {"synchronous": "sometimes"}}, "plugins.sqlite_meta.synchronous",
     "expected one of"),
])
def test_plugin_settings_are_type_checked(config_file, tmp_path: Path, table: dict[str, Any],
                                          key: str, problem: str) -> None:
    path = config_file(plugin_paths(tmp_path))
    config = load_config(path, environ={}, overrides={"plugins": table})
    err = start_error(config)
    assert (err.source, err.key) == ("overrides", key)
    assert_one_line(err, key, problem)


def test_plugin_setting_from_env_is_named_in_the_error(config_file, tmp_path: Path) -> None:
    path = config_file(plugin_paths(tmp_path))
    err = start_error(load(path, TELEDROP_PLUGINS__LOCAL_STORAGE__ROOOT="/srv"))
    assert err.source == "env TELEDROP_PLUGINS__LOCAL_STORAGE__ROOOT"
    assert_one_line(err, "env TELEDROP_PLUGINS__LOCAL_STORAGE__ROOOT",
                    "plugins.local_storage.rooot", "unknown key")


def test_table_of_a_disabled_plugin_is_not_an_error(config_file, tmp_path: Path) -> None:
    path = config_file('[plugins]\ndisabled = ["default_auth"]\n' + plugin_paths(tmp_path)
                       + '[plugins.default_auth]\nx = 1\n')
    composition.start(load(path)).close()
