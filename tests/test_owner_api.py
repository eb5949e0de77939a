"""The owner API (docs/owners.md) through the test client: ``GET /api/drops`` lists only the
token holder's drops (pagination, every sort key both ways, the filters, search, and one-line
400s for bad parameters), ``PATCH /api/drops/{slug}`` edits each field and refuses every bad
value without changing anything, and the owner deletes without the delete token while
nobody else learns that a private drop exists.

Its helpers (tokens, owner uploads, a drop as its owner sees it) live in
``tests/support/owners.py``, shared with the other owner test modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import teledrop.core.upload
from teledrop.core.drop import now
from teledrop.core.owners import create_token, revoke_token
from teledrop.web.app import service_of
from tests.http_helpers import (
    DROP_FIELDS,
    JSON,
    assert_json_error,
    assert_text_error,
    epoch,
    stored_paths,
    upload,
)
from tests.support.owners import Owners, as_owner, bearer, listed_slugs, listing, owner_upload, \
    patch
from tests.support.owners import owners  # noqa: F401 - a fixture

DAY = 86400


# --- shared helpers -------------------------------------------------------------------


# --- GET /api/drops: who sees what ------------------------------------------------------

def test_the_list_holds_only_the_token_holders_drops(client: Any, owners: Owners) -> None:
    alices = {owner_upload(client, owners.alice, filename=f"a{i}.txt")["slug"] for i in range(2)}
    bobs = {owner_upload(client, owners.bob, filename="b.txt")["slug"]}
    upload(client, b"anonymous", "anon.txt")
    assert set(listed_slugs(client, owners.alice)) == alices
    assert set(listed_slugs(client, owners.bob)) == bobs
    assert listing(client, owners.alice)["total"] == 2


def test_the_list_of_an_owner_without_drops_is_empty(client: Any, owners: Owners) -> None:
    upload(client)
    assert listing(client, owners.bob) == {"total": 0, "page": 1, "page_size": 20, "drops": []}


def test_the_list_needs_a_token(client: Any) -> None:
    response = client.get("/api/drops")
    assert_text_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    json_response = client.get("/api/drops", headers=JSON)
    assert_json_error(json_response, 401, "unauthorized")
    assert json_response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("authorization", ["Bearer not-a-token", "Bearer ", "Basic dTpw"])
def test_the_list_refuses_what_is_not_a_valid_bearer_token(client: Any, owners: Owners,
                                                           authorization: str) -> None:
    owner_upload(client, owners.alice)
    response = client.get("/api/drops", headers={"Authorization": authorization})
    assert_text_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_token_lists_nothing(app: Flask, client: Any, owners: Owners) -> None:
    owner_upload(client, owners.alice)
    revoke_token(service_of(app), "alice")
    assert_json_error(client.get("/api/drops", headers=bearer(owners.alice)), 401,
                      "unauthorized")


def test_a_new_token_under_the_same_name_gets_the_drops_back(app: Flask, client: Any,
                                                              owners: Owners) -> None:
    slug = owner_upload(client, owners.alice)["slug"]
    revoke_token(service_of(app), "alice")
    replacement = create_token(service_of(app), "alice")
    assert replacement != owners.alice
    assert listed_slugs(client, replacement) == [slug]
    assert_json_error(client.get("/api/drops", headers=bearer(owners.alice)), 401)


def test_a_config_token_lists_the_drops_it_uploaded(make_app: Any) -> None:
    app = make_app(auth={"upload_tokens": ["config-secret-1", "config-secret-2"]})
    client = app.test_client()
    mine = owner_upload(client, "config-secret-1")["slug"]
    owner_upload(client, "config-secret-2")
    assert listed_slugs(client, "config-secret-1") == [mine]


# --- pagination, sorting --------------------------------------------------------------------

def test_pages_split_the_list_without_overlap(client: Any, owners: Owners) -> None:
    slugs = {owner_upload(client, owners.alice, filename=f"f{i}.txt")["slug"] for i in range(5)}
    pages = [listing(client, owners.alice, page=str(n), page_size="2") for n in (1, 2, 3, 4)]
    assert [len(p["drops"]) for p in pages] == [2, 2, 1, 0]
    assert {p["total"] for p in pages} == {5}
    assert [(p["page"], p["page_size"]) for p in pages] == [(1, 2), (2, 2), (3, 2), (4, 2)]
    seen = [d["slug"] for p in pages for d in p["drops"]]
    assert len(seen) == len(set(seen)) and set(seen) == slugs


def test_page_size_may_be_one_hundred(client: Any, owners: Owners) -> None:
    owner_upload(client, owners.alice)
    body = listing(client, owners.alice, page_size="100")
    assert body["page_size"] == 100 and body["total"] == 1


#: Four drops (filename, size, title, age in s) whose order differs for every sort key and
#: direction, and from the upload order either way.
SORTABLE = [("c.txt", 1, "alpha", 10), ("a.txt", 2, "delta", 30),
            ("d.txt", 4, "beta", 40), ("b.txt", 3, "gamma", 20)]


@pytest.fixture
def sortable(client: Any, owners: Owners) -> list[dict[str, Any]]:
    """Alice's four drops, uploaded in an order that matches none of the sort keys, with
    created_at set apart by making the upload's clock run behind."""
    base = now()
    drops = []
    with pytest.MonkeyPatch.context() as clock:
        for filename, size, title, age in SORTABLE:
            clock.setattr(teledrop.core.upload, "now", lambda age=age: base - age)
            drops.append(owner_upload(client, owners.alice, b"x" * size, filename, title=title))
    return drops


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("key", ["created_at", "size", "filename", "title"])
def test_every_sort_key_orders_both_ways(client: Any, owners: Owners,
                                         sortable: list[dict[str, Any]], key: str,
                                         order: str) -> None:
    expected = [d["slug"] for d in sorted(sortable, key=lambda d: d[key],
                                          reverse=order == "desc")]
    assert listed_slugs(client, owners.alice, sort=key, order=order) == expected


