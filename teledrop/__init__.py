"""teledrop: a self-hosted file drop with a streaming, plugin-driven core."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from teledrop.plugins.markers import hookimpl, hookspec

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl", "hookspec"]


def __getattr__(name: str) -> Any:
    """``hookimpl`` and ``hookspec``, imported when first asked for: every teledrop module
    imports this package, and teledrop's core must not load pluggy with it."""
    if name in ("hookimpl", "hookspec"):
        from teledrop.plugins import markers

        return getattr(markers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
