"""Shared fixtures: a fresh config, plugin manager and app per test; and the turns that
tests take when pytest-xdist runs them in several workers at once."""

from __future__ import annotations

import fcntl
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import werkzeug.test
from flask import Flask

from teledrop.core.config import Config, load_config
from teledrop.core.service import Teledrop
from teledrop.web import create_app
from teledrop.plugins.manager import ENTRY_POINTS_ENV
from teledrop.web.app import service_of
from tests.live_server import merged
from tests.plugins.memory import MemoryPlugin
from tests.support.entry_points import also_load, entry_points_env

pytest_plugins = ["tests.services.postgres", "tests.services.seaweedfs", "tests.services.lambda_rie",
                  "tests.services.ministack"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "entry_points(*names): installed plugins this test "
                                       "loads besides the suite's own (tests/support/entry_points.py)")
    config.addinivalue_line("markers", "alone: runs while no other test runs in any xdist worker "
                                       "(it bounds a time that tests beside it would stretch)")


# --- running in pytest-xdist workers -----------------------------------------------------
# ``make test`` runs the suite in several workers, one module per work unit
# (``--dist loadfile``): most of its time waits on servers, subprocesses and sockets.
#
# Each test holds the run's lock file shared; one marked ``alone`` holds it exclusively, so
# it starts once the tests in flight in the other workers have ended, and none starts
# until it (and any ``alone`` test right after it in its worker) has. A gate, taken before
# either and let go at once by a shared holder, keeps the stream of shared holders from
# starving a waiting exclusive one.

#: Modules that run in one worker, one after the other: the memory bounds (two 1 GiB
#: uploads at once would fight over the disk) and the browser tests (chromium is heavy).
GROUPS = {"tests/test_memory_bound.py": "memory", "tests/test_s3_memory.py": "memory",
          "tests/test_browser.py": "browser", "tests/test_browser_owner.py": "browser",
          "tests/test_browser_pages.py": "browser"}
#: The longest work units (``--durations``), queued first so that the run does not end
#: waiting on one of them; the rest follow, larger modules first. Naming a unit here, or
#: not, changes how soon it starts, nothing else.
LONG_FIRST = ("browser", "memory", "tests/test_s3_storage.py", "tests/test_s3_app.py",
              "tests/test_direct_uploads.py", "tests/test_lambda_host.py",
              "tests/test_multihost.py", "tests/test_reliability_faults.py",
              "tests/test_postgres_meta.py", "tests/test_schemathesis.py",
              "tests/test_suite_hermetic.py", "tests/test_live_startup.py",
              "tests/test_tus_s3_live.py", "tests/test_owner_api.py",
              "tests/test_owner_access.py", "tests/test_cli_direct.py",
              "tests/test_client_live.py", "tests/test_live_timeouts.py")
#: The run's lock file, made by the controller and handed to each worker.
TURNS_LOCK = pytest.StashKey[Path]()
TURNS_INPUT = "teledrop_turns"
WORKER_TURNS = pytest.StashKey["Turns"]()


