"""Configuration: a TOML file that names only what it changes, plus env overrides.

``TELEDROP_<SECTION>__<KEY>`` overrides any key (nested with ``__``); the value is read as
TOML when it parses as TOML and as a string otherwise. Every problem becomes a
:class:`~teledrop.core.errors.ConfigError` naming the source, the key and what is wrong.
Plugin tables (``[plugins.<name>]``) are checked once the plugins' schemas are known
(:func:`build_settings`).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .units import parse_duration, parse_optional_size, parse_size

ENV_PREFIX = "TELEDROP_"
CONFIG_ENV = "TELEDROP_CONFIG"
DEFAULT_PATH = "conf/teledrop.toml"


def parsed(parse: Callable[[Any], Any], default: Any) -> Any:
    """A settings field whose raw value goes through ``parse`` (sizes, durations); plugins'
    settings dataclasses use it too."""
    return field(default=parse(default), metadata={"parse": parse, "raw_default": default})


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True)
class ServerSettings:
    bind: str = "127.0.0.1:8000"
    workers: int = 2
    threads: int = 8
    base_url: str = ""
    proxy_hops: int = 0
    #: Python logging level of teledrop's and gunicorn's logs.
    log_level: str = "info"
    #: Serve Prometheus metrics at /metrics (restrict it at the proxy if it must not be public).
    metrics: bool = True
    #: Where worker processes share their metrics; empty = a temporary directory of the
    #: server's own, removed when it stops.
    #: Set it (and run ``teledrop gc`` with the same config) to count gc removals too.
    metrics_dir: str = ""

    def check(self) -> dict[str, str]:
        problems = {}
        if self.log_level.lower() not in LOG_LEVELS:
            problems["log_level"] = f"expected one of {', '.join(LOG_LEVELS)}"
        if self.workers < 1:
            problems["workers"] = "must be at least 1"
        if self.threads < 1:
            problems["threads"] = "must be at least 1"
        if self.proxy_hops < 0:
            problems["proxy_hops"] = "cannot be negative"
        if not (self.bind.startswith("unix:") or ":" in self.bind):
            problems["bind"] = f"expected HOST:PORT or unix:PATH, got {self.bind!r}"
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            problems["base_url"] = f"must start with http:// or https://, got {self.base_url!r}"
        return problems


@dataclass(frozen=True)
class LimitsSettings:
    max_upload_size: int = parsed(parse_size, "10GiB")
    default_expires: int = parsed(parse_duration, "7d")
    max_expires: int = parsed(parse_duration, "30d")
    #: A connection that makes no progress for this long is closed (teledrop.worker); a
    #: stalled upload is cleaned up.
    idle_timeout: int = parsed(parse_duration, "60s")
    #: An upload that would leave less free space than this on the storage is refused
    #: (507); 0 turns the check off.
    min_free_space: int = parsed(parse_size, "1GiB")
    #: The sizes of all drops together (gone ones until gc) may not pass this; None: no cap.
    max_total_size: int | None = parsed(parse_optional_size, "")
    #: A resumable upload not finished this long after it began is gone (gc removes it).
    resumable_expires: int = parsed(parse_duration, "24h")

    def check(self) -> dict[str, str]:
        problems = {}
        if self.idle_timeout < 1:
            problems["idle_timeout"] = "must be at least 1s"
        if self.resumable_expires < 1:
            problems["resumable_expires"] = "must be at least 1s"
        if self.max_expires < 1:
            problems["max_expires"] = "must be at least 1s"
        elif not 1 <= self.default_expires <= self.max_expires:
            problems["default_expires"] = "must be between 1s and limits.max_expires"
        return problems


@dataclass(frozen=True)
class AuthSettings:
    upload_tokens: list[str] = field(default_factory=list)
    #: uploads need a token (from upload_tokens or `teledrop token`); implied by a
    #: non-empty upload_tokens.
    require_token: bool = False

    @property
    def tokens_required(self) -> bool:
        return self.require_token or bool(self.upload_tokens)

    def check(self) -> dict[str, str]:
        if any(not token.strip() for token in self.upload_tokens):
            return {"upload_tokens": "tokens cannot be empty"}
        return {}


@dataclass(frozen=True)
class BackendChoice:
    plugin: str


@dataclass(frozen=True)
class PluginsSettings:
    disabled: list[str] = field(default_factory=list)


_SECTIONS: dict[str, tuple[type, dict[str, Any]]] = {
    "server": (ServerSettings, {}),
    "limits": (LimitsSettings, {}),
    "auth": (AuthSettings, {}),
    "storage": (BackendChoice, {"plugin": "local_storage"}),
    "metadata": (BackendChoice, {"plugin": "sqlite_meta"}),
}


@dataclass(frozen=True)
class Config:
    """The effective configuration. ``plugin_tables`` stay raw until schemas are known."""

    server: ServerSettings = field(default_factory=ServerSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    storage: BackendChoice = field(default_factory=lambda: BackendChoice("local_storage"))
    metadata: BackendChoice = field(default_factory=lambda: BackendChoice("sqlite_meta"))
    plugins: PluginsSettings = field(default_factory=PluginsSettings)
    plugin_tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: dotted key -> where its value came from ("file F", "env NAME"); absent = default.
    sources: dict[str, str] = field(default_factory=dict)
    path: str | None = None

    def source_of(self, key: str) -> str:
        return self.sources.get(key, self.path or "defaults")


def load_config(
    path: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read the config file (``path``, else ``$TELEDROP_CONFIG``, else ``conf/teledrop.toml``
    when present) and apply env overrides, then ``overrides`` (a nested dict, for tests).
    """
    environ = os.environ if environ is None else environ
    explicit = path or environ.get(CONFIG_ENV)
    path = explicit or (DEFAULT_PATH if os.path.exists(DEFAULT_PATH) else None)
    raw: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if path is not None:
        raw = _read_toml(path)
        _record_sources(raw, path, sources)
    for name, value in sorted(environ.items()):
        if name.startswith(ENV_PREFIX) and "__" in name:
            keys = [part.lower() for part in name[len(ENV_PREFIX):].split("__")]
            if not all(keys):
                raise ConfigError(f"env {name}", "", "empty section or key in the name")
            _set_nested(raw, keys, _env_value(value), f"env {name}", sources)
    if overrides:
        _merge(raw, dict(overrides), "overrides", sources, [])
    return _build(raw, path, sources)


