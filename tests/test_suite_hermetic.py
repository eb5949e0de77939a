"""The suite's result does not depend on what else is installed: with the example plugin
installed by pip, as its README says, a sample of the suite (the modules that see every
loaded plugin, and a live server) still passes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from teledrop.plugins.manager import ENTRY_POINTS_ENV
from tests.live_server import REPO

EXAMPLE = REPO / "examples" / "teledrop_webhook"
SAMPLE = ("tests/test_plugins.py", "tests/test_example_webhook.py", "tests/test_config.py",
          "tests/test_cli.py", "tests/test_smoke.py",
          "tests/test_live_startup.py::test_good_config_serves_with_its_settings_and_stops_on_sigterm")
#: What the loaded plugins would be without the suite's selection.
LOADED = """
import json
from teledrop.plugins.manager import make_plugin_manager
print(json.dumps(sorted(name for name, _ in make_plugin_manager().list_name_plugin())))
"""


@pytest.fixture(scope="module")
def with_example(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a process in which ``pip install`` has installed the example."""
    base = tmp_path_factory.mktemp("example")
    source = shutil.copytree(EXAMPLE, base / "source")  # pip builds in the tree it is given
    site = base / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(site), str(source)], check=True, capture_output=True,
                   timeout=120)
    env = {k: v for k, v in os.environ.items() if k != ENTRY_POINTS_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO)])
    return env


@pytest.mark.gunicorn
def test_the_suite_passes_with_the_example_plugin_installed(with_example: dict[str, str]) -> None:
    loaded = subprocess.run([sys.executable, "-c", LOADED], env=with_example, cwd=REPO,
                            capture_output=True, text=True, check=True, timeout=60)
    assert "webhook" in json.loads(loaded.stdout), "the example is not installed"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          *SAMPLE], env=with_example, cwd=REPO, capture_output=True, text=True,
                         check=False, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout.splitlines()[-1]
