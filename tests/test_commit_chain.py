"""The compensation chain (docs/plugins.md, docs/reliability.md), on the real default
plugins: local_storage on disk and sqlite_meta. Faults are injected by plugins
(tests/plugins/faults.py). Whatever fails inside the commit, no file and no record of
the failed upload is left; side effects are undone innermost first and the blob is
discarded last; the original error is the one the client sees; events come after the
commit and cannot undo it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from teledrop.core.drop import Drop
from teledrop.core.errors import (
    MetadataUnavailable, SlugTaken, StorageFull, TeledropError, Unavailable,
)
from teledrop.core.service import Teledrop
from teledrop.core.upload import Upload, UploadRequest, create_drop
from teledrop.plugins.commit_chain import replaced_error
from teledrop.web.app import service_of
from tests.http_helpers import post_json, put_json
from tests.plugins.faults import (
    BrokenDiscard, CreatedLog, FailingInsert, LogEntry, RaiseInCommit, RaisingEvents,
    SideEffect, SlugSequence, SlugThief, TryfirstSideEffect, UndoRaises,
)
from tests.support.uploads import sending


@pytest.fixture
def start(make_app: Callable[..., Flask]) -> Callable[..., Teledrop]:
    """``start(*plugins, **sections)``: a service on the real default plugins."""

    def make(*plugins: object, **sections: Any) -> Teledrop:
        return service_of(make_app(plugins=list(plugins), **sections))

    return make


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def staged(data_dir: Path) -> list[Path]:
    return files_under(data_dir / "files" / "staging")


def published(data_dir: Path) -> list[Path]:
    return files_under(data_dir / "files" / "blobs")


def records(service: Teledrop) -> list[Drop]:
    return list(service.metadata.iter_drops())


def upload(service: Teledrop, data: bytes = b"payload", receive: Callable[[Upload], None] | None
           = None, **query: str) -> Drop:
    req = UploadRequest(method="PUT", headers={}, query=query)
    return create_drop(service, req, receive or sending(data))


def assert_only(service: Teledrop, data_dir: Path, drops: Sequence[Drop] = ()) -> None:
    """Exactly ``drops`` are stored, each as one published file and one record."""
    assert staged(data_dir) == []
    assert sorted(p.name for p in published(data_dir)) == sorted(d.blob_id for d in drops)
    assert sorted(d.slug for d in records(service)) == sorted(d.slug for d in drops)


def failed_upload(service: Teledrop, error: type[BaseException], **kwargs: Any) -> BaseException:
    with pytest.raises(error) as info:
        upload(service, **kwargs)
    return info.value


# --- the chain's two ends ------------------------------------------------------------------

def test_commit_publishes_one_file_and_one_record(start, data_dir: Path) -> None:
    service = start()
    drop = upload(service, b"payload")
    assert_only(service, data_dir, [drop])
    (path,) = published(data_dir)
    assert path.read_bytes() == b"payload"
    assert service.metadata.get(drop.slug).blob_id == drop.blob_id


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("error", [RuntimeError("plugin bug"), StorageFull(),
                                   MetadataUnavailable(), KeyboardInterrupt()],
                         ids=["RuntimeError", "StorageFull", "MetadataUnavailable",
                              "KeyboardInterrupt"])
def test_commit_raising_leaves_no_file_and_no_record(start, data_dir: Path, when: str,
                                                     error: BaseException) -> None:
    fault = RaiseInCommit(error, when)
    service = start(fault)
    fault.armed = False
    earlier = [upload(service, b"earlier", slug=f"earlier-{i}") for i in range(2)]
    fault.armed = True
    raised = failed_upload(service, type(error))
    assert raised is error
    assert_only(service, data_dir, earlier)


def test_metadata_insert_failure_removes_the_published_file(start, tmp_path: Path,
                                                            data_dir: Path) -> None:
    service = start(FailingInsert(str(tmp_path / "failing.db")),
                    metadata={"plugin": "failing_sqlite"})
    err = failed_upload(service, MetadataUnavailable)
    assert err.status == 503
    assert_only(service, data_dir)


# --- saga order ----------------------------------------------------------------------------

def names(log: list[LogEntry], action: str) -> list[str]:
    return [name for act, name, _ in log if act == action]


def test_side_effects_undone_in_reverse_order_before_the_blob(start, data_dir: Path) -> None:
    log: list[LogEntry] = []
    inner, middle = SideEffect(log, "inner"), SideEffect(log, "middle")
    outer = TryfirstSideEffect(log, "outer")
    # Later registrations wrap earlier ones; tryfirst asks for the outside.
    service = start(RaiseInCommit(RuntimeError("boom")), inner, middle, outer)
    failed_upload(service, RuntimeError)
    assert names(log, "do") == ["outer", "middle", "inner"]
    assert names(log, "undo") == ["inner", "middle", "outer"]
    # The blob was published before any plugin ran and discarded after every undo.
    assert all(present for _, _, present in log), log
    assert_only(service, data_dir)


def test_side_effects_not_undone_when_commit_succeeds(start, data_dir: Path) -> None:
    log: list[LogEntry] = []
    service = start(SideEffect(log, "a"), TryfirstSideEffect(log, "b"))
    drop = upload(service)
    assert names(log, "do") == ["b", "a"] and names(log, "undo") == []
    assert_only(service, data_dir, [drop])


def test_undo_that_raises_does_not_replace_the_original_error(start, data_dir: Path) -> None:
    log: list[LogEntry] = []
    thief = SlugThief()
    service = start(thief, UndoRaises(log, "undo-raises"), SideEffect(log, "outer"))
    thief.metadata = service.metadata
    err = failed_upload(service, TeledropError, slug="wanted")
    assert isinstance(err, SlugTaken) and err.status == 409, repr(err)
    assert names(log, "undo") == ["undo-raises", "outer"]
    assert staged(data_dir) == [] and published(data_dir) == []
    assert [d.slug for d in records(service)] == ["wanted"]  # the thief's record only


def raised_while_handling(handled: BaseException, raised: BaseException) -> BaseException:
    try:
        try:
            raise handled
        except BaseException:
            raise raised
    except BaseException as exc:
        return exc


def test_only_an_undos_failure_is_replaced_never_a_shutdown() -> None:
    taken = SlugTaken("taken")
    assert replaced_error(raised_while_handling(taken, RuntimeError("undo bug"))) is taken
    assert replaced_error(raised_while_handling(taken, KeyboardInterrupt())) is None
    assert replaced_error(raised_while_handling(taken, SystemExit(1))) is None
    assert replaced_error(RuntimeError("no teledrop error before it")) is None


def test_failing_blob_discard_does_not_replace_the_original_error(start,
                                                                  data_dir: Path) -> None:
    broken = BrokenDiscard()
    service = start(RaiseInCommit(StorageFull("disk full")), broken)
    err = failed_upload(service, StorageFull)
    assert err.message == "disk full"
    assert broken.discards >= 1
    assert_only(service, data_dir)


# --- slugs at insert -------------------------------------------------------------------

def test_custom_slug_taken_at_insert_leaves_nothing_of_the_loser(start, data_dir: Path) -> None:
    service = start()
    winner: list[Drop] = []

    def racing(upload_: Upload) -> None:
        # The slug was free when checked; another upload commits it while this one streams.
        winner.append(upload(service, b"winner", slug="contested"))
        sending(b"loser")(upload_)

    with pytest.raises(SlugTaken):
        upload(service, receive=racing, slug="contested")
    assert_only(service, data_dir, winner)
    assert service.metadata.get("contested").blob_id == winner[0].blob_id
    assert published(data_dir)[0].read_bytes() == b"winner"


def test_generated_slug_already_taken_is_replaced(start, data_dir: Path) -> None:
    sequence = SlugSequence([])
    service = start(sequence)
    sequence.slugs = ["taken-slug"]  # after the start-up's sample slugs
    existing = upload(service, b"first", slug="taken-slug")
    drop = upload(service, b"second")
    assert drop.slug != "taken-slug" and sequence.calls >= 2
    assert_only(service, data_dir, [existing, drop])
    assert service.metadata.get("taken-slug").blob_id == existing.blob_id


def test_generated_slug_taken_at_insert_is_retried(start, data_dir: Path) -> None:
    thief = SlugThief()
    sequence = SlugSequence([])
    service = start(sequence, thief)
    sequence.slugs = ["racey-slug"]
    thief.metadata = service.metadata
    drop = upload(service, b"mine")
    assert thief.stolen == ["racey-slug"]
    assert drop.slug != "racey-slug"
    assert service.metadata.get(drop.slug).blob_id == drop.blob_id
    assert [p.name for p in published(data_dir)] == [drop.blob_id]
    assert sorted(d.slug for d in records(service)) == sorted(["racey-slug", drop.slug])


def test_no_free_generated_slug_gives_up_cleanly(start, data_dir: Path) -> None:
    service = start(SlugSequence(["taken-slug"], forever=True))
    existing = upload(service, b"first", slug="taken-slug")
    err = failed_upload(service, Unavailable)
    assert err.status == 503
    assert_only(service, data_dir, [existing])


# --- events --------------------------------------------------------------------------------

def test_created_event_fires_after_commit(start, data_dir: Path) -> None:
    holder: list[Teledrop] = []
    log = CreatedLog(lambda drop: (drop.slug, holder[0].metadata.get(drop.slug) is not None,
                                   [p.name for p in published(data_dir)] == [drop.blob_id]))
    holder.append(start(log))
    drop = upload(holder[0])
    assert log.seen == [(drop.slug, True, True)]


def test_created_event_not_fired_when_commit_fails(start) -> None:
    log = CreatedLog()
    service = start(log, RaiseInCommit(RuntimeError("boom")))
    failed_upload(service, RuntimeError)
    assert log.seen == []


def test_raising_event_plugin_does_not_undo_the_drop(start, data_dir: Path) -> None:
    log = CreatedLog()
    service = start(RaisingEvents(), log, RaisingEvents())
    drop = upload(service)
    assert log.seen == [drop.slug]
    assert_only(service, data_dir, [drop])


def test_raising_event_plugin_over_http_still_gives_201(make_app, data_dir: Path) -> None:
    app = make_app(plugins=[RaisingEvents()])
    response = app.test_client().put("/a.txt", data=b"abc")
    assert response.status_code == 201
    assert len(published(data_dir)) == 1 and len(records(service_of(app))) == 1


# --- through HTTP ----------------------------------------------------------------------

@pytest.mark.parametrize("send", [post_json, put_json], ids=["POST", "PUT"])
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize(("error", "status", "code"), [
    (RuntimeError("plugin bug"), 500, "error"),
    (SlugTaken(), 409, "slug_taken"),
    (StorageFull(), 507, "storage_full"),
    (MetadataUnavailable(), 503, "metadata_unavailable"),
], ids=["RuntimeError", "SlugTaken", "StorageFull", "MetadataUnavailable"])
def test_chain_fault_over_http(make_app, data_dir: Path, send: Callable[..., Any], when: str,
                               error: BaseException, status: int, code: str) -> None:
    app = make_app(plugins=[RaiseInCommit(error, when)])
    response = send(app.test_client())
    assert response.status_code == status, response.data
    assert response.get_json()["error"]["code"] == code
    assert "Traceback" not in response.get_data(as_text=True)
    assert "X-Delete-Token" not in response.headers
    assert staged(data_dir) == [] and published(data_dir) == []
    assert records(service_of(app)) == []


def test_slug_race_over_http_is_409_even_when_an_undo_fails(make_app, data_dir: Path) -> None:
    log: list[LogEntry] = []
    thief = SlugThief()
    app = make_app(plugins=[thief, UndoRaises(log)])
    thief.metadata = service_of(app).metadata
    response = post_json(app.test_client(), slug="wanted")
    assert response.status_code == 409, response.data
    assert response.get_json()["error"]["code"] == "slug_taken"
    assert staged(data_dir) == [] and published(data_dir) == []
