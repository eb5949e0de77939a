"""Build a fresh plugin manager for one app: block disabled names, load entry points."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pluggy

from teledrop.core.errors import ConfigError

from . import hookspecs

PROJECT = "teledrop"
ENTRY_POINT_GROUP = "teledrop"
#: Plugins that ``[plugins] disabled`` cannot remove.
ESSENTIAL = frozenset({"commit_chain"})


def make_plugin_manager(disabled: Iterable[str] = (), extra: Iterable[object] = (),
                        source: str = "config") -> pluggy.PluginManager:
    """A new manager with every installed ``teledrop`` entry point not in ``disabled``,
    then ``extra`` plugins (objects or modules, for embedding and tests)."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in disabled:
        if name in ESSENTIAL:
            raise ConfigError(source, "plugins.disabled", f"{name!r} is essential and cannot be disabled")
        pm.set_blocked(name)
    # One entry point at a time, so that a broken plugin is named in the error.
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
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
