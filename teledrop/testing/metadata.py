"""The metadata contract suite: see :mod:`teledrop.testing` for how a backend runs it."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from teledrop.core.drop import Drop, now
from teledrop.core.errors import SlugTaken, TokenExists
from teledrop.core.interfaces import DIRECT, DropQuery, Metadata, TokenRecord, UploadState

#: Threads racing in the concurrency tests.
RACERS = 12
_serial = itertools.count()


def sample_drop(**fields: Any) -> Drop:
    """A drop with a fresh slug and blob id and every field set to a value that tells
    a lossy store apart (a size past 32 bits, a non-ASCII filename, ``custom_slug``)."""
    created = now()
    values: dict[str, Any] = {
        "slug": f"s{next(_serial)}-{uuid.uuid4().hex[:10]}",
        "blob_id": uuid.uuid4().hex,
        "filename": "Rapport d'été \"final\" 📄.pdf",
        "size": 5 * 1024**3 + 7,
        "content_type": "application/pdf",
        "hash": "blake3:" + "0123456789abcdef" * 4,
        "created_at": created,
        "expires_at": created + 7 * 86400,
        "max_downloads": 3,
        "downloads": 0,
        "delete_token_hash": "sha256:" + "fedcba9876543210" * 4,
        "custom_slug": True,
    }
    values.update(fields)
    return Drop(**values)


def sample_upload(**fields: Any) -> UploadState:
    """A resumable upload with every field set to a value a lossy store would change."""
    created = now()
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex + uuid.uuid4().hex[:8],
        "blob_id": uuid.uuid4().hex,
        "length": 5 * 1024**3 + 7,
        "offset": 0,
        "metadata": "filename UmFwcG9ydCDwn5OELnBkZg==,unknown",
        "filename": "Rapport 📄.pdf",
        "content_type": "application/pdf",
        "options": '{"given": {"slug": "été"}, "password_hash": null}',
        "owner": "alice",
        "created_at": created,
        "expires_at": created + 86400,
        "storage_state": '{"parts": []}',
    }
    values.update(fields)
    return UploadState(**values)


def record(drop: Drop | None) -> dict[str, Any] | None:
    """What a store must keep of a drop: every field but the delete token itself."""
    if drop is None:
        return None
    data = dataclasses.asdict(drop)
    del data["delete_token"]
    return data


def race(count: int, action: Callable[[], Any], metadata: Metadata, *,
         close: bool = True) -> list[Any]:
    """Run ``action`` in ``count`` threads released together; each result, or the
    exception it raised, in a list. Each thread ends with ``metadata.close()`` (a
    thread's own connection, in a store that keeps one per thread) unless ``close`` is
    false: a pooled store closes its idle connections there, under the other threads."""
    barrier = threading.Barrier(count)
    outcomes: list[Any] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            barrier.wait()
            outcome = action()
        except BaseException as exc:  # noqa: BLE001 - the caller judges every outcome
            outcome = exc
        finally:
            if close:
                metadata.close()  # this thread's connection
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


class MetadataContract:
    """Subclass as ``Test<YourMetadata>`` and provide a ``metadata`` fixture."""

    @pytest.fixture
    def metadata(self) -> Metadata:
        raise NotImplementedError("a MetadataContract subclass must provide a `metadata` fixture")

    def stored(self, metadata: Metadata, **fields: Any) -> Drop:
        drop = sample_drop(**fields)
        metadata.insert(drop)
        return drop

    # -- insert and get -----------------------------------------------------------------

    def test_satisfies_the_protocol(self, metadata: Metadata) -> None:
        assert isinstance(metadata, Metadata)

    def test_every_field_round_trips(self, metadata: Metadata) -> None:
        drop = self.stored(metadata)
        got = metadata.get(drop.slug)
        assert record(got) == record(drop)
        assert got is not None
        assert got.custom_slug is True
        assert type(got.size) is int and type(got.created_at) is int

    def test_unlimited_generated_drop_round_trips(self, metadata: Metadata) -> None:
        drop = self.stored(metadata, max_downloads=None, custom_slug=False, size=0,
                           filename="a", downloads=0)
        got = metadata.get(drop.slug)
        assert record(got) == record(drop)
        assert got is not None and got.max_downloads is None and got.custom_slug is False

    def test_delete_token_itself_is_never_stored(self, metadata: Metadata) -> None:
        drop = sample_drop()
        drop.delete_token = "the-secret-token"
        metadata.insert(drop)
        got = metadata.get(drop.slug)
        assert got is not None and got.delete_token is None
        assert got.delete_token_hash == drop.delete_token_hash

    def test_store_keeps_its_own_copy(self, metadata: Metadata) -> None:
        drop = self.stored(metadata)
        drop.downloads = 99
        got = metadata.get(drop.slug)
        assert got is not None and got.downloads == 0
        got.filename = "changed"
        again = metadata.get(drop.slug)
        assert again is not None and again.filename == drop.filename

    def test_get_of_an_unknown_slug_is_none(self, metadata: Metadata) -> None:
        assert metadata.get("no-such-slug") is None

    def test_get_returns_gone_drops(self, metadata: Metadata) -> None:
        drop = self.stored(metadata, expires_at=now() - 10, max_downloads=1, downloads=1)
        assert record(metadata.get(drop.slug)) == record(drop)

    def test_slugs_are_case_sensitive(self, metadata: Metadata) -> None:
        # Generated slugs mix cases: folding them would merge distinct links.
        upper = self.stored(metadata, slug="CaseSlug")
        lower = self.stored(metadata, slug="caseslug")
        assert metadata.get("CaseSlug").blob_id == upper.blob_id  # type: ignore[union-attr]
        assert metadata.get("caseslug").blob_id == lower.blob_id  # type: ignore[union-attr]

    def test_duplicate_slug_raises_slug_taken_and_keeps_the_first(self, metadata: Metadata) -> None:
        first = self.stored(metadata)
        second = sample_drop(slug=first.slug, filename="second.txt", max_downloads=None)
        with pytest.raises(SlugTaken):
            metadata.insert(second)
        assert record(metadata.get(first.slug)) == record(first)
        assert second.blob_id not in metadata.blob_ids()

    def test_slug_is_free_again_after_delete(self, metadata: Metadata) -> None:
        first = self.stored(metadata)
        metadata.delete(first.slug)
        second = self.stored(metadata, slug=first.slug)
        assert record(metadata.get(first.slug)) == record(second)

    # -- claim_download -----------------------------------------------------------------

    def test_claim_download_counts_and_returns_the_counted_drop(self, metadata: Metadata) -> None:
        drop = self.stored(metadata, max_downloads=None)
        at = drop.created_at + 1
        for expected in (1, 2, 3):
            claimed = metadata.claim_download(drop.slug, at)
            assert claimed is not None
            assert claimed.downloads == expected
            assert record(claimed) == record(dataclasses.replace(drop, downloads=expected))
        assert metadata.get(drop.slug).downloads == 3  # type: ignore[union-attr]

    def test_claim_download_refuses_past_max_downloads(self, metadata: Metadata) -> None:
        drop = self.stored(metadata, max_downloads=2)
        at = drop.created_at + 1
        assert metadata.claim_download(drop.slug, at) is not None
        assert metadata.claim_download(drop.slug, at) is not None
        assert metadata.claim_download(drop.slug, at) is None
        assert metadata.claim_download(drop.slug, at) is None
        assert metadata.get(drop.slug).downloads == 2  # type: ignore[union-attr]

    def test_claim_download_refuses_from_the_expiry_second_on(self, metadata: Metadata) -> None:
        drop = self.stored(metadata, max_downloads=None)
        assert metadata.claim_download(drop.slug, drop.expires_at) is None
        assert metadata.claim_download(drop.slug, drop.expires_at + 3600) is None
        assert metadata.get(drop.slug).downloads == 0  # type: ignore[union-attr]
        claimed = metadata.claim_download(drop.slug, drop.expires_at - 1)
        assert claimed is not None and claimed.downloads == 1

    def test_claim_download_of_an_unknown_slug_is_none(self, metadata: Metadata) -> None:
        assert metadata.claim_download("no-such-slug", now()) is None

    def test_claim_download_counts_only_its_own_drop(self, metadata: Metadata) -> None:
        claimed = self.stored(metadata)
        other = self.stored(metadata)
        metadata.claim_download(claimed.slug, claimed.created_at)
        assert metadata.get(other.slug).downloads == 0  # type: ignore[union-attr]

    def test_concurrent_claims_take_exactly_max_downloads(self, metadata: Metadata) -> None:
        limit = 5
        drop = self.stored(metadata, max_downloads=limit)
        outcomes = race(RACERS, lambda: metadata.claim_download(drop.slug, drop.created_at),
                        metadata)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        assert errors == []
        won = [o for o in outcomes if o is not None]
        assert len(won) == limit
        assert sorted(o.downloads for o in won) == list(range(1, limit + 1))
        assert metadata.get(drop.slug).downloads == limit  # type: ignore[union-attr]

    def test_concurrent_claims_without_a_limit_are_each_counted(self, metadata: Metadata) -> None:
        drop = self.stored(metadata, max_downloads=None)
        outcomes = race(RACERS, lambda: metadata.claim_download(drop.slug, drop.created_at),
                        metadata)
        assert [o for o in outcomes if not isinstance(o, Drop)] == []
        assert sorted(o.downloads for o in outcomes) == list(range(1, RACERS + 1))
        assert metadata.get(drop.slug).downloads == RACERS  # type: ignore[union-attr]

    # -- concurrent insert --------------------------------------------------------------

    def test_concurrent_inserts_of_one_slug_have_one_winner(self, metadata: Metadata) -> None:
        slug = f"contested-{uuid.uuid4().hex[:8]}"
        contenders = iter([sample_drop(slug=slug) for _ in range(RACERS)])
        lock = threading.Lock()

        def insert() -> str:
            with lock:
                drop = next(contenders)
            metadata.insert(drop)
            return drop.blob_id

        outcomes = race(RACERS, insert, metadata)
        winners = [o for o in outcomes if isinstance(o, str)]
        losers = [o for o in outcomes if isinstance(o, SlugTaken)]
        assert len(winners) == 1
        assert len(losers) == RACERS - 1, [o for o in outcomes if o not in winners + losers]
        assert metadata.get(slug).blob_id == winners[0]  # type: ignore[union-attr]

    # -- delete -------------------------------------------------------------------------

    def test_delete_returns_the_removed_drop_then_none(self, metadata: Metadata) -> None:
        drop = self.stored(metadata)
        metadata.claim_download(drop.slug, drop.created_at)
        removed = metadata.delete(drop.slug)
        assert record(removed) == record(dataclasses.replace(drop, downloads=1))
        assert metadata.get(drop.slug) is None
        assert metadata.delete(drop.slug) is None

    def test_delete_of_a_drop_whose_slug_was_taken_again_removes_nothing(
            self, metadata: Metadata) -> None:
        # A reader saw the first drop; the slug was freed and taken by another meanwhile.
        first = self.stored(metadata)
        assert metadata.delete(first.slug, first.blob_id) is not None
        second = self.stored(metadata, slug=first.slug)
        assert metadata.delete(first.slug, first.blob_id) is None
        assert record(metadata.get(first.slug)) == record(second)
        assert record(metadata.delete(second.slug, second.blob_id)) == record(second)
        assert metadata.get(first.slug) is None

    def test_concurrent_deletes_return_the_drop_once(self, metadata: Metadata) -> None:
        drop = self.stored(metadata)
        outcomes = race(RACERS, lambda: metadata.delete(drop.slug, drop.blob_id), metadata)
        removed = [o for o in outcomes if o is not None]
        assert len(removed) == 1 and record(removed[0]) == record(drop), outcomes
        assert metadata.get(drop.slug) is None

    def test_delete_removes_only_its_drop(self, metadata: Metadata) -> None:
        doomed = self.stored(metadata)
        kept = self.stored(metadata)
        metadata.delete(doomed.slug)
        assert record(metadata.get(kept.slug)) == record(kept)

    def test_delete_if_gone_keeps_a_live_drop(self, metadata: Metadata) -> None:
        drop = self.stored(metadata, max_downloads=2, downloads=1)
        assert metadata.delete_if_gone(drop.slug, drop.expires_at - 1) is None
        assert record(metadata.get(drop.slug)) == record(drop)

    def test_delete_if_gone_removes_an_expired_drop(self, metadata: Metadata) -> None:
        drop = self.stored(metadata, max_downloads=None)
        assert record(metadata.delete_if_gone(drop.slug, drop.expires_at)) == record(drop)
        assert metadata.get(drop.slug) is None

    def test_delete_if_gone_removes_an_exhausted_drop(self, metadata: Metadata) -> None:
        drop = self.stored(metadata, max_downloads=1)
        metadata.claim_download(drop.slug, drop.created_at)
        removed = metadata.delete_if_gone(drop.slug, drop.created_at)
        assert removed is not None and removed.downloads == 1
        assert metadata.get(drop.slug) is None

    def test_delete_if_gone_of_an_unknown_slug_is_none(self, metadata: Metadata) -> None:
        assert metadata.delete_if_gone("no-such-slug", now()) is None

    def test_concurrent_gc_runs_remove_a_gone_drop_once(self, metadata: Metadata) -> None:
        # Two gc runs (on two hosts) both listed the drop: one of them removes its blob.
        drop = self.stored(metadata, expires_at=now() - 1)
        outcomes = race(RACERS, lambda: metadata.delete_if_gone(drop.slug, now()), metadata)
        removed = [o for o in outcomes if o is not None]
        assert len(removed) == 1 and record(removed[0]) == record(drop), outcomes
        assert metadata.get(drop.slug) is None

    # -- listing ------------------------------------------------------------------------

    def test_list_gone_finds_expired_and_exhausted_drops(self, metadata: Metadata) -> None:
        at = now()
        live = self.stored(metadata, expires_at=at + 1, max_downloads=2, downloads=1)
        unlimited = self.stored(metadata, expires_at=at + 1, max_downloads=None, downloads=50)
        expired = self.stored(metadata, expires_at=at, max_downloads=None)
        long_expired = self.stored(metadata, expires_at=at - 86400)
        exhausted = self.stored(metadata, expires_at=at + 86400, max_downloads=2, downloads=2)
        gone = {d.slug: d for d in metadata.list_gone(at)}
        assert {expired.slug, long_expired.slug, exhausted.slug} <= set(gone)
        assert live.slug not in gone and unlimited.slug not in gone
        assert record(gone[exhausted.slug]) == record(exhausted)

    def test_list_gone_is_empty_when_nothing_is_gone(self, metadata: Metadata) -> None:
        drop = self.stored(metadata)
        assert drop.slug not in {d.slug for d in metadata.list_gone(drop.created_at)}

    def test_iter_drops_yields_every_drop(self, metadata: Metadata) -> None:
        drops = [self.stored(metadata, expires_at=now() - n) for n in range(3)]
        listed = {d.slug: d for d in metadata.iter_drops()}
        for drop in drops:
            assert record(listed[drop.slug]) == record(drop)
        metadata.delete(drops[0].slug)
        assert drops[0].slug not in {d.slug for d in metadata.iter_drops()}

    def test_blob_ids_names_the_blob_of_every_record(self, metadata: Metadata) -> None:
        drops = [self.stored(metadata) for _ in range(3)]
        ids = metadata.blob_ids()
        assert isinstance(ids, set)
        assert {d.blob_id for d in drops} <= ids
        metadata.delete(drops[0].slug)
        assert drops[0].blob_id not in metadata.blob_ids()

    def test_count_is_the_number_of_records(self, metadata: Metadata) -> None:
        before = metadata.count()
        drops = [self.stored(metadata) for _ in range(3)]
        assert metadata.count() == before + 3
        metadata.delete(drops[0].slug)
        assert metadata.count() == before + 2

    def test_total_size_sums_every_record_gone_ones_included(self, metadata: Metadata) -> None:
        before = metadata.total_size()
        assert isinstance(before, int)
        sizes = (0, 1000, 5 * 1024**3 + 7)  # past 32 bits
        drops = [self.stored(metadata, size=size) for size in sizes]
        self.stored(metadata, size=234, expires_at=now() - 1)
        assert metadata.total_size() == before + sum(sizes) + 234
        assert type(metadata.total_size()) is int
        metadata.delete(drops[2].slug)
        assert metadata.total_size() == before + 1234

    def test_check_passes_on_a_healthy_store(self, metadata: Metadata) -> None:
        assert metadata.check() is None

    # -- owners (schema 2) --------------------------------------------------------------

    def test_owner_fields_round_trip(self, metadata: Metadata) -> None:
        drop = self.stored(metadata, owner="alice", title="Été 📄", description="two\nlines",
                           private=True, password_hash="$argon2id$v=19$stand-in")
        assert record(metadata.get(drop.slug)) == record(drop)

    def test_update_changes_only_the_named_fields(self, metadata: Metadata) -> None:
        drop = self.stored(metadata, owner="alice", max_downloads=3)
        updated = metadata.update(drop.slug, {"title": "new", "max_downloads": None,
                                              "private": True, "password_hash": "h"})
        assert updated is not None and record(updated) == record(dataclasses.replace(
            drop, title="new", max_downloads=None, private=True, password_hash="h"))
        assert record(metadata.get(drop.slug)) == record(updated)
        assert metadata.update("no-such-slug", {"title": "x"}) is None

    def test_update_of_a_drop_whose_slug_was_taken_again_changes_nothing(
            self, metadata: Metadata) -> None:
        first = self.stored(metadata, owner="alice")
        metadata.delete(first.slug)
        second = self.stored(metadata, slug=first.slug, owner="bob", title="bob's")
        assert metadata.update(first.slug, {"title": "alice's", "private": True},
                               first.blob_id) is None
        assert metadata.update(first.slug, {}, first.blob_id) is None
        assert record(metadata.get(first.slug)) == record(second)
        updated = metadata.update(second.slug, {"title": "new"}, second.blob_id)
        assert record(updated) == record(dataclasses.replace(second, title="new"))
        assert record(metadata.update(second.slug, {}, second.blob_id)) == record(updated)

    def test_list_owned_pages_sorts_and_filters(self, metadata: Metadata) -> None:
        owner = f"owner-{uuid.uuid4().hex[:8]}"
        at = now()
        drops = [self.stored(metadata, owner=owner, size=size, filename=name, title=title,
                             private=private, password_hash=pw, expires_at=at + offset)
                 for size, name, title, private, pw, offset in (
                     (30, "b.txt", "Holiday", False, None, 100),
                     (10, "a.txt", "report", True, "h", -5),
                     (20, "c.txt", "", False, None, 100))]
        self.stored(metadata, owner="someone-else", filename="a.txt")

        def slugs(**query: Any) -> tuple[int, list[str]]:
            total, page = metadata.list_owned(DropQuery(owner=owner, at=at, **query))
            return total, [d.slug for d in page]

        by_size = [drops[1].slug, drops[2].slug, drops[0].slug]
        assert slugs(sort="size", order="asc") == (3, by_size)
        assert slugs(sort="size", order="desc") == (3, by_size[::-1])
        assert slugs(sort="filename", order="asc", page=2, page_size=2) == (3, [drops[2].slug])
        assert slugs(private=True) == (1, [drops[1].slug])
        assert slugs(has_password=False, sort="size", order="asc")[1] == [drops[2].slug,
                                                                          drops[0].slug]
        assert slugs(expired=True) == (1, [drops[1].slug])
        assert slugs(search="HOLI") == (1, [drops[0].slug])
        assert slugs(search="%") == (0, [])

    def test_search_folds_case_for_all_of_unicode_and_means_every_character(
            self, metadata: Metadata) -> None:
        owner = f"owner-{uuid.uuid4().hex[:8]}"
        at = now()
        elan = self.stored(metadata, owner=owner, filename="Élan-Report.txt")
        greek = self.stored(metadata, owner=owner, filename="a.txt", title="ΣΟΦΊΑ")
        literal = self.stored(metadata, owner=owner, filename="100%_done.txt")
        spaced = self.stored(metadata, owner=owner, filename="100 xdone.txt")

        def found(search: str) -> set[str]:
            total, page = metadata.list_owned(DropQuery(owner=owner, at=at, search=search))
            assert total == len(page)
            return {d.slug for d in page}

        for search in ("Élan", "élan", "ÉLAN", "-report"):
            assert found(search) == {elan.slug}, search
        assert found("σοφία") == {greek.slug}
        assert found("%_") == {literal.slug}
        assert found("0%") == {literal.slug}
        assert found("0_d") == set()
        assert found("100 x") == {spaced.slug}

    def test_password_failures_count_within_a_window(self, metadata: Metadata) -> None:
        drop = self.stored(metadata)
        at = now()
        assert metadata.password_failures(drop.slug, at, 60) == 0
        assert [metadata.note_password_failure(drop.slug, at, 60) for _ in range(3)] == [1, 2, 3]
        metadata.forgive_password_failure(drop.slug)
        assert metadata.password_failures(drop.slug, at + 59, 60) == 2
        assert metadata.password_failures(drop.slug, at + 60, 60) == 0
        assert metadata.note_password_failure(drop.slug, at + 60, 60) == 1

    def test_password_failures_are_counted_atomically(self, metadata: Metadata) -> None:
        drop = self.stored(metadata)
        at = now()
        counts = race(RACERS, lambda: metadata.note_password_failure(drop.slug, at, 60),
                      metadata)
        assert sorted(counts) == list(range(1, RACERS + 1))
        assert metadata.password_failures(drop.slug, at, 60) == RACERS
        forgiven = race(RACERS + 3, lambda: metadata.forgive_password_failure(drop.slug),
                        metadata)
        assert forgiven == [None] * (RACERS + 3)
        assert metadata.password_failures(drop.slug, at, 60) == 0  # never below none
        assert metadata.note_password_failure(drop.slug, at, 60) == 1

    def test_tokens_are_stored_listed_found_and_revoked(self, metadata: Metadata) -> None:
        name = f"t-{uuid.uuid4().hex[:8]}"
        token = TokenRecord(name, "sha256-of-the-token-" + name, now())
        metadata.add_token(token)
        with pytest.raises(TokenExists):
            metadata.add_token(TokenRecord(name, "another-hash", now()))
        assert token in metadata.list_tokens()
        assert metadata.token_owner(token.token_hash) == name
        assert metadata.token_owner("unknown-hash") is None
        assert metadata.revoke_token(name) is True
        assert metadata.revoke_token(name) is False
        assert metadata.token_owner(token.token_hash) is None

    # -- resumable uploads ---------------------------------------------------------------

    def test_an_upload_round_trips_every_field(self, metadata: Metadata) -> None:
        upload = sample_upload()
        metadata.insert_upload(upload)
        assert metadata.get_upload(upload.id) == upload
        deferred = sample_upload(length=None, owner=None)
        metadata.insert_upload(deferred)
        assert metadata.get_upload(deferred.id) == deferred
        assert metadata.get_upload("no-such-upload") is None
        direct = sample_upload(kind=DIRECT)
        metadata.insert_upload(direct)
        assert metadata.get_upload(direct.id) == direct

    def test_a_lease_is_taken_once_until_it_runs_out_or_is_given_back(
            self, metadata: Metadata) -> None:
        upload = sample_upload()
        metadata.insert_upload(upload)
        at = now()
        leased = metadata.lease_upload(upload.id, "first", at, at + 60)
        assert leased is not None and (leased.lease_holder, leased.lease_until) == ("first", at + 60)
        assert metadata.lease_upload(upload.id, "second", at + 59, at + 120) is None
        assert metadata.lease_upload(upload.id, "third", at + 60, at + 120) is not None
        assert metadata.update_upload(upload.id, "first", {"offset": 9}) is None  # lost it
        released = metadata.update_upload(upload.id, "third",
                                          {"lease_holder": None, "lease_until": 0})
        assert released is not None and released.lease_holder is None
        assert metadata.lease_upload(upload.id, "fourth", at, at + 60) is not None

    def test_concurrent_leases_have_one_winner(self, metadata: Metadata) -> None:
        upload = sample_upload()
        metadata.insert_upload(upload)
        at = now()
        holders = iter(range(RACERS))
        outcomes = race(RACERS, lambda: metadata.lease_upload(
            upload.id, f"h{next(holders)}", at, at + 60), metadata)
        won = [outcome for outcome in outcomes if isinstance(outcome, UploadState)]
        assert len(won) == 1 and outcomes.count(None) == RACERS - 1
        assert metadata.get_upload(upload.id).lease_holder == won[0].lease_holder

    def test_no_lease_on_an_expired_complete_or_unknown_upload(self, metadata: Metadata) -> None:
        at = now()
        expired = sample_upload(expires_at=at)
        complete = sample_upload(slug="done")
        for upload in (expired, complete):
            metadata.insert_upload(upload)
            assert metadata.lease_upload(upload.id, "h", at, at + 60) is None
        assert metadata.lease_upload("no-such-upload", "h", at, at + 60) is None

    def test_the_holder_records_progress_and_length(self, metadata: Metadata) -> None:
        upload = sample_upload(length=None)
        metadata.insert_upload(upload)
        at = now()
        metadata.lease_upload(upload.id, "h", at, at + 60)
        changed = metadata.update_upload(upload.id, "h", {
            "offset": 5 * 1024**3, "length": 5 * 1024**3 + 7, "storage_state": "s2"})
        assert changed is not None
        assert (changed.offset, changed.length, changed.storage_state) == \
            (5 * 1024**3, 5 * 1024**3 + 7, "s2")
        assert metadata.get_upload(upload.id) == changed
        with pytest.raises(ValueError):
            metadata.update_upload(upload.id, "h", {"owner": "mallory"})

    def test_delete_and_list_expired_uploads(self, metadata: Metadata) -> None:
        at = now()
        live, old = sample_upload(), sample_upload(expires_at=at - 1)
        metadata.insert_upload(live)
        metadata.insert_upload(old)
        expired = {upload.id for upload in metadata.list_expired_uploads(at)}
        assert old.id in expired and live.id not in expired
        assert metadata.delete_upload(old.id) == old
        assert metadata.delete_upload(old.id) is None
        assert metadata.get_upload(live.id) == live

    def test_blob_ids_name_the_blob_of_every_upload_too(self, metadata: Metadata) -> None:
        upload = sample_upload()
        metadata.insert_upload(upload)
        assert upload.blob_id in metadata.blob_ids()
        metadata.delete_upload(upload.id)
        assert upload.blob_id not in metadata.blob_ids()
