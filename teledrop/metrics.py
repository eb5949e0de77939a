"""Prometheus metrics, right under several gunicorn workers.

Workers share their figures through prometheus_client's multiprocess mode: the gunicorn
master sets ``PROMETHEUS_MULTIPROC_DIR`` (:func:`prepare_dir`) before any worker imports
prometheus_client. Every instrument is a counter or a histogram, whose files stay valid
after their worker exits (no live gauges to mark dead).
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import tempfile
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, \
    generate_latest, multiprocess, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from teledrop.core.config import Config
from teledrop.core.service import Teledrop

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Upload durations, from a small file on loopback to a large one over a slow link.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "gc_removed_counter", "prepare_dir",
           "use_configured_dir"]


class Metrics:
    """The app's instruments, in their own registry (a fresh app gets fresh counters)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.uploads = Counter("teledrop_uploads", "Drops created", registry=r)
        self.bytes_in = Counter("teledrop_upload_bytes", "Bytes stored by uploads", registry=r)
        self.downloads = Counter("teledrop_downloads", "Downloads served (200 and 206)",
                                 registry=r)
        self.bytes_out = Counter("teledrop_download_bytes", "Bytes sent by downloads",
                                 registry=r)
        self.deletes = Counter("teledrop_deletes", "Drops deleted by their token", registry=r)
        self.errors = Counter("teledrop_errors", "Error responses by code", ["code"], registry=r)
        self.upload_seconds = Histogram("teledrop_upload_duration_seconds",
                                        "Time from request start to drop created",
                                        buckets=DURATION_BUCKETS, registry=r)

    def exposition(self, service: Teledrop) -> bytes:
        """The text exposition: every process's counters, and the stored-drops gauge."""
        if os.environ.get(MULTIPROC_ENV):
            counted = CollectorRegistry()
            multiprocess.MultiProcessCollector(counted)
        else:
            counted = self.registry
        read_now = CollectorRegistry()
        read_now.register(StoredDrops(service))
        return generate_latest(counted) + generate_latest(read_now)


def gc_removed_counter(registry: CollectorRegistry | None = None) -> Counter:
    """``teledrop gc``'s one instrument. Labelled, so a process writes its multiprocess file
    only once it removes something: a gc run that removes nothing leaves no file."""
    return Counter("teledrop_gc_removed", "Items removed by teledrop gc", ["kind"],
                   registry=registry or CollectorRegistry())


class StoredDrops(Collector):
    """Read at scrape time from the metadata store: the one figure no process counts."""

    def __init__(self, service: Teledrop) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("teledrop_drops_stored", "Drops in the metadata store",
                                value=self.service.metadata.count())




def prepare_dir(config: Config) -> str:
    """In the gunicorn master, before workers fork: the shared directory, emptied of the
    previous run's files (their counters would otherwise carry over). Without a configured
    one, a temporary directory that goes when the master exits."""
    path = config.server.metrics_dir
    if not path:
        path = tempfile.mkdtemp(prefix="teledrop-metrics-")
        # Forked workers inherit the handler and run it when they exit: only the process
        # that made the directory removes it.
        atexit.register(_remove_if_made_by, os.getpid(), path)
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        os.unlink(stale)
    _share(path)
    return path


def _remove_if_made_by(pid: int, path: str) -> None:
    if os.getpid() == pid:
        shutil.rmtree(path, ignore_errors=True)


def use_configured_dir(config: Config) -> bool:
    """For a command beside the server (``teledrop gc``): count into the server's directory
    when the config names one."""
    if not config.server.metrics_dir:
        return False
    os.makedirs(config.server.metrics_dir, exist_ok=True)
    _share(config.server.metrics_dir)
    return True


def _share(path: str) -> None:
    """Switch metrics built from now on to the multiprocess files in ``path``."""
    os.environ[MULTIPROC_ENV] = os.path.abspath(path)
    # prometheus_client picks its value class at import; metrics built later must see this.
    values.ValueClass = values.get_value_class()

