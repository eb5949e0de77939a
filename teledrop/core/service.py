"""One running teledrop: its config, plugin manager and the two backends.

Built once per process (per gunicorn worker, after fork) by :meth:`Teledrop.start`;
handlers take it as their first argument.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pluggy

from teledrop.plugins.commit_chain import CommitChain
from teledrop.plugins.manager import make_plugin_manager, selected_entry_points

from .config import Config, build_settings
from .drop import Drop
from .errors import ConfigError, InvalidSlug, Unavailable
from .interfaces import Metadata, Storage

log = logging.getLogger(__name__)

#: How many generated slugs to try before giving up (each is refused only by a plugin's
#: slug policy).
SLUG_ATTEMPTS = 10


@dataclass
class Teledrop:
    config: Config
    pm: pluggy.PluginManager
    storage: Storage
    metadata: Metadata
    plugin_settings: dict[str, Any]

    @classmethod
    def start(cls, config: Config, plugins: Iterable[object] = (),
              entry_points: Iterable[str] | None = None) -> Teledrop:
        """Load plugins, validate their settings, build the configured backends.

        ``entry_points`` names the only installed plugins to load; by default those
        ``$TELEDROP_ENTRY_POINTS`` names, else every installed one.

        :raises StartupError: (a one-line message) when anything is wrong.
        """
        source = config.source_of("plugins.disabled")
        if entry_points is None:
            entry_points = selected_entry_points()
        pm = make_plugin_manager(config.plugins.disabled, plugins, source=source,
                                 only=entry_points)
        settings = plugin_settings(pm, config)
        storage = build_backend(pm.hook.teledrop_storage_backends(), "storage", config, settings)
        try:
            metadata = build_backend(pm.hook.teledrop_metadata_backends(), "metadata", config,
                                     settings)
        except BaseException:
            storage.close()
            raise
        service = cls(config, pm, storage, metadata, settings)
        pm.register(CommitChain(metadata, service.new_slug), name=CommitChain.teledrop_plugin_name)
        return service

    def close(self) -> None:
        self.metadata.close()
        self.storage.close()

    def hook(self, name: str, **kwargs: Any) -> Any:
        """Call a per-request hook. Every such hook may also take ``config`` and ``settings``
        (all plugins' validated settings by name): how a plugin reads its own table without
        a module-level global."""
        caller = getattr(self.pm.hook, name)
        return caller(config=self.config, settings=self.plugin_settings, **kwargs)

    def new_slug(self, drop: Drop) -> str:
        """A generated slug that passes every slug check. Whether it is free is left to the
        insert (48 random bits rarely collide; the commit chain retries when one does)."""
        for _ in range(SLUG_ATTEMPTS):
            slug = self.hook("teledrop_generate_slug", drop=drop)
            try:
                self.hook("teledrop_check_slug", slug=slug, custom=False)
            except InvalidSlug:
                continue
            return slug
        raise Unavailable("could not generate an acceptable slug")

    def notify(self, event: str, **kwargs: Any) -> None:
        """Call each implementation of an event hook on its own; a failure is logged and
        never reaches the caller (events come after the fact and cannot undo it)."""
        kwargs = {"config": self.config, "settings": self.plugin_settings, **kwargs}
        caller = getattr(self.pm.hook, event)
        for impl in caller.get_hookimpls():
            if impl.hookwrapper or impl.wrapper:
                continue
            try:
                impl.function(*[kwargs[name] for name in impl.argnames])
            except Exception:
                log.exception("teledrop: plugin %s failed in %s", impl.plugin_name, event)


def plugin_settings(pm: pluggy.PluginManager, config: Config) -> dict[str, Any]:
    """Validate every ``[plugins.<name>]`` table against the schema its plugin declares."""
    schemas: dict[str, type] = {}
    for result in pm.hook.teledrop_config_schema():
        for name, schema in result.items():
            if name in schemas:
                raise ConfigError("plugins", f"plugins.{name}", "settings declared by two plugins")
            schemas[name] = schema
    blocked = set(config.plugins.disabled)
    settings: dict[str, Any] = {}
    for name, table in config.plugin_tables.items():
        if name not in schemas and name not in blocked:
            known = ", ".join(sorted(schemas)) or "none"
            raise ConfigError(config.source_of(f"plugins.{name}"), f"plugins.{name}",
                              f"no installed plugin takes these settings (known: {known})")
    for name, schema in schemas.items():
        table = config.plugin_tables.get(name, {})
        settings[name] = build_settings(schema, table, f"plugins.{name}", config.sources,
                                        config.source_of(f"plugins.{name}"))
    return settings


def build_backend(offers: list[Mapping[str, Callable[..., Any]]], kind: str, config: Config,
                  settings: Mapping[str, Any]) -> Any:
    """Build the backend named by ``[<kind>] plugin`` from the registry hook's offers."""
    factories: dict[str, Callable[..., Any]] = {}
    for offer in offers:
        for name, factory in offer.items():
            if name in factories:
                raise ConfigError("plugins", kind, f"backend {name!r} is offered by two plugins")
            factories[name] = factory
    name = getattr(config, kind).plugin
    key = f"{kind}.plugin"
    if name not in factories:
        available = ", ".join(sorted(factories)) or "none"
        raise ConfigError(config.source_of(key), key,
                          f"{kind} plugin {name!r} is not installed (available: {available})")
    try:
        return factories[name](settings=settings.get(name), config=config)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(config.source_of(key), key,
                          f"{kind} plugin {name!r} failed to start: {exc}") from exc
