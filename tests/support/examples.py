"""The example plugins under ``examples/``, imported from their source trees as a plugin
author runs them before installing."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"


def example_module(monkeypatch: pytest.MonkeyPatch, example: str, module: str
                   ) -> Iterator[ModuleType]:
    """For a fixture: ``examples/<example>``'s package ``module``, imported afresh from its
    source tree (never from an installed copy), and forgotten afterwards."""
    root = EXAMPLES / example
    monkeypatch.syspath_prepend(str(root))
    sys.modules.pop(module, None)
    imported = importlib.import_module(module)
    assert Path(imported.__file__ or "").is_relative_to(root)
    yield imported
    sys.modules.pop(module, None)