def test_the_default_order_is_newest_first(client: Any, owners: Owners,
                                           sortable: list[dict[str, Any]]) -> None:
    newest_first = sorted(sortable, key=lambda d: d["created_at"], reverse=True)
    assert listed_slugs(client, owners.alice) == [d["slug"] for d in newest_first]


def test_sorting_applies_before_paging(client: Any, owners: Owners,
                                       sortable: list[dict[str, Any]]) -> None:
    by_size = [d["slug"] for d in sorted(sortable, key=lambda d: d["size"])]
    first = listed_slugs(client, owners.alice, sort="size", order="asc", page_size="3")
    second = listed_slugs(client, owners.alice, sort="size", order="asc", page_size="3",
                          page="2")
    assert first + second == by_size


# --- filters and search -----------------------------------------------------------------

@pytest.fixture
def varied(app: Flask, client: Any, owners: Owners) -> dict[str, str]:
    """Alice's drops: plain, private, with a password, expired; name -> slug."""
    slugs = {
        "plain": owner_upload(client, owners.alice, filename="plain.txt")["slug"],
        "private": owner_upload(client, owners.alice, filename="secret.txt",
                                private="true")["slug"],
        "password": owner_upload(client, owners.alice, filename="locked.txt",
                                 password="pw")["slug"],
        "expired": owner_upload(client, owners.alice, filename="old.txt")["slug"],
    }
    service_of(app).metadata.update(slugs["expired"], {"expires_at": now() - 1})
    return slugs


@pytest.mark.parametrize(("params", "names"), [
    ({"private": "true"}, {"private"}),
    ({"private": "false"}, {"plain", "password", "expired"}),
    ({"has_password": "true"}, {"password"}),
    ({"has_password": "false"}, {"plain", "private", "expired"}),
    ({"expired": "true"}, {"expired"}),
    ({"expired": "false"}, {"plain", "private", "password"}),
    ({"private": "false", "has_password": "false", "expired": "false"}, {"plain"}),
])
def test_filters_select_matching_drops(client: Any, owners: Owners, varied: dict[str, str],
                                       params: dict[str, str], names: set[str]) -> None:
    body = listing(client, owners.alice, **params)
    assert {d["slug"] for d in body["drops"]} == {varied[n] for n in names}
    assert body["total"] == len(names)


