"""Dependencies point down: hosts (web, cli, server, hosts) → the composition root →
plugins → core. teledrop's core imports no framework, no host and nothing of the plugin
machinery, neither in its import statements nor in what importing it loads; the plugins
import no host and not the composition root; what every host shares (teledrop.hosts, the
Lambda host among them) imports neither Flask nor the WSGI host."""

from __future__ import annotations

import ast
import importlib.util
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import teledrop.core
import teledrop.hosts
import teledrop.plugins
from tests.live_server import REPO

HOSTS = ("teledrop.web", "teledrop.cli", "teledrop.server", "teledrop.client",
         "teledrop.composition", "flask", "werkzeug", "gunicorn", "click")
#: What each layer must not import, by module prefix.
FORBIDDEN = {
    "teledrop.core": (*HOSTS, "teledrop.plugins", "pluggy"),
    "teledrop.plugins": HOSTS,
    "teledrop.hosts": ("teledrop.web", "teledrop.cli", "teledrop.server", "flask", "gunicorn",
                       "click"),
}
LOADED = "import importlib, json, sys; importlib.import_module(sys.argv[1]); " \
         "print(json.dumps(sorted(sys.modules)))"


def modules_of(package: object) -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages(package.__path__,  # type: ignore[attr-defined]
                                                                f"{package.__name__}."))


def matching(names: list[str] | set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(name for name in names
                  if any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes))


def imported_names(path: Path, package: str) -> set[str]:
    """Every module an ``import`` statement anywhere in ``path`` names, relative imports
    resolved against ``package`` (the package the module is in)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def loaded_by(module: str, pythonpath: str = str(REPO)) -> list[str]:
    """The modules in ``sys.modules`` once a fresh interpreter has imported ``module``."""
    done = subprocess.run([sys.executable, "-c", LOADED, module], capture_output=True,
                          text=True, check=True, timeout=60, cwd=REPO,
                          env={"PYTHONPATH": pythonpath, "PATH": ""})
    return json.loads(done.stdout)


LAYER_MODULES = [(layer, name) for layer, package in (("teledrop.core", teledrop.core),
                                                     ("teledrop.plugins", teledrop.plugins),
                                                     ("teledrop.hosts", teledrop.hosts))
                 for name in [package.__name__, *modules_of(package)]]


@pytest.mark.parametrize("layer, module", LAYER_MODULES, ids=[m for _, m in LAYER_MODULES])
def test_a_layer_imports_nothing_above_it(layer: str, module: str) -> None:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    package = module if spec.submodule_search_locations else module.rpartition(".")[0]
    assert matching(imported_names(Path(spec.origin), package), FORBIDDEN[layer]) == []
    assert matching(loaded_by(module), FORBIDDEN[layer]) == []


def test_the_statement_check_finds_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "drops.py"
    module.write_text("def later():\n    from ..web import app\n    import flask.json\n")
    found = matching(imported_names(module, "teledrop.core"), FORBIDDEN["teledrop.core"])
    assert found == ["flask.json", "teledrop.web", "teledrop.web.app"]


def test_the_load_check_finds_what_an_import_drags_in(tmp_path: Path) -> None:
    (tmp_path / "looks_harmless.py").write_text("import teledrop.plugins.manager\n")
    loaded = loaded_by("looks_harmless", f"{tmp_path}:{REPO}")
    assert "pluggy" in matching(loaded, FORBIDDEN["teledrop.core"])


def test_the_shared_host_modules_are_the_ones_the_wsgi_host_uses() -> None:
    """What moved out of teledrop.web is imported back from teledrop.hosts, not kept twice."""
    web = Path(teledrop.hosts.__file__).parent.parent / "web"
    shared = {f"teledrop.hosts.{name}" for name in ("body", "download", "http", "openapi")}
    used: set[str] = set()
    for path in web.glob("*.py"):
        used.update(matching(imported_names(path, "teledrop.web"), tuple(shared)))
    assert shared <= used
    assert not {path.stem for path in web.glob("*.py")} & {"body", "multipart", "openapi"}


def test_importing_teledrop_loads_no_plugin_machinery_until_a_marker_is_used() -> None:
    assert matching(loaded_by("teledrop"), ("pluggy", "teledrop.plugins")) == []
    assert "pluggy" in loaded_by("teledrop.plugins.default_slug")
