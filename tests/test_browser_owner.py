"""The page's "My drops" view in a real headless Chromium against a real gunicorn: an upload
with a title and ``private`` is listed as the token holder's; the search narrows the list,
sort and order change it as the API orders it, the filters and pages work; Edit saves a new
title, download limit, expiry and password (checked through ``GET /api/drops/{slug}``) and
shows the server's reason when it refuses; a password set there is asked of an anonymous
browser, which downloads after giving it; Delete removes a drop; a bad token is shown as the
server's message; on an open server a token from the token store is entered under "My drops".
A screenshot of the list is saved to ``test-artifacts/my-drops.png``."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from teledrop import composition
from teledrop.core.config import load_config
from teledrop.core.owners import create_token
from tests.http_helpers import epoch
from tests.live_server import LiveServer, live_server
from tests.support.browser import (  # noqa: F401 (fixtures)
    browser,
    context,
    new_context,
    open_options,
    open_page,
    screenshot,
    server_for,
)

pytestmark = pytest.mark.browser

TOKEN = "tok-a"
OTHER_TOKEN = "tok-b"
TOKEN_KEY = "teledrop.upload-token"


# --- fixtures ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from server_for(tmp_path_factory.mktemp("owner"),
                          auth={"upload_tokens": [TOKEN, OTHER_TOKEN]})


def keep_token(context: BrowserContext, token: str) -> None:
    """The token as an earlier visit left it in this browser."""
    context.add_init_script(f"localStorage.setItem({json.dumps(TOKEN_KEY)}, {json.dumps(token)})")


@pytest.fixture
def page(context: BrowserContext, server: LiveServer) -> Iterator[Page]:  # noqa: F811
    """The page of a browser that kept the token, its list on screen."""
    keep_token(context, TOKEN)
    page, errors = open_page(context, server)
    expect(page.locator("#drops-status")).not_to_be_empty()
    yield page
    assert errors == [], "the page's script failed"


@pytest.fixture
def word() -> str:
    """A word only this test's file names hold: the server's list is shared by the tests."""
    return "w" + uuid.uuid4().hex[:8]


# --- helpers ----------------------------------------------------------------------------

def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def upload(server: LiveServer, name: str, data: bytes = b"data", token: str | None = TOKEN,
           **fields: str) -> dict[str, Any]:
    """A drop made without the page, as curl would; its JSON."""
    headers = bearer(token) if token else {"Accept": "application/json"}
    response = server.request("POST", "/", files={"file": (name, data)}, data=fields,
                              headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def drop_info(server: LiveServer, slug: str, token: str | None = TOKEN) -> requests.Response:
    return server.request("GET", f"/api/drops/{slug}",
                          headers=bearer(token) if token else {"Accept": "application/json"})


def api_list(server: LiveServer, token: str = TOKEN, **params: str) -> dict[str, Any]:
    response = server.request("GET", "/api/drops", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def upload_form(page: Page) -> Locator:
    return page.locator("#upload")


def query_form(page: Page) -> Locator:
    """The list's search, sort, filters and page size."""
    return page.locator("#drops-query")


def listed(page: Page) -> Locator:
    """The file names in the list, top to bottom."""
    return page.locator("#drops-body a.drop-link")


def row(page: Page, filename: str) -> Locator:
    return page.locator("#drops-body tr").filter(
        has=page.locator("a.drop-link", has_text=re.compile(f"^{re.escape(filename)}$")))


def cell(item: Locator, label: str) -> Locator:
    return item.locator(f'td[data-label="{label}"]')


def search(page: Page, text: str) -> None:
    box = query_form(page).get_by_label("Search", exact=True)
    box.fill(text)
    box.press("Enter")


def choose(page: Page, field: str, **option: str) -> None:
    """Pick an option (``label=`` or ``value=``) of one of the list's controls."""
    query_form(page).get_by_label(field, exact=True).select_option(**option)