def test_the_listed_json_says_private_and_has_password(client: Any, owners: Owners,
                                                       varied: dict[str, str]) -> None:
    by_slug = {d["slug"]: d for d in listing(client, owners.alice)["drops"]}
    assert by_slug[varied["private"]]["private"] is True
    assert by_slug[varied["password"]]["has_password"] is True
    assert by_slug[varied["plain"]]["private"] is False
    assert by_slug[varied["plain"]]["has_password"] is False


def test_search_matches_filename_or_title_case_insensitively(client: Any,
                                                              owners: Owners) -> None:
    by_name = owner_upload(client, owners.alice, filename="Quarterly-Report.pdf")["slug"]
    by_title = owner_upload(client, owners.alice, filename="scan.bin", title="REPORT draft")["slug"]
    owner_upload(client, owners.alice, filename="holiday.jpg", title="beach")
    owner_upload(client, owners.bob, filename="report.txt")
    body = listing(client, owners.alice, q="report")
    assert {d["slug"] for d in body["drops"]} == {by_name, by_title}
    assert body["total"] == 2


def test_search_takes_wildcard_characters_literally(client: Any, owners: Owners) -> None:
    percent = owner_upload(client, owners.alice, filename="100%.txt")["slug"]
    owner_upload(client, owners.alice, filename="1000.txt")
    owner_upload(client, owners.alice, filename="a_b.txt")
    assert listed_slugs(client, owners.alice, q="%") == [percent]
    assert listed_slugs(client, owners.alice, q="0%") == [percent]
    assert len(listed_slugs(client, owners.alice, q="_")) == 1


def test_search_combines_with_filters(client: Any, owners: Owners) -> None:
    owner_upload(client, owners.alice, filename="notes.txt")
    hidden = owner_upload(client, owners.alice, filename="notes-private.txt",
                          private="true")["slug"]
    assert listed_slugs(client, owners.alice, q="notes", private="true") == [hidden]


@pytest.mark.parametrize(("name", "value"), [
    ("page", "0"), ("page", "-1"), ("page", "x"), ("page", "1.5"), ("page", ""),
    ("page_size", "0"), ("page_size", "101"), ("page_size", "ten"),
    ("sort", "downloads"), ("sort", "expires_at"), ("sort", ""),
    ("order", "up"), ("order", "ASC"),
    ("private", "maybe"), ("has_password", "2"), ("expired", ""),
])
def test_bad_list_parameters_are_one_line_400s(client: Any, owners: Owners, name: str,
                                               value: str) -> None:
    query = {name: value}
    text = assert_text_error(client.get("/api/drops", headers=bearer(owners.alice, False),
                                        query_string=query), 400)
    assert name in text
    assert_json_error(client.get("/api/drops", headers=bearer(owners.alice),
                                 query_string=query), 400, "invalid_option")


# --- PATCH /api/drops/{slug}: each field --------------------------------------------------

@pytest.fixture
def alices_drop(client: Any, owners: Owners) -> dict[str, Any]:
    return owner_upload(client, owners.alice, b"patch me", "patch.txt", title="before")


def patched(client: Any, slug: str, body: Mapping[str, Any], token: str) -> dict[str, Any]:
    response = patch(client, slug, body, token)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    drop = response.get_json()
    assert set(drop) == DROP_FIELDS and "delete_token" not in drop
    assert drop == as_owner(client, slug, token)
    return drop


def test_patch_sets_title_and_description(client: Any, owners: Owners,
                                          alices_drop: dict[str, Any]) -> None:
    drop = patched(client, alices_drop["slug"],
                   {"title": "  Annual report  ", "description": "line one\nline two\ttab"},
                   owners.alice)
    assert drop["title"] == "Annual report"
    assert drop["description"] == "line one\nline two\ttab"
    assert {k: drop[k] for k in ("slug", "filename", "hash", "expires_at")} == \
        {k: alices_drop[k] for k in ("slug", "filename", "hash", "expires_at")}


def test_patch_accepts_a_title_of_exactly_200_characters(client: Any, owners: Owners,
                                                         alices_drop: dict[str, Any]) -> None:
    title, description = "t" * 200, "d" * 1000
    drop = patched(client, alices_drop["slug"], {"title": title, "description": description},
                   owners.alice)
    assert (drop["title"], drop["description"]) == (title, description)


