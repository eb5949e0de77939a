"""The markers of teledrop's hooks, for plugins through ``from teledrop import hookimpl``."""

from __future__ import annotations

import pluggy

#: The project name of teledrop's hooks and plugin manager.
PROJECT = "teledrop"
#: Marker for hook implementations: ``@hookimpl def teledrop_hasher(): ...``.
hookimpl = pluggy.HookimplMarker(PROJECT)
#: Marker for hook specifications (used by :mod:`teledrop.plugins.hookspecs`).
hookspec = pluggy.HookspecMarker(PROJECT)
