"""The installed plugins the suite loads: teledrop's built-ins and the two default backends,
plus those a test names; never whatever else happens to be installed beside them.

``$TELEDROP_ENTRY_POINTS`` carries the selection to every app a test starts, in process
or in a server or CLI subprocess. A test adds names with ``@pytest.mark.entry_points(...)``
(see ``tests/conftest.py``; a module's ``pytestmark`` covers all its tests), a live server
with ``live_server(..., entry_points=(...))`` (for module-scoped servers too), and any other
process it starts with :func:`entry_points_env`.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from teledrop.plugins.manager import ENTRY_POINT_GROUP, ENTRY_POINTS_ENV

#: The distributions whose entry points every test loads.
SUITE_DISTRIBUTIONS = ("teledrop", "teledrop-local-storage", "teledrop-sqlite-meta")


def suite_entry_points() -> frozenset[str]:
    return frozenset(ep.name for dist in SUITE_DISTRIBUTIONS
                     for ep in importlib.metadata.distribution(dist).entry_points
                     if ep.group == ENTRY_POINT_GROUP)


def entry_points_env(*names: str) -> dict[str, str]:
    """The environment that loads the suite's entry points and ``names``."""
    return {ENTRY_POINTS_ENV: ",".join(sorted(suite_entry_points() | set(names)))}


def write_dist_info(site: Path, name: str, entry_points: Mapping[str, str],
                    version: str = "0.1") -> None:
    """Make ``name`` an installed distribution under ``site``, as ``pip install`` leaves
    it: a dist-info whose ``teledrop`` entry points are ``{entry point name: module}``."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n" + "".join(f"{ep} = {module}\n"
                                             for ep, module in entry_points.items()))


def also_load(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Add ``names`` to the entry points that apps started by this test load."""
    loaded = set(filter(None, os.environ.get(ENTRY_POINTS_ENV, "").split(",")))
    monkeypatch.setenv(ENTRY_POINTS_ENV, ",".join(sorted(loaded | set(names))))


def is_teledrop_setting(name: str) -> bool:
    """An environment variable that configures teledrop (its config file, an override),
    which a test clears so that only its own config decides; the suite's choice of entry
    points stays."""
    return name.startswith("TELEDROP_") and name != ENTRY_POINTS_ENV
