"""teledrop: a self-hosted file drop with a streaming, plugin-driven core."""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

#: Marker for hook implementations: ``@hookimpl def teledrop_hasher(): ...``.
hookimpl = pluggy.HookimplMarker("teledrop")
#: Marker for hook specifications (used by :mod:`teledrop.plugins.hookspecs`).
hookspec = pluggy.HookspecMarker("teledrop")

__all__ = ["__version__", "hookimpl", "hookspec"]