def focused(page: Page, selector: str) -> bool:
    return page.evaluate("(s) => document.activeElement.matches(s)", selector)


def edit(page: Page, filename: str) -> Locator:
    """Open the Edit dialog of a listed drop; the dialog."""
    row(page, filename).get_by_role("button", name=f"Edit {filename}", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    return dialog


def sent_urls(page: Page) -> list[str]:
    """URLs of the requests the page sends from now on, with their methods."""
    sent: list[str] = []
    page.on("request", lambda request: sent.append(f"{request.method} {request.url}"))
    return sent


# --- upload options and the list -----------------------------------------------------------

def test_an_upload_with_a_title_and_private_is_listed_as_mine(
        page: Page, server: LiveServer, word: str, tmp_path: Path) -> None:
    path = tmp_path / f"{word}-plan.txt"
    path.write_bytes(b"the plan")
    form = upload_form(page)
    open_options(page)
    form.get_by_label("Title").fill(f"The {word} plan")
    form.get_by_label("Description").fill("for the owner's eyes")
    form.get_by_label("Private").check()
    page.set_input_files("#file", files=[path])
    done = page.locator("li.upload.done")
    expect(done).to_have_count(1)
    slug = urlsplit(done.locator("a.link").get_attribute("href") or "").path.lstrip("/")

    item = row(page, path.name)
    expect(item).to_have_count(1)
    expect(cell(item, "Title")).to_contain_text(f"The {word} plan")
    expect(cell(item, "Title")).to_contain_text("for the owner's eyes")
    expect(cell(item, "Access")).to_have_text("Private")
    expect(cell(item, "Downloads")).to_have_text("0")
    info = drop_info(server, slug).json()
    assert (info["title"], info["description"], info["private"], info["has_password"]) == \
        (f"The {word} plan", "for the owner's eyes", True, False)
    assert drop_info(server, slug, token=None).status_code == 404
    assert drop_info(server, slug, token=OTHER_TOKEN).status_code == 404

    # A plain link would be 404 to this browser: the list's link sends the token.
    with page.expect_download() as download:
        item.locator("a.drop-link").click()
    assert Path(download.value.path()).read_bytes() == b"the plan"
    assert download.value.suggested_filename == path.name
    assert drop_info(server, slug).json()["downloads"] == 1


def test_an_upload_password_goes_in_the_body_never_the_url(
        page: Page, server: LiveServer, word: str, tmp_path: Path) -> None:
    path = tmp_path / f"{word}.txt"
    path.write_bytes(b"guarded")
    open_options(page)
    upload_form(page).get_by_label("Password").fill("pass phrase")
    sent = sent_urls(page)
    page.set_input_files("#file", files=[path])
    done = page.locator("li.upload.done")
    expect(done).to_have_count(1)
    expect(done.locator("dd").last).to_have_text("password")
    slug = urlsplit(done.locator("a.link").get_attribute("href") or "").path.lstrip("/")
    assert [url for url in sent if url.startswith("POST")] == \
        [f"POST {server.url('/api/uploads')}"]
    assert drop_info(server, slug).json()["has_password"] is True
    assert server.request("GET", f"/{slug}").status_code == 401
    assert server.request("GET", f"/{slug}",
                          headers={"X-Drop-Password": "pass phrase"}).content == b"guarded"
    expect(cell(row(page, path.name), "Access")).to_have_text("Password")


def test_a_private_upload_without_a_token_is_stopped_before_sending(
        context: BrowserContext, server: LiveServer, tmp_path: Path) -> None:
    page, errors = open_page(context, server)
    path = tmp_path / "secret.txt"
    path.write_bytes(b"secret")
    sent = sent_urls(page)
    open_options(page)
    upload_form(page).get_by_label("Private").check()
    page.set_input_files("#file", files=[path])
    expect(page.locator("#status")).to_have_text(
        "A private file needs your token: enter it first.")
    assert focused(page, "#token")
    assert not [url for url in sent if url.startswith("POST")]
    expect(page.locator("#drops-status")).to_have_text(
        "Enter your token to see the files you uploaded with it.")
    assert errors == []


def test_search_narrows_and_sort_and_order_follow_the_api(
        page: Page, server: LiveServer, word: str) -> None:
    for name, size, title in [("b-notes.txt", 300, "zulu"), ("a-report.txt", 100, "yankee"),
                              ("c-report.csv", 200, "xray")]:
        upload(server, f"{word}-{name}", b"x" * size, title=title)
    upload(server, f"{word}-theirs.txt", token=OTHER_TOKEN)

    search(page, word)
    expect(listed(page)).to_have_count(3)  # not the other token's
    expect(page.locator("#drops-status")).to_have_text("3 drops.")
    search(page, f"{word}-c-REPORT")
    expect(listed(page)).to_have_text([f"{word}-c-report.csv"])
    search(page, "yankee")  # titles are searched too
    expect(listed(page)).to_have_text([f"{word}-a-report.txt"])

    search(page, word)
    # sort key: its name in "Sort by", and the column it sorts
    for sort, label, column in [("size", "Size", "Size"), ("filename", "File name", "File"),
                                ("title", "Title", "Title"),
                                ("created_at", "Uploaded", "Uploaded")]:
        for order in ("asc", "desc"):
            choose(page, "Sort by", label=label)
            choose(page, "Order", value=order)
            wanted = [d["filename"] for d in
                      api_list(server, q=word, sort=sort, order=order)["drops"]]
            expect(listed(page)).to_have_text(wanted)
            header = page.locator("#drops-table th[aria-sort]")
            expect(header).to_have_text(column)
            expect(header).to_have_attribute("aria-sort",
                                             "ascending" if order == "asc" else "descending")
    search(page, word + "-nothing")
    expect(page.locator("#drops-status")).to_have_text("No drops match.")
    expect(page.locator("#drops-table")).to_be_hidden()


def test_filters_pick_private_password_and_expired_drops(
        page: Page, server: LiveServer, word: str) -> None:
    short = upload(server, f"{word}-short.txt", expires="1")
    upload(server, f"{word}-private.txt", private="true", title="only mine")
    upload(server, f"{word}-locked.bin", b"locked" * 500, password="open sesame",
           title="with a password", max_downloads="4")
    upload(server, f"{word}-plain.txt", description="anyone with the link")
    deadline = time.time() + 5
    while drop_info(server, short["slug"]).status_code != 410 and time.time() < deadline:
        time.sleep(0.1)
    search(page, word)
    expect(listed(page)).to_have_count(4)
    expect(cell(row(page, f"{word}-short.txt"), "Access")).to_have_text("Expired")
    expect(row(page, f"{word}-short.txt")).to_have_class("gone")
    expect(cell(row(page, f"{word}-locked.bin"), "Downloads")).to_have_text("0 of 4")
    screenshot(page, "my-drops.png")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), \
        "the list fits the window: no sideways scrolling"

    def only(label: str, choice: str, names: set[str]) -> None:
        choose(page, label, label=choice)
        param = {"Private": "private", "Password": "has_password", "Expired": "expired"}[label]
        value = query_form(page).get_by_label(label, exact=True).input_value()
        wanted = [d["filename"] for d in
                  api_list(server, q=word, sort="filename", **{param: value})["drops"]]
        assert set(wanted) == {f"{word}-{name}" for name in names}
        expect(listed(page)).to_have_text(wanted)
        choose(page, label, label="Any")

    choose(page, "Sort by", label="File name")
    only("Private", "Private only", {"private.txt"})
    only("Private", "Not private", {"short.txt", "locked.bin", "plain.txt"})
    only("Password", "With a password", {"locked.bin"})
    only("Password", "Without", {"short.txt", "private.txt", "plain.txt"})
    only("Expired", "Expired only", {"short.txt"})
    only("Expired", "Not expired", {"private.txt", "plain.txt", "locked.bin"})


