"""Build a fresh plugin manager for one app: block disabled names, load entry points."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import pluggy

from teledrop.core.errors import ConfigError

from . import hookspecs
from .markers import PROJECT

ENTRY_POINT_GROUP = "teledrop"
#: Plugins that ``[plugins] disabled`` cannot remove.
ESSENTIAL = frozenset({"commit_chain"})
#: Comma-separated names of the only entry points to load, instead of every installed one:
#: how a test suite keeps whatever else is installed beside it out of its results.
ENTRY_POINTS_ENV = "TELEDROP_ENTRY_POINTS"


def selected_entry_points(environ: Mapping[str, str] = os.environ) -> frozenset[str] | None:
    """The entry points ``$TELEDROP_ENTRY_POINTS`` names; ``None`` (every installed one)
    when it is not set."""
    value = environ.get(ENTRY_POINTS_ENV)
    if value is None:
        return None
    return frozenset(name.strip() for name in value.split(",") if name.strip())


def make_plugin_manager(disabled: Iterable[str] = (), extra: Iterable[object] = (),
                        source: str = "config", only: Iterable[str] | None = None,
                        ) -> pluggy.PluginManager:
    """A new manager with the installed ``teledrop`` entry points not in ``disabled`` (of
    them, only those named in ``only`` unless it is ``None``), then ``extra`` plugins
    (objects or modules, for embedding and tests)."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in disabled:
        if name in ESSENTIAL:
            raise ConfigError(source, "plugins.disabled", f"{name!r} is essential and cannot be disabled")
        pm.set_blocked(name)
    installed = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    if only is not None:
        wanted = set(only)
        missing = wanted - set(installed.names)
        if missing:
            raise ConfigError("plugins", ", ".join(sorted(missing)),
                              "named to be loaded but not installed (installed: "
                              f"{', '.join(sorted(installed.names)) or 'none'})")
        installed = importlib.metadata.EntryPoints(ep for ep in installed if ep.name in wanted)
    # One entry point at a time, so that a broken plugin is named in the error.
    for ep in installed:
        with _plugin_errors(ep.name):
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=ep.name)
    for plugin in extra:
        name = getattr(plugin, "teledrop_plugin_name", None) or getattr(plugin, "__name__", None)
        with _plugin_errors(name or repr(plugin)):
            pm.register(plugin, name=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ConfigError("plugins", pm.get_name(exc.plugin) or "", _one_line(exc)) from None
    return pm


def _one_line(exc: BaseException) -> str:
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


@contextmanager
def _plugin_errors(name: str) -> Iterator[None]:
    """A plugin that cannot be imported or registered stops start-up with one line."""
    try:
        yield
    except pluggy.PluginValidationError as exc:
        raise ConfigError("plugins", name, _one_line(exc)) from None
    except Exception as exc:
        raise ConfigError("plugins", name,
                          f"failed to load: {type(exc).__name__}: {_one_line(exc)}") from exc


@dataclass(frozen=True)
class PluginInfo:
    name: str
    source: str
    hooks: tuple[str, ...]


def describe_plugins(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Every registered plugin, where it comes from and the hooks it implements."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        dist: importlib.metadata.Distribution | None = dists.get(id(plugin))
        if dist is not None:
            source = f"{dist.metadata['name']} {dist.version} (entry point)"
        else:
            module = getattr(plugin, "__module__", None) or getattr(plugin, "__name__", "?")
            source = f"{module} (registered by teledrop)"
        hooks = tuple(sorted({caller.name for caller in pm.get_hookcallers(plugin) or []}))
        infos.append(PluginInfo(name, source, hooks))
    return sorted(infos, key=lambda info: info.name)


def blocked_names(pm: pluggy.PluginManager) -> list[str]:
    return sorted(name for name, plugin in pm.list_name_plugin() if plugin is None)
