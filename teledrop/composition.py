"""The composition root: one running teledrop built from its parts.

Every host (the WSGI app, ``teledrop serve``, the commands) and the tests start teledrop
here: load the config, make the plugin manager, validate the plugins' settings, build the
configured backends and register the commit chain. It sits above both :mod:`teledrop.core`
(which never sees pluggy) and :mod:`teledrop.plugins`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pluggy

from teledrop.core.config import Config, build_settings, load_config
from teledrop.core.drop import Drop, now
from teledrop.core.errors import ConfigError, InvalidSlug
from teledrop.core.service import Teledrop
from teledrop.core.slugs import check_generated_slug
from teledrop.plugins.commit_chain import CommitChain
from teledrop.plugins.manager import make_plugin_manager, selected_entry_points

log = logging.getLogger(__name__)

#: Slugs drawn at start-up to vet the slug plugin.
SLUG_SAMPLES = 4


@dataclass
class PluginTeledrop(Teledrop):
    """A :class:`~teledrop.core.service.Teledrop` whose hooks are its plugin manager's."""

    pm: pluggy.PluginManager

    def hook(self, name: str, **kwargs: Any) -> Any:
        caller = getattr(self.pm.hook, name)
        return caller(config=self.config, settings=self.plugin_settings, **kwargs)

    def notify(self, event: str, **kwargs: Any) -> None:
        kwargs = {"config": self.config, "settings": self.plugin_settings, **kwargs}
        caller = getattr(self.pm.hook, event)
        for impl in caller.get_hookimpls():
            if impl.hookwrapper or impl.wrapper:
                continue
            try:
                impl.function(*[kwargs[name] for name in impl.argnames])
            except Exception:
                log.exception("teledrop: plugin %s failed in %s", impl.plugin_name, event)


def start(config: Config | None = None, plugins: Iterable[object] = (),
          entry_points: Iterable[str] | None = None) -> PluginTeledrop:
    """Load plugins, validate their settings, build the configured backends.

    ``config`` defaults to :func:`~teledrop.core.config.load_config`'s result; ``plugins``
    are registered after the installed ones (embedding, tests); see :func:`load_plugins`
    for ``entry_points``.

    :raises StartupError: (a one-line message) when anything is wrong.
    """
    config = config or load_config()
    pm, settings = load_plugins(config, plugins, entry_points)
    check_slug_generator(pm, config, settings)
    storage = build_backend(pm.hook.teledrop_storage_backends(), "storage", config, settings)
    try:
        metadata = build_backend(pm.hook.teledrop_metadata_backends(), "metadata", config,
                                 settings)
    except BaseException:
        storage.close()
        raise
    service = PluginTeledrop(config, storage, metadata, settings, pm)
    pm.register(CommitChain(metadata, service.new_slug), name=CommitChain.teledrop_plugin_name)
    return service


def load_plugins(config: Config, plugins: Iterable[object] = (),
                 entry_points: Iterable[str] | None = None,
                 ) -> tuple[pluggy.PluginManager, dict[str, Any]]:
    """The plugin manager ``config`` asks for, and every plugin's validated settings.

    ``entry_points`` names the only installed plugins to load; by default those
    ``$TELEDROP_ENTRY_POINTS`` names, else every installed one.
    """
    if entry_points is None:
        entry_points = selected_entry_points()
    pm = make_plugin_manager(config.plugins.disabled, plugins,
                             source=config.source_of("plugins.disabled"), only=entry_points)
    return pm, plugin_settings(pm, config)


def check_slug_generator(pm: pluggy.PluginManager, config: Config,
                         settings: Mapping[str, Any]) -> None:
    """Draw a few slugs for a sample drop, as ``teledrop_generate_slug`` would for an
    upload, and stop start-up naming the plugin whose slug fails teledrop's own checks
    (:func:`~teledrop.core.slugs.check_generated_slug`) or that fails to answer."""
    drop = Drop(slug="", blob_id="", filename="file", size=0,
                content_type="application/octet-stream", hash="", created_at=now(),
                expires_at=now() + config.limits.default_expires)
    kwargs = {"drop": drop, "config": config, "settings": settings}
    impls = [impl for impl in pm.hook.teledrop_generate_slug.get_hookimpls()
             if not (impl.wrapper or impl.hookwrapper)]
    for _ in range(SLUG_SAMPLES):
        for impl in reversed(impls):  # the order of a first-result call
            try:
                slug = impl.function(*[kwargs[name] for name in impl.argnames])
            except Exception as exc:
                raise ConfigError("plugins", impl.plugin_name,
                                  f"teledrop_generate_slug failed: {type(exc).__name__}: "
                                  f"{exc}") from exc
            if slug is None:
                continue
            try:
                check_generated_slug(slug)
            except InvalidSlug as exc:
                raise ConfigError("plugins", impl.plugin_name,
                                  f"teledrop_generate_slug returned {slug!r}, which teledrop "
                                  f"refuses: {exc.message}") from None
            break
        else:
            raise ConfigError("plugins", "teledrop_generate_slug",
                              "no plugin generates slugs (default_slug is disabled)")


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