def test_pages_move_through_a_long_list(page: Page, server: LiveServer, word: str) -> None:
    for n in range(12):
        upload(server, f"{word}-{n:02}.txt")
    choose(page, "Per page", value="10")
    choose(page, "Sort by", label="File name")
    choose(page, "Order", value="asc")
    search(page, word)
    expect(page.locator("#drops-status")).to_have_text("12 drops, page 1 of 2.")
    expect(listed(page)).to_have_text([f"{word}-{n:02}.txt" for n in range(10)])
    previous = page.get_by_role("button", name="Previous page")
    expect(previous).to_have_attribute("aria-disabled", "true")
    following = page.get_by_role("button", name="Next page")
    following.click()
    expect(listed(page)).to_have_text([f"{word}-10.txt", f"{word}-11.txt"])
    expect(page.locator("#drops-page")).to_have_text("Page 2 of 2")
    expect(following).to_have_attribute("aria-disabled", "true")
    assert focused(page, "#drops-next"), "the focus stays on the button"
    page.keyboard.press("Enter")  # disabled: nothing moves
    expect(page.locator("#drops-page")).to_have_text("Page 2 of 2")
    previous.click()
    expect(listed(page)).to_have_count(10)


# --- edit -------------------------------------------------------------------------------

def test_edit_saves_title_limit_and_expiry(page: Page, server: LiveServer, word: str) -> None:
    drop = upload(server, f"{word}.txt", title="draft", max_downloads="9")
    search(page, word)
    dialog = edit(page, f"{word}.txt")
    assert focused(page, "#edit-title"), "the dialog takes the focus"
    expect(dialog.get_by_label("Title")).to_have_value("draft")
    expect(dialog.get_by_label("Download limit")).to_have_value("9")
    dialog.get_by_label("Title").fill("final")
    dialog.get_by_label("Download limit").fill("3")
    dialog.get_by_label("Expires").select_option(label="1 hour")
    sent = sent_urls(page)
    dialog.get_by_role("button", name="Save").click()

    expect(dialog).to_be_hidden()
    item = row(page, f"{word}.txt")
    expect(cell(item, "Title")).to_have_text("final")
    expect(cell(item, "Downloads")).to_have_text("0 of 3")
    expect(page.locator("#drops-status")).to_have_text(f"Saved {word}.txt. 1 drop.")
    assert focused(page, "#drops-body button.edit"), "the focus returns to the row"
    assert f"PATCH {server.url('/api/drops/' + drop['slug'])}" in sent
    info = drop_info(server, drop["slug"]).json()
    assert (info["title"], info["max_downloads"]) == ("final", 3)
    assert abs(epoch(info["expires_at"]) - time.time() - 3600) < 30

    edit(page, f"{word}.txt").get_by_label("Download limit").fill("")
    page.get_by_role("dialog").get_by_role("button", name="Save").click()
    expect(cell(item, "Downloads")).to_have_text("0")
    assert drop_info(server, drop["slug"]).json()["max_downloads"] is None