@pytest.mark.parametrize(("expires", "seconds"), [("2d", 2 * DAY), (3600, 3600), ("90", 90)])
def test_patch_expires_counts_from_now(client: Any, owners: Owners,
                                       alices_drop: dict[str, Any], expires: Any,
                                       seconds: int) -> None:
    before = now()
    drop = patched(client, alices_drop["slug"], {"expires": expires}, owners.alice)
    assert before + seconds <= epoch(drop["expires_at"]) <= now() + seconds
    assert drop["created_at"] == alices_drop["created_at"]


def test_patch_can_revive_an_expired_drop(app: Flask, client: Any, owners: Owners,
                                          alices_drop: dict[str, Any]) -> None:
    slug = alices_drop["slug"]
    service_of(app).metadata.update(slug, {"expires_at": now() - 5})
    assert client.get(f"/{slug}").status_code == 410
    patched(client, slug, {"expires": "1h"}, owners.alice)
    assert client.get(f"/{slug}").get_data() == b"patch me"


def test_patch_sets_and_lifts_max_downloads(client: Any, owners: Owners,
                                            alices_drop: dict[str, Any]) -> None:
    slug = alices_drop["slug"]
    assert patched(client, slug, {"max_downloads": 1}, owners.alice)["max_downloads"] == 1
    assert client.get(f"/{slug}").status_code == 200
    assert client.get(f"/{slug}").status_code == 410
    assert patched(client, slug, {"max_downloads": None}, owners.alice)["max_downloads"] is None
    assert client.get(f"/{slug}").status_code == 200


def test_patch_makes_a_drop_private_and_public_again(client: Any, owners: Owners,
                                                     alices_drop: dict[str, Any]) -> None:
    slug = alices_drop["slug"]
    assert patched(client, slug, {"private": True}, owners.alice)["private"] is True
    assert client.get(f"/{slug}").status_code == 404
    assert client.get(f"/{slug}", headers=bearer(owners.bob)).status_code == 404
    assert patched(client, slug, {"private": False}, owners.alice)["private"] is False
    assert client.get(f"/{slug}").get_data() == b"patch me"


def test_patch_sets_then_clears_a_password(app: Flask, client: Any, owners: Owners,
                                           alices_drop: dict[str, Any]) -> None:
    slug = alices_drop["slug"]
    assert patched(client, slug, {"password": "s3cret"}, owners.alice)["has_password"] is True
    assert client.get(f"/{slug}").status_code == 401
    assert client.get(f"/{slug}", headers={"X-Drop-Password": "s3cret"}).get_data() == b"patch me"
    stored = service_of(app).metadata.get(slug)
    assert stored is not None and stored.password_hash is not None
    assert "s3cret" not in stored.password_hash
    assert patched(client, slug, {"password": None}, owners.alice)["has_password"] is False
    assert client.get(f"/{slug}").get_data() == b"patch me"


def test_patch_clears_a_password_with_an_empty_string(client: Any, owners: Owners) -> None:
    slug = owner_upload(client, owners.alice, password="pw")["slug"]
    assert patched(client, slug, {"password": ""}, owners.alice)["has_password"] is False
    assert client.get(f"/{slug}").status_code == 200


def test_an_empty_patch_changes_nothing(client: Any, owners: Owners,
                                        alices_drop: dict[str, Any]) -> None:
    drop = patched(client, alices_drop["slug"], {}, owners.alice)
    assert drop == {k: alices_drop[k] for k in DROP_FIELDS}


def test_a_config_token_owner_patches_its_drops(make_app: Any) -> None:
    client = make_app(auth={"upload_tokens": ["config-secret"]}).test_client()
    slug = owner_upload(client, "config-secret")["slug"]
    assert patched(client, slug, {"title": "mine"}, "config-secret")["title"] == "mine"


# --- PATCH: refusals -------------------------------------------------------------------

