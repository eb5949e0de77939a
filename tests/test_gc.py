"""teledrop.core.gc.collect on a real app (local_storage + sqlite_meta): it removes gone
drops (record and file) and debris older than the limit, keeps everything live or young
(a blob published a moment before its record must survive), reports without removing on a
dry run, and announces each removed drop with its reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

import teledrop.core.gc as gc_module
from teledrop import hookimpl
from teledrop.core.drop import Drop, now
from teledrop.core.errors import BlobMissing
from teledrop.core.gc import Removal, collect
from teledrop.core.service import Teledrop
from teledrop.web.app import service_of
from tests.store_helpers import aged, blob_file, debris, download, orphan, upload

HOUR = 3600


class DeletedEvents:
    """Records every teledrop_drop_deleted event."""

    teledrop_plugin_name = "deleted_events"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    @hookimpl
    def teledrop_drop_deleted(self, drop: Drop, reason: str) -> None:
        self.seen.append((drop.slug, reason))


@pytest.fixture
def events() -> DeletedEvents:
    return DeletedEvents()


@pytest.fixture
def gc_app(make_app: Callable[..., Flask], events: DeletedEvents) -> Flask:
    return make_app(plugins=[events])


@pytest.fixture
def service(gc_app: Flask) -> Teledrop:
    return service_of(gc_app)


@pytest.fixture
def root(service: Teledrop) -> Path:
    return Path(service.storage.root)  # type: ignore[attr-defined]














def run_later(monkeypatch: pytest.MonkeyPatch, seconds: int) -> None:
    """Run gc as if ``seconds`` had passed (file ages are unaffected)."""
    at = now() + seconds
    monkeypatch.setattr(gc_module, "now", lambda: at)


def assert_removed(service: Teledrop, root: Path, drop: Drop) -> None:
    assert service.metadata.get(drop.slug) is None
    assert not blob_file(root, drop.blob_id).exists()
    with pytest.raises(BlobMissing):
        service.storage.open(drop.blob_id)


def assert_kept(service: Teledrop, root: Path, drop: Drop) -> None:
    assert service.metadata.get(drop.slug) is not None
    assert blob_file(root, drop.blob_id).exists()


def keys(removals: list[Removal]) -> set[tuple[str, str]]:
    return {(r.kind, r.name) for r in removals}


# -- gone drops ----------------------------------------------------------------------------

def test_expired_drop_is_removed_and_live_one_kept(gc_app: Flask, service: Teledrop, root: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    short = upload(gc_app, expires="60")
    long = upload(gc_app, expires="1d")
    run_later(monkeypatch, 120)
    removals = list(collect(service))
    assert removals == [Removal("drop", short.slug, "expired")]
    assert_removed(service, root, short)
    assert_kept(service, root, long)


def test_exhausted_drop_is_removed(gc_app: Flask, service: Teledrop, root: Path) -> None:
    exhausted = upload(gc_app, max_downloads="1")
    one_left = upload(gc_app, max_downloads="2")
    download(gc_app, exhausted)
    download(gc_app, one_left)
    assert list(collect(service)) == [Removal("drop", exhausted.slug, "exhausted")]
    assert_removed(service, root, exhausted)
    assert_kept(service, root, one_left)


def test_nothing_to_do_removes_nothing(gc_app: Flask, service: Teledrop, root: Path) -> None:
    drop = upload(gc_app)
    assert list(collect(service)) == []
    assert_kept(service, root, drop)


def test_old_blob_of_a_live_drop_is_kept(gc_app: Flask, service: Teledrop, root: Path) -> None:
    drop = upload(gc_app)
    aged(blob_file(root, drop.blob_id), 10 * HOUR)
    assert list(collect(service)) == []
    assert_kept(service, root, drop)


def test_gone_drop_whose_file_is_already_missing_loses_its_record(
        gc_app: Flask, service: Teledrop, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drop = upload(gc_app, expires="60")
    blob_file(root, drop.blob_id).unlink()
    run_later(monkeypatch, 120)
    assert list(collect(service)) == [Removal("drop", drop.slug, "expired")]
    assert service.metadata.get(drop.slug) is None


def test_deleted_events_carry_the_reason(gc_app: Flask, service: Teledrop,
                                         events: DeletedEvents,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    expired = upload(gc_app, expires="60")
    exhausted = upload(gc_app, max_downloads="1")
    download(gc_app, exhausted)
    run_later(monkeypatch, 120)
    list(collect(service))
    assert sorted(events.seen) == sorted([(expired.slug, "expired"),
                                          (exhausted.slug, "exhausted")])


# -- staging debris and record-less blobs ---------------------------------------------------

def test_old_staging_debris_is_removed_young_kept(service: Teledrop, root: Path) -> None:
    old = debris(root, 2 * HOUR).name
    young = debris(root, 10 * 60).name
    removals = list(collect(service))
    assert keys(removals) == {("staging", old)}
    assert not (root / "staging" / old).exists()
    assert (root / "staging" / young).exists()


def test_staging_limit_is_the_given_age(service: Teledrop, root: Path) -> None:
    older = debris(root, 10 * 60).name
    younger = debris(root, 60).name
    assert keys(list(collect(service, older_than=5 * 60))) == {("staging", older)}
    assert (root / "staging" / younger).exists()


def test_live_upload_in_staging_is_kept(service: Teledrop, root: Path) -> None:
    writer = service.storage.stage()
    try:
        writer.write(b"still arriving")
        assert list(collect(service, older_than=60)) == []
        writer.write(b" and more")
        writer.publish()
    finally:
        writer.close()
    with service.storage.open(writer.blob_id) as f:
        assert f.read() == b"still arriving and more"


def test_old_record_less_blob_is_removed(service: Teledrop, root: Path) -> None:
    blob_id = orphan(service, root, 2 * HOUR)
    assert list(collect(service)) == [Removal("orphan", blob_id, "no record")]
    assert not blob_file(root, blob_id).exists()


def test_blob_published_moments_ago_without_its_record_survives(service: Teledrop,
                                                                root: Path) -> None:
    # Its upload may be between publish and insert right now.
    blob_id = orphan(service, root, 0)
    assert list(collect(service, older_than=60)) == []
    assert blob_file(root, blob_id).exists()


# -- dry run -------------------------------------------------------------------------------

def test_dry_run_reports_the_same_and_removes_nothing(
        gc_app: Flask, service: Teledrop, root: Path, events: DeletedEvents,
        monkeypatch: pytest.MonkeyPatch) -> None:
    expired = upload(gc_app, expires="60")
    exhausted = upload(gc_app, max_downloads="1")
    download(gc_app, exhausted)
    staged = debris(root, 2 * HOUR).name
    blob_id = orphan(service, root, 2 * HOUR)
    run_later(monkeypatch, 120)

    dry = list(collect(service, dry_run=True))
    expected = {("drop", expired.slug), ("drop", exhausted.slug), ("staging", staged),
                ("orphan", blob_id)}
    assert keys(dry) == expected
    assert_kept(service, root, expired)
    assert_kept(service, root, exhausted)
    assert (root / "staging" / staged).exists()
    assert blob_file(root, blob_id).exists()
    assert events.seen == []

    real = list(collect(service))
    assert keys(real) == expected
    assert {(r.kind, r.name, r.reason) for r in real if r.kind != "staging"} == \
           {(r.kind, r.name, r.reason) for r in dry if r.kind != "staging"}
    assert_removed(service, root, expired)
    assert_removed(service, root, exhausted)
    assert not (root / "staging" / staged).exists()
    assert not blob_file(root, blob_id).exists()
    assert list(collect(service)) == []