def test_an_edit_the_server_refuses_shows_its_reason(
        page: Page, server: LiveServer, word: str) -> None:
    drop = upload(server, f"{word}.txt", max_downloads="5")
    refused = server.request("PATCH", f"/api/drops/{drop['slug']}", json={"max_downloads": 0},
                             headers=bearer())
    assert refused.status_code == 400
    search(page, word)
    # The keyboard alone opens the dialog.
    row(page, f"{word}.txt").get_by_role("button", name=f"Edit {word}.txt").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Download limit").fill("0")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).to_have_text(
        "Not saved: " + refused.json()["error"]["message"])
    expect(dialog).to_be_visible()
    assert drop_info(server, drop["slug"]).json()["max_downloads"] == 5

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert focused(page, "#drops-body button.edit"), "Escape returns to the Edit button"
    expect(cell(row(page, f"{word}.txt"), "Downloads")).to_have_text("0 of 5")


def test_edit_without_changes_sends_nothing(page: Page, server: LiveServer, word: str) -> None:
    upload(server, f"{word}.txt", title="as is")
    search(page, word)
    dialog = edit(page, f"{word}.txt")
    sent = sent_urls(page)
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#drops-status")).to_have_text(f"Nothing changed in {word}.txt.")
    assert not [url for url in sent if url.startswith("PATCH")]