#: Each refused edit, by why it is refused.
BAD_PATCHES: dict[str, dict[str, Any]] = {
    "title over 200": {"title": "x" * 201},
    "title with a control character": {"title": "bell\x07"},
    "title with a line break": {"title": "two\nlines"},
    "title with a bidi control": {"title": "bidi\u202eexe.pdf"},
    "title a number": {"title": 5},
    "title null": {"title": None},
    "title with a lone surrogate": {"title": "lone \ud800 surrogate"},
    "description over 1000": {"description": "d" * 1001},
    "description with NUL": {"description": "nul\x00"},
    "description with ESC": {"description": "escape\x1b[31m"},
    "description a list": {"description": ["list"]},
    "description with a lone surrogate": {"description": "lone \udfff surrogate"},
    "expires over max_expires": {"expires": "31d"},
    "expires over max_expires in seconds": {"expires": 31 * DAY},
    "expires zero": {"expires": "0"},
    "expires negative": {"expires": "-5"},
    "expires not a duration": {"expires": "soon"},
    "expires a bool": {"expires": True},
    "expires null": {"expires": None},
    "expires a float": {"expires": 1.5},
    "max_downloads zero": {"max_downloads": 0},
    "max_downloads negative": {"max_downloads": -1},
    "max_downloads a string": {"max_downloads": "3"},
    "max_downloads true": {"max_downloads": True},
    "max_downloads false": {"max_downloads": False},
    "max_downloads a float": {"max_downloads": 2.0},
    "max_downloads beyond 64 bits": {"max_downloads": 2**70},
    "private a string": {"private": "true"},
    "private a number": {"private": 1},
    "private null": {"private": None},
    "password a number": {"password": 1234},
    "password a list": {"password": ["pw"]},
    "password a bool": {"password": True},
    "password a lone surrogate": {"password": "\ud800"},
    "password over 1024 bytes": {"password": "p" * 1025},
    "unknown field owner": {"owner": "bob"},
    "unknown field slug": {"slug": "renamed"},
    "unknown field downloads": {"downloads": 0},
    "one good, one bad": {"title": "fine", "max_downloads": 0},
    "one good, one over the limit": {"private": True, "expires": "365d"},
    "a good password, an unknown field": {"password": "new-password", "color": "red"},
}


@pytest.mark.parametrize("body", BAD_PATCHES.values(), ids=list(BAD_PATCHES))
def test_a_bad_patch_is_one_line_and_changes_nothing(app: Flask, client: Any, owners: Owners,
                                                     body: dict[str, Any]) -> None:
    original = owner_upload(client, owners.alice, b"keep", "keep.txt", title="kept",
                            password="old")
    slug = original["slug"]
    before = service_of(app).metadata.get(slug)
    message = assert_json_error(patch(client, slug, body, owners.alice), 400)
    assert len(message) < 200
    assert_text_error(client.patch(f"/api/drops/{slug}", json=body,
                                   headers=bearer(owners.alice, False)), 400)
    assert service_of(app).metadata.get(slug) == before


@pytest.mark.parametrize(("data", "content_type"), [
    ("[]", "application/json"),
    ('"title"', "application/json"),
    ("3", "application/json"),
    ("null", "application/json"),
    ("{not json", "application/json"),
    ("", "application/json"),
    ("title=x", "application/x-www-form-urlencoded"),
])
def test_a_patch_body_that_is_not_a_json_object_is_400(app: Flask, client: Any, owners: Owners,
                                                       alices_drop: dict[str, Any], data: str,
                                                       content_type: str) -> None:
    slug = alices_drop["slug"]
    before = service_of(app).metadata.get(slug)
    response = client.patch(f"/api/drops/{slug}", data=data, content_type=content_type,
                            headers=bearer(owners.alice))
    assert_json_error(response, 400)
    assert service_of(app).metadata.get(slug) == before


def test_patch_without_a_token_is_401(app: Flask, client: Any,
                                      alices_drop: dict[str, Any]) -> None:
    slug = alices_drop["slug"]
    response = patch(client, slug, {"title": "anonymous edit"}, None)
    assert_json_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_json_error(patch(client, slug, {"title": "x"}, "unknown-token"), 401, "unauthorized")
    drop = service_of(app).metadata.get(slug)
    assert drop is not None and drop.title == "before"


def test_patch_of_another_owners_drop_is_404_like_an_unknown_slug(
        app: Flask, client: Any, owners: Owners, alices_drop: dict[str, Any]) -> None:
    slug = alices_drop["slug"]
    before = service_of(app).metadata.get(slug)
    foreign = patch(client, slug, {"title": "bob was here"}, owners.bob)
    unknown = patch(client, "nosuchdrop", {"title": "bob was here"}, owners.bob)
    assert_json_error(foreign, 404, "not_found")
    assert foreign.get_data() == unknown.get_data()
    assert service_of(app).metadata.get(slug) == before


