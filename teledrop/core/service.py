"""One running teledrop as core sees it: its config, the two backends, the plugins'
settings and a way to call their hooks.

Built once per process (per gunicorn worker, after fork) by the composition root above
core, :func:`teledrop.composition.start`, which also supplies the hook calls; handlers
take it as their first argument.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from .config import Config
from .drop import Drop
from .errors import InvalidSlug, Unavailable
from .interfaces import Metadata, Storage
from .slugs import check_generated_slug

#: How many generated slugs to try before giving up (each is refused only by a plugin's
#: slug policy).
SLUG_ATTEMPTS = 10


@dataclass
class Teledrop(ABC):
    config: Config
    storage: Storage
    metadata: Metadata
    #: Every plugin's validated settings, by plugin name.
    plugin_settings: dict[str, Any]

    @abstractmethod
    def hook(self, name: str, **kwargs: Any) -> Any:
        """Call a per-request hook and return its result. Every such hook may also take
        ``config`` and ``settings`` (all plugins' validated settings by name): how a plugin
        reads its own table without a module-level global."""

    @abstractmethod
    def notify(self, event: str, **kwargs: Any) -> None:
        """Call each implementation of an event hook on its own; a failure is logged and
        never reaches the caller (events come after the fact and cannot undo it)."""

    def close(self) -> None:
        self.metadata.close()
        self.storage.close()

    def new_slug(self, drop: Drop) -> str:
        """A generated slug that passes teledrop's own checks and every plugin's. Whether
        it is free is left to the insert (48 random bits rarely collide; the commit chain
        retries when one does).

        :raises Unavailable: when none of :data:`SLUG_ATTEMPTS` does."""
        for _ in range(SLUG_ATTEMPTS):
            slug = self.hook("teledrop_generate_slug", drop=drop)
            try:
                check_generated_slug(slug)
                self.hook("teledrop_check_slug", slug=slug, custom=False)
            except InvalidSlug:
                continue
            return slug
        raise Unavailable("could not generate an acceptable slug")