# --- passwords --------------------------------------------------------------------------

def test_a_password_set_in_the_list_is_asked_of_anonymous_readers(
        page: Page, browser: Browser, server: LiveServer, word: str) -> None:  # noqa: F811
    data = b"behind a password\n" * 100
    drop = upload(server, f"{word}.txt", data)
    search(page, word)
    dialog = edit(page, f"{word}.txt")
    expect(dialog.get_by_label("Remove the password")).to_be_hidden()
    dialog.get_by_label("New password").fill("correct horse")
    dialog.get_by_role("button", name="Save").click()
    expect(cell(row(page, f"{word}.txt"), "Access")).to_have_text("Password")
    assert drop_info(server, drop["slug"]).json()["has_password"] is True

    form = server.request("GET", f"/{drop['slug']}", headers={"Accept": "text/html"})
    assert form.status_code == 401 and form.headers["Content-Type"].startswith("text/html")
    # A Basic challenge makes a browser put its own login prompt before the page's form.
    assert "basic" not in form.headers.get("WWW-Authenticate", "").lower(), form.headers

    reader = new_context(browser, accept_downloads=True)
    try:
        anonymous = reader.new_page()
        sent = sent_urls(anonymous)
        answer = anonymous.goto(drop["url"])
        assert answer is not None and answer.status == 401
        expect(anonymous.get_by_role("heading", name="This file is protected")).to_be_visible()
        assert anonymous.evaluate("getComputedStyle(document.body).margin") == "0px", \
            "the page's stylesheet is applied"
        field = anonymous.get_by_label("Password")
        assert focused(anonymous, "#password")
        field.fill("wrong horse")
        field.press("Enter")
        expect(anonymous.get_by_role("alert")).to_have_text("Wrong password")
        expect(anonymous.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
        anonymous.get_by_label("Password").fill("correct horse")
        anonymous.get_by_role("button", name="Download").click()
        # The password opens the drop's landing page; its Download button sends it again.
        expect(anonymous.get_by_role("heading", name=f"{word}.txt")).to_be_visible()
        with anonymous.expect_download() as download:
            anonymous.get_by_role("button", name="Download").click()
        assert Path(download.value.path()).read_bytes() == data
        assert download.value.suggested_filename == f"{word}.txt"
        assert not [url for url in sent if "horse" in url], "the password stays out of URLs"
    finally:
        reader.close()

    dialog = edit(page, f"{word}.txt")
    expect(dialog.get_by_label("New password")).to_have_value("")
    dialog.get_by_label("Remove the password").check()
    expect(dialog.get_by_label("New password")).to_be_disabled()
    dialog.get_by_role("button", name="Save").click()
    expect(cell(row(page, f"{word}.txt"), "Access")).to_have_text("Anyone with the link")
    assert server.request("GET", f"/{drop['slug']}").content == data


# --- delete -----------------------------------------------------------------------------

def test_delete_from_the_list_removes_the_drop(page: Page, server: LiveServer, word: str) -> None:
    keep = upload(server, f"{word}-keep.txt")
    gone = upload(server, f"{word}-gone.txt")
    search(page, word)
    button = row(page, f"{word}-gone.txt").get_by_role(
        "button", name=f"Delete {word}-gone.txt", exact=True)
    asked: list[str] = []

    def answer(accept: bool) -> None:
        page.once("dialog", lambda d: (asked.append(d.message),
                                       d.accept() if accept else d.dismiss()))

    answer(False)
    button.click()
    expect(listed(page)).to_have_count(2)
    assert asked == [f"Delete {word}-gone.txt? Its link stops working."]
    assert server.data.record(gone["slug"]) is not None

    answer(True)
    button.click()
    expect(listed(page)).to_have_text([f"{word}-keep.txt"])
    expect(page.locator("#drops-status")).to_have_text(f"{word}-gone.txt deleted. 1 drop.")
    assert focused(page, "#drops-region"), "the focus stays in the list"
    assert server.data.record(gone["slug"]) is None
    assert server.request("GET", f"/{gone['slug']}").status_code == 404
    assert server.request("GET", f"/{keep['slug']}").status_code == 200
    server.data.assert_consistent()


def test_a_drop_deleted_elsewhere_shows_the_servers_reasons(
        page: Page, server: LiveServer, word: str) -> None:
    drop = upload(server, f"{word}.txt", private="true")
    search(page, word)
    assert server.request("DELETE", f"/{drop['slug']}", headers=bearer()).status_code == 204
    again = server.request("DELETE", f"/{drop['slug']}", headers=bearer())
    assert again.status_code == 404
    reason = again.json()["error"]["message"]
    item = row(page, f"{word}.txt")
    item.locator("a.drop-link").click()
    expect(page.locator("#drops-status")).to_have_text(f"{word}.txt was not downloaded: {reason}")
    page.once("dialog", lambda d: d.accept())
    item.get_by_role("button", name=f"Delete {word}.txt").click()
    expect(page.locator("#drops-status")).to_have_text(f"{word}.txt was not deleted: {reason}")
    expect(item.get_by_role("button", name=f"Delete {word}.txt")).not_to_have_attribute(
        "aria-disabled", "true")


# --- tokens -----------------------------------------------------------------------------

def test_a_bad_token_is_shown_as_the_servers_message(
        context: BrowserContext, server: LiveServer) -> None:
    refused = server.request("GET", "/api/drops", headers=bearer("not-a-token"))
    assert refused.status_code == 401
    page, errors = open_page(context, server)
    token = page.get_by_label("Upload token")
    token.fill("not-a-token")
    token.press("Tab")
    expect(page.locator("#drops-status")).to_have_text(
        "Your drops could not be listed: " + refused.json()["error"]["message"])
    expect(token).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#drops-table")).to_be_hidden()

    token.fill(TOKEN)
    token.press("Tab")
    expect(page.locator("#drops-status")).to_have_text(re.compile(r"^\d+ drops?(, page|\.)"))
    expect(token).not_to_have_attribute("aria-invalid", "true")
    assert errors == []


def test_on_an_open_server_a_store_token_is_entered_under_my_drops(
        browser: Browser, tmp_path_factory: pytest.TempPathFactory,  # noqa: F811
        tmp_path: Path) -> None:
    with live_server(tmp_path_factory.mktemp("open"), server={"workers": 1}) as open_server:
        service = composition.start(load_config(str(open_server.config_path)))
        try:
            token = create_token(service, "alice")
        finally:
            service.close()
        context = new_context(browser)
        try:
            page, errors = open_page(context, open_server)
            expect(page.locator("#token")).to_have_count(0)
            field = page.get_by_label("Your token")
            expect(field).to_be_visible()
            field.fill(token)
            field.press("Enter")
            expect(page.locator("#drops-status")).to_have_text(
                "No drops yet: upload a file with your token.")
            path = tmp_path / "alice.txt"
            path.write_bytes(b"alice's file")
            open_options(page)
            upload_form(page).get_by_label("Private").check()
            page.set_input_files("#file", files=[path])
            expect(listed(page)).to_have_text(["alice.txt"])
            (drop,) = api_list(open_server, token)["drops"]
            assert drop["private"] is True
            assert open_server.data.record(drop["slug"])["owner"] == "alice"
            assert errors == []
        finally:
            context.close()