def work_unit(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return GROUPS.get(module, module)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """(pytest-xdist) ``--dist loadfile``, with the :data:`GROUPS` as one unit each."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class Scheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # the workers' collection is in queue order
    return Scheduling(config, log)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In an xdist worker: whole work units, :data:`LONG_FIRST` first, then larger ones
    before smaller (each worker collects the same, so the queue is in this order)."""
    if not hasattr(config, "workerinput"):
        return
    sizes = Counter(work_unit(item.nodeid) for item in items)

    def rank(item: pytest.Item) -> tuple[int, int, str]:
        unit = work_unit(item.nodeid)
        first = LONG_FIRST.index(unit) if unit in LONG_FIRST else len(LONG_FIRST)
        return first, -sizes[unit], unit

    items.sort(key=rank)  # stable: each module keeps its own order


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """(pytest-xdist, in the controller) Tell each worker the run's lock file."""
    stash = node.config.stash
    if TURNS_LOCK not in stash:
        stash[TURNS_LOCK] = Path(tempfile.mkdtemp(prefix="teledrop-turns-")) / "turns.lock"
    node.workerinput[TURNS_INPUT] = str(stash[TURNS_LOCK])


def pytest_unconfigure(config: pytest.Config) -> None:
    if TURNS_LOCK in config.stash:
        shutil.rmtree(config.stash[TURNS_LOCK].parent, ignore_errors=True)


class Turns:
    """One worker's holds of the run's lock file."""

    def __init__(self, lock: Path) -> None:
        self.lock = lock
        self.gate = lock.with_suffix(".gate")
        #: the exclusive hold, kept from one ``alone`` test to the next
        self.alone: ExitStack | None = None

    def _take(self, exclusive: bool) -> ExitStack:
        files = ExitStack()
        try:
            held = files.enter_context(open(self.lock, "a"))
            gate = files.enter_context(open(self.gate, "a"))
            fcntl.flock(gate, fcntl.LOCK_EX)
            fcntl.flock(held, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            if not exclusive:
                fcntl.flock(gate, fcntl.LOCK_UN)
        except BaseException:
            files.close()
            raise
        return files  # closing the files lets go of the locks

    @contextmanager
    def turn(self, alone: bool, next_alone: bool) -> Iterator[None]:
        if not alone:
            with self._take(exclusive=False):
                yield
            return
        if self.alone is None:
            self.alone = self._take(exclusive=True)
        try:
            yield
        finally:
            if not next_alone:
                self.alone.close()
                self.alone = None


def is_alone(item: pytest.Item | None) -> bool:
    return item is not None and item.get_closest_marker("alone") is not None


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """Setup, call and teardown of each test in its turn (outside pytest-timeout's clock:
    waiting for a turn is no part of a test's time)."""
    lock = getattr(item.config, "workerinput", {}).get(TURNS_INPUT)
    if lock is None:  # not an xdist worker
        return (yield)
    if WORKER_TURNS not in item.config.stash:
        item.config.stash[WORKER_TURNS] = Turns(Path(lock))
    with item.config.stash[WORKER_TURNS].turn(is_alone(item), is_alone(nextitem)):
        return (yield)


@pytest.fixture(autouse=True, scope="session")
def suite_entry_points() -> Iterator[None]:
    """Every app the suite starts loads only the suite's entry points."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENTRY_POINTS_ENV, entry_points_env()[ENTRY_POINTS_ENV])
        yield


@pytest.fixture(autouse=True)
def rfc_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """werkzeug's test client makes a form's boundary from ``time()`` and ``random()``,
    and about one in a few hundred is longer than RFC 2046's 70 characters, which teledrop
    refuses (400): a random float of few digits keeps every boundary within the RFC."""
    monkeypatch.setattr(werkzeug.test, "random", lambda: 0.5)


@pytest.fixture(autouse=True)
def marked_entry_points(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    names = [name for mark in request.node.iter_markers("entry_points") for name in mark.args]
    if names:
        also_load(monkeypatch, *names)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def make_config(tmp_path: Path, data_dir: Path) -> Callable[..., Config]:
    """``make_config(limits={"max_upload_size": "1MiB"}, ...)``: defaults, with storage and
    metadata under this test's ``tmp_path``."""
    empty = tmp_path / "teledrop.toml"
    empty.write_text("")

    def make(**sections: Any) -> Config:
        base = {"plugins": {"local_storage": {"root": str(data_dir / "files")},
                            "sqlite_meta": {"path": str(data_dir / "teledrop.db")}}}
        return load_config(str(empty), environ={}, overrides=merged(base, sections))

    return make


@pytest.fixture
def make_app(make_config: Callable[..., Config]) -> Iterator[Callable[..., Flask]]:
    """``make_app(plugins=[...], **sections)``: a Flask app on the real default plugins
    (plus ``plugins``), configured by ``sections``; ``plugins_section`` is the config's
    ``[plugins]`` table (``plugins`` being taken by the plugin objects), and ``config`` a
    whole config instead (``make_app(config=make_config(plugins={...}))``)."""
    apps: list[Flask] = []

    def make(plugins: tuple[object, ...] | list[object] = (),
             plugins_section: dict[str, Any] | None = None, config: Config | None = None,
             **sections: Any) -> Flask:
        if plugins_section is not None:
            sections["plugins"] = plugins_section
        app = create_app(config or make_config(**sections), plugins)
        app.testing = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        service_of(app).close()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


@pytest.fixture
def service(app: Flask) -> Teledrop:
    return service_of(app)


@pytest.fixture
def memory() -> MemoryPlugin:
    return MemoryPlugin()


@pytest.fixture
def memory_app(make_app: Callable[..., Flask], memory: MemoryPlugin) -> Flask:
    """An app on in-memory backends (``memory.storage``, ``memory.metadata``)."""
    return make_app(plugins=[memory], storage={"plugin": "memory"}, metadata={"plugin": "memory"})