def build_settings(cls: type, table: Mapping[str, Any], prefix: str, sources: Mapping[str, str],
                   fallback_source: str) -> Any:
    """An instance of the dataclass ``cls`` from a TOML table, every value type-checked.

    Used for teledrop's sections and for each plugin's ``[plugins.<name>]`` table.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in table.items():
        dotted = f"{prefix}.{key}"
        source = sources.get(dotted, fallback_source)
        if key not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise ConfigError(source, dotted, f"unknown key (known: {known})")
        values[key] = _coerce(value, hints[key], fields[key].metadata.get("parse"), source, dotted)
    try:
        instance = cls(**values)
    except TypeError as exc:  # a required key is missing
        raise ConfigError(fallback_source, prefix, str(exc).split(".__init__() ")[-1]) from None
    check = getattr(instance, "check", None)
    for key, problem in (check() if check else {}).items():
        dotted = f"{prefix}.{key}"
        raise ConfigError(sources.get(dotted, fallback_source), dotted, problem)
    return instance


def _build(raw: dict[str, Any], path: str | None, sources: dict[str, str]) -> Config:
    fallback = path or "defaults"
    sections: dict[str, Any] = {}
    for name, table in raw.items():
        if name == "plugins":
            continue
        if name not in _SECTIONS:
            known = ", ".join([*_SECTIONS, "plugins"])
            raise ConfigError(sources.get(name, fallback), name, f"unknown section (known: {known})")
        if not isinstance(table, dict):
            raise ConfigError(sources.get(name, fallback), name, "must be a table")
    for name, (cls, defaults) in _SECTIONS.items():
        table = {**defaults, **raw.get(name, {})}
        sections[name] = build_settings(cls, table, name, sources, fallback)
    plugins_raw = raw.get("plugins", {})
    if not isinstance(plugins_raw, dict):
        raise ConfigError(sources.get("plugins", fallback), "plugins", "must be a table")
    tables = {k: v for k, v in plugins_raw.items() if isinstance(v, dict)}
    scalars = {k: v for k, v in plugins_raw.items() if not isinstance(v, dict)}
    plugins = build_settings(PluginsSettings, scalars, "plugins", sources, fallback)
    return Config(**sections, plugins=plugins, plugin_tables=tables, sources=sources, path=path)


def _coerce(value: Any, hint: Any, parse: Callable[[Any], Any] | None, source: str,
            key: str) -> Any:
    if parse is not None:
        try:
            return parse(value)
        except ValueError as exc:
            raise ConfigError(source, key, str(exc)) from None
    origin = typing.get_origin(hint)
    if origin is list:
        (item_type,) = typing.get_args(hint) or (object,)
        if not isinstance(value, list) or not all(_is(v, item_type) for v in value):
            raise ConfigError(source, key, f"expected a list of {item_type.__name__}, got {value!r}")
        return list(value)
    if hint in (str, int, bool, float) and not _is(value, hint):
        raise ConfigError(source, key, f"expected {hint.__name__}, got {value!r}")
    return value


def _is(value: Any, kind: Any) -> bool:
    if kind is object:
        return True
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(path, "", "no such file") from None
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from None


def _env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set_nested(raw: dict[str, Any], keys: list[str], value: Any, source: str,
                sources: dict[str, str]) -> None:
    node = raw
    for i, key in enumerate(keys[:-1]):
        if key not in node:
            sources.setdefault(".".join(keys[: i + 1]), source)
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(source, ".".join(keys[: i + 1]), "is a value, not a table")
        node = child
    node[keys[-1]] = value
    _record_sources({keys[-1]: value}, source, sources, keys[:-1])


def _merge(raw: dict[str, Any], extra: dict[str, Any], source: str, sources: dict[str, str],
           prefix: list[str]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            _merge(raw[key], value, source, sources, [*prefix, key])
        else:
            raw[key] = value
            _record_sources({key: value}, source, sources, prefix)


def _record_sources(node: dict[str, Any], source: str, sources: dict[str, str],
                    prefix: list[str] | None = None) -> None:
    for key, value in node.items():
        dotted = [*(prefix or []), key]
        sources[".".join(dotted)] = source
        if isinstance(value, dict):
            _record_sources(value, source, sources, dotted)