def test_patch_of_an_anonymous_drop_is_404(client: Any, owners: Owners) -> None:
    slug = upload(client)["slug"]
    assert_json_error(patch(client, slug, {"title": "claimed"}, owners.alice), 404, "not_found")
    assert client.get(f"/api/drops/{slug}").get_json()["title"] == ""


def test_patch_refuses_an_unknown_field_before_a_foreign_owner_learns_anything(
        client: Any, owners: Owners, alices_drop: dict[str, Any]) -> None:
    # Validation must not run for someone else's drop: a 400 would confirm it exists.
    response = patch(client, alices_drop["slug"], {"no_such_field": 1}, owners.bob)
    assert_json_error(response, 404, "not_found")


# --- DELETE as the owner ------------------------------------------------------------------

def test_the_owner_deletes_without_the_delete_token(app: Flask, client: Any, owners: Owners,
                                                    data_dir: Path) -> None:
    keep = owner_upload(client, owners.alice, b"keep", "keep.txt")
    gone = owner_upload(client, owners.alice, b"gone", "gone.txt", private="true")
    files_before = stored_paths(data_dir)
    response = client.delete(f"/{gone['slug']}", headers=bearer(owners.alice, False))
    assert response.status_code == 204 and response.get_data() == b""
    assert service_of(app).metadata.get(gone["slug"]) is None
    assert len(stored_paths(data_dir)) == len(files_before) - 1
    assert client.get(f"/{gone['slug']}", headers=bearer(owners.alice)).status_code == 404
    assert listed_slugs(client, owners.alice) == [keep["slug"]]


def test_another_owner_cannot_delete_a_public_drop(app: Flask, client: Any,
                                                   owners: Owners) -> None:
    slug = owner_upload(client, owners.alice)["slug"]
    assert_json_error(client.delete(f"/{slug}", headers=bearer(owners.bob)), 403, "forbidden")
    assert service_of(app).metadata.get(slug) is not None


def test_another_owner_deleting_a_private_drop_gets_404_like_an_unknown_slug(
        app: Flask, client: Any, owners: Owners) -> None:
    slug = owner_upload(client, owners.alice, private="true")["slug"]
    foreign = client.delete(f"/{slug}", headers=bearer(owners.bob))
    unknown = client.delete("/nosuchdrop", headers=bearer(owners.bob))
    assert_json_error(foreign, 404, "not_found")
    assert foreign.get_data() == unknown.get_data()
    anonymous = client.delete(f"/{slug}", headers={**JSON, "X-Delete-Token": "wrong"})
    assert anonymous.get_data() == unknown.get_data() and anonymous.status_code == 404
    assert service_of(app).metadata.get(slug) is not None


def test_an_owner_token_does_not_delete_an_anonymous_drop(app: Flask, client: Any,
                                                         owners: Owners) -> None:
    slug = upload(client)["slug"]
    assert_json_error(client.delete(f"/{slug}", headers=bearer(owners.alice)), 403, "forbidden")
    assert service_of(app).metadata.get(slug) is not None


def test_the_delete_token_still_works_on_an_owned_private_drop(app: Flask, client: Any,
                                                                owners: Owners) -> None:
    created = owner_upload(client, owners.alice, private="true")
    response = client.delete(f"/{created['slug']}",
                             headers={"X-Delete-Token": created["delete_token"]})
    assert response.status_code == 204
    assert service_of(app).metadata.get(created["slug"]) is None


def test_delete_with_an_unknown_bearer_token_is_401(app: Flask, client: Any,
                                                    owners: Owners) -> None:
    slug = owner_upload(client, owners.alice)["slug"]
    assert_json_error(client.delete(f"/{slug}", headers=bearer("forged")), 401, "unauthorized")
    assert service_of(app).metadata.get(slug) is not None


def test_a_revoked_owner_can_no_longer_delete(app: Flask, client: Any, owners: Owners) -> None:
    slug = owner_upload(client, owners.alice)["slug"]
    revoke_token(service_of(app), "alice")
    assert_json_error(client.delete(f"/{slug}", headers=bearer(owners.alice)), 401,
                      "unauthorized")
    assert service_of(app).metadata.get(slug) is not None
