"""The upload page in a real headless Chromium (Debian's ``chromium`` driven by Playwright)
against a real gunicorn: a throttled upload shows its progress and ends with a link that
downloads the same bytes; dropped files go up one request each; Copy puts the link on the
clipboard (and falls back when the Clipboard API refuses); Cancel stops an upload and the
server keeps nothing; the server's own reason is shown for 409, 413 and 401; Delete removes
the drop; the upload token is asked for, kept and sent; the keyboard alone can upload; and
the page still uploads as a plain form with JavaScript off. A screenshot of the page is
saved to ``test-artifacts/upload-page.png``."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, FileChooser, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.http_helpers import blake3_hash
from tests.live_server import LiveServer, wait_until
from tests.support.browser import (  # noqa: F401 (fixtures)
    ARTIFACTS,
    MiB,
    browser,
    context,
    link_of,
    new_context,
    open_options,
    open_page,
    row,
    screenshot,
    server_for,
    throttle,
)

pytestmark = pytest.mark.browser

LIMIT = 6 * MiB
TOKEN = "browser-upload-token-42"
MakeFile = Callable[[str, bytes], Path]


# --- fixtures ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from server_for(tmp_path_factory.mktemp("page"),
                          limits={"max_upload_size": LIMIT})


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from server_for(tmp_path_factory.mktemp("page-token"),
                          auth={"upload_tokens": [TOKEN]})


@pytest.fixture
def page(context: BrowserContext, server: LiveServer) -> Iterator[Page]:
    page, errors = open_page(context, server)
    yield page
    assert errors == [], "the page's script failed"


# --- helpers ----------------------------------------------------------------------------

def payload(size: int, seed: str) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture
def make_file(tmp_path: Path) -> MakeFile:
    """A file on disk to pick: Chromium reads it by path, far faster than a buffer sent
    through Playwright."""

    def make(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return make


def pick(page: Page, *files: Path) -> None:
    page.set_input_files("#file", files=list(files))


def get(server: LiveServer, url: str) -> Any:
    assert url.startswith(server.base_url + "/"), url
    return server.request("GET", urlsplit(url).path)


def server_reason(server: LiveServer, data: bytes, fields: Mapping[str, str] | None = None,
                  headers: Mapping[str, str] | None = None) -> tuple[int, str]:
    """What the server says to the same upload sent without the page: status and reason."""
    response = server.request("POST", "/", files={"file": ("same.bin", data)},
                              data=dict(fields or {}),
                              headers={"Accept": "application/json", **(headers or {})})
    return response.status_code, response.json()["error"]["message"]


def focused(page: Page, selector: str) -> bool:
    return page.evaluate("(s) => document.activeElement.matches(s)", selector)


def post_requests(page: Page) -> list[str]:
    """URLs of the POST requests the page sends from now on."""
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url)
            if request.method == "POST" else None)
    return sent


# --- uploading --------------------------------------------------------------------------

def test_a_slow_upload_shows_progress_then_the_link_size_and_hash(
        page: Page, server: LiveServer, make_file: MakeFile) -> None:
    data = payload(4 * MiB, "progress")
    throttle(page, 2 * MiB)
    pick(page, make_file("big.bin", data))
    item = row(page, "big.bin")
    bar = item.locator("progress")
    page.wait_for_function("""() => {
        const bar = document.querySelector("li.upload progress");
        return bar && bar.value > 0 && bar.value < bar.max; }""")
    first = bar.evaluate("b => b.value")
    expect(item.locator(".stats")).to_have_text(re.compile(
        r"^[\d.]+ (B|KiB|MiB) of 4\.0 MiB · \d{1,2}% · [\d.]+ (B|KiB|MiB)/s · \d+ s left$"))
    screenshot(page, "upload-progress.png")
    page.wait_for_function("(v) => document.querySelector('li.upload progress')?.value > v",
                           arg=first)

    expect(item).to_have_class(re.compile(r"\bdone\b"))
    url = link_of(item)
    expect(item.locator("a.link")).to_have_text(url)
    expect(item.locator("dd").nth(0)).to_have_text("4.0 MiB (4,194,304 bytes)")
    expect(item.locator("dd code").nth(0)).to_have_text(blake3_hash(data))
    token = item.locator("code.token").inner_text()
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,}", token)
    expect(page.locator("#status")).to_have_text(f"big.bin uploaded: {url}")
    response = get(server, url)
    assert response.status_code == 200 and response.content == data
    screenshot(page, "upload-page.png")


def test_dropped_files_go_up_one_request_each(page: Page, server: LiveServer) -> None:
    contents = {"one.txt": "the first file\n", "two.txt": "second\n" * 50,
                "three.csv": "a,b\n1,2\n"}
    sent = post_requests(page)
    transfer = page.evaluate_handle("""(files) => {
        const transfer = new DataTransfer();
        for (const [name, text] of files) transfer.items.add(new File([text], name));
        return transfer; }""", list(contents.items()))
    page.dispatch_event("#drop-zone", "dragenter", {"dataTransfer": transfer})
    expect(page.locator("#drop-zone")).to_have_class(re.compile(r"\bover\b"))
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    expect(page.locator("#drop-zone")).not_to_have_class(re.compile(r"\bover\b"))

    for name, text in contents.items():
        item = row(page, name)
        expect(item).to_have_class(re.compile(r"\bdone\b"))
        assert get(server, link_of(item)).content == text.encode()
    assert len({link_of(row(page, name)) for name in contents}) == 3
    assert sent == [server.url("/api/uploads")] * 3  # one tus upload each


def test_the_options_go_with_the_upload(page: Page, server: LiveServer,
                                        make_file: MakeFile) -> None:
    expect(page.locator("#options-summary")).to_have_text("expires in 7 days, unlimited downloads")
    open_options(page)
    page.get_by_label("Expires after").select_option(label="1 hour")
    page.get_by_label("Maximum downloads").fill("2")
    page.get_by_label("Custom link name").fill("js-options")
    expect(page.locator("#options-summary")).to_have_text(
        "expires in 1 hour, at most 2 downloads, custom link")
    pick(page, make_file("options.txt", b"with options"))
    item = row(page, "options.txt")
    expect(item).to_have_class(re.compile(r"\bdone\b"))
    assert link_of(item) == server.url("/js-options")
    expect(item.locator("dd").nth(3)).to_have_text("at most 2")
    record = server.data.record("js-options")
    assert record is not None
    assert (record["max_downloads"], record["expires_at"] - record["created_at"]) == (2, 3600)


@pytest.mark.parametrize(("slug", "files"), [("-not-a-slug", 1), ("one-name", 2)])
def test_bad_options_are_caught_before_anything_is_sent(
        page: Page, slug: str, files: int, make_file: MakeFile) -> None:
    sent = post_requests(page)
    open_options(page)
    page.fill("#slug", slug)
    page.locator("#options > summary").click()  # folded again: the page unfolds it
    expect(page.locator("#slug")).to_be_hidden()
    pick(page, *(make_file(f"f{i}.txt", b"x") for i in range(files)))
    page.wait_for_timeout(300)
    assert sent == []
    expect(page.locator("li.upload")).to_have_count(0)
    expect(page.locator("#slug")).to_be_visible()
    assert focused(page, "#slug")


# --- copy -------------------------------------------------------------------------------

REFUSING_CLIPBOARD = """
window.writeTextCalls = 0;
navigator.clipboard.writeText = () => {
  window.writeTextCalls += 1;
  return Promise.reject(new DOMException("refused", "NotAllowedError"));
};"""


@pytest.mark.parametrize("clipboard_api", ["works", "refuses"])
def test_copy_puts_the_link_on_the_clipboard(
        browser: Browser, server: LiveServer, clipboard_api: str, make_file: MakeFile) -> None:
    context = new_context(browser, permissions=["clipboard-read", "clipboard-write"])
    try:
        if clipboard_api == "refuses":
            context.add_init_script(REFUSING_CLIPBOARD)
        page, errors = open_page(context, server)
        pick(page, make_file("copy-me.txt", b"copy"))
        item = row(page, "copy-me.txt")
        expect(item).to_have_class(re.compile(r"\bdone\b"))
        copy = item.get_by_role("button", name="Copy link to copy-me.txt", exact=True)
        copy.click()
        expect(copy).to_have_text("Copied")
        expect(page.locator("#status")).to_have_text("Link copied")
        assert page.evaluate("navigator.clipboard.readText()") == link_of(item)
        if clipboard_api == "refuses":
            assert page.evaluate("window.writeTextCalls") == 1
            assert focused(page, "button.copy"), "focus returns to the button"
        assert errors == []
    finally:
        context.close()


# --- cancel -----------------------------------------------------------------------------

def test_cancel_stops_the_upload_and_the_server_keeps_nothing(
        page: Page, server: LiveServer, make_file: MakeFile) -> None:
    server.data.assert_consistent()
    before = server.data.snapshot()
    throttle(page, 1 * MiB)
    pick(page, make_file("cancel-me.bin", payload(5 * MiB, "cancel")))
    item = row(page, "cancel-me.bin")
    # Bytes have reached the server: it has staged the file.
    assert wait_until(lambda: server.data.staging_files(), 10), "the upload never arrived"
    cancel = item.get_by_role("button", name="Cancel upload of cancel-me.bin", exact=True)
    cancel.focus()
    page.keyboard.press("Enter")

    expect(item).to_have_class(re.compile(r"\bcancelled\b"))
    expect(item.locator(".message")).to_have_text("Cancelled: nothing was stored.")
    expect(item.locator("progress")).to_have_count(0)
    assert focused(page, "li.upload"), "focus stays on the upload, not lost to the page"
    expect(page.locator("#status")).to_have_text("Upload of cancel-me.bin cancelled")
    assert wait_until(lambda: server.data.snapshot() == before, 10), server.data.snapshot()
    server.data.assert_consistent()


# --- errors from the server -------------------------------------------------------------

def assert_failed_with(page: Page, filename: str, reason: str) -> None:
    item = row(page, filename)
    expect(item).to_have_class(re.compile(r"\bfailed\b"))
    expect(item.locator(".message")).to_have_text(f"Upload failed: {reason}")
    expect(page.locator("#status")).to_have_text(f"{filename}: upload failed: {reason}")


def test_a_taken_slug_shows_the_servers_reason(
        page: Page, server: LiveServer, make_file: MakeFile) -> None:
    first = server.request("POST", "/", files={"file": ("a.txt", b"first")},
                           data={"slug": "page-taken"})
    assert first.status_code == 201
    before = server.data.snapshot()
    status, reason = server_reason(server, b"second", {"slug": "page-taken"})
    assert status == 409

    open_options(page)
    page.fill("#slug", "page-taken")
    pick(page, make_file("second.txt", b"second"))
    assert_failed_with(page, "second.txt", reason)
    assert server.data.snapshot() == before
    assert get(server, server.url("/page-taken")).content == b"first"


@pytest.mark.parametrize("size", [LIMIT + 1, LIMIT + 3 * MiB],
                         ids=["grows-past-the-limit", "declared-too-large"])
def test_a_file_over_the_limit_shows_the_servers_reason(
        page: Page, server: LiveServer, size: int, make_file: MakeFile) -> None:
    data = payload(size, "too-large")
    status, reason = server_reason(server, data)
    assert status == 413
    server.data.assert_consistent()
    before = server.data.snapshot()
    pick(page, make_file("huge.bin", data))
    assert_failed_with(page, "huge.bin", reason)
    server.data.assert_consistent()
    assert server.data.snapshot() == before


# --- delete -----------------------------------------------------------------------------

def test_delete_removes_the_drop(page: Page, server: LiveServer, make_file: MakeFile) -> None:
    pick(page, make_file("delete-me.txt", b"short-lived"))
    item = row(page, "delete-me.txt")
    expect(item).to_have_class(re.compile(r"\bdone\b"))
    url = link_of(item)
    slug = urlsplit(url).path.lstrip("/")
    assert server.data.record(slug) is not None

    item.get_by_role("button", name="Delete delete-me.txt", exact=True).click()
    expect(item).to_have_class(re.compile(r"\bdeleted\b"))
    expect(item.locator(".message")).to_have_text("Deleted.")
    expect(item.get_by_role("button")).to_have_count(0)
    assert focused(page, "li.upload")
    assert get(server, url).status_code == 404
    assert server.data.record(slug) is None
    server.data.assert_consistent()


def test_delete_of_a_drop_already_gone_shows_the_reason(
        page: Page, server: LiveServer, make_file: MakeFile) -> None:
    pick(page, make_file("gone.txt", b"gone"))
    item = row(page, "gone.txt")
    expect(item).to_have_class(re.compile(r"\bdone\b"))
    url = link_of(item)
    token = item.locator("code.token").inner_text()
    assert server.request("DELETE", urlsplit(url).path,
                          headers={"X-Delete-Token": token}).status_code == 204
    again = server.request("DELETE", urlsplit(url).path,
                           headers={"X-Delete-Token": token, "Accept": "application/json"})
    assert again.status_code == 404

    delete = item.get_by_role("button", name="Delete gone.txt", exact=True)
    delete.click()
    expect(item.locator(".message")).to_have_text(
        f"Not deleted: {again.json()['error']['message']}")
    expect(delete).to_be_enabled()
    assert focused(page, "button.delete"), "the button keeps the focus for another try"
    expect(item).to_have_class(re.compile(r"\bdone\b"))


# --- upload token -----------------------------------------------------------------------

def test_the_token_is_asked_for_kept_and_sent(
        context: BrowserContext, token_server: LiveServer, make_file: MakeFile) -> None:
    page, errors = open_page(context, token_server)
    token_field = page.get_by_label("Upload token")
    expect(token_field).to_be_visible()
    status, reason = server_reason(token_server, b"no token")
    assert status == 401

    pick(page, make_file("no-token.txt", b"no token"))
    assert_failed_with(page, "no-token.txt", reason)
    assert focused(page, "#token"), "a missing token sends the user to its field"
    assert token_server.data.records() == []

    token_field.fill(TOKEN)
    page.reload()
    expect(page.get_by_label("Upload token")).to_have_value(TOKEN)
    pick(page, make_file("with-token.txt", b"with token"))
    item = row(page, "with-token.txt")
    expect(item).to_have_class(re.compile(r"\bdone\b"))
    assert get(token_server, link_of(item)).content == b"with token"
    assert [r["filename"] for r in token_server.data.records()] == ["with-token.txt"]
    assert errors == []


def test_no_token_field_when_the_server_needs_none(page: Page) -> None:
    expect(page.locator("#token")).to_have_count(0)


# --- keyboard and no JavaScript ---------------------------------------------------------

def press_for_file_chooser(page: Page, key: str, tries: int = 3) -> FileChooser:
    """Press ``key`` on the focused file input until Chromium opens its chooser: on a loaded
    machine it now and then drops the first request (the press itself is not lost)."""
    for attempt in range(tries):
        try:
            with page.expect_file_chooser(timeout=5000) as chooser:
                page.keyboard.press(key)
            return chooser.value
        except PlaywrightTimeoutError:
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def test_the_keyboard_alone_picks_and_uploads_a_file(
        page: Page, server: LiveServer, make_file: MakeFile) -> None:
    for _ in range(12):
        if focused(page, "#file"):
            break
        page.keyboard.press("Tab")
    assert focused(page, "#file"), "the file picker is reachable with Tab"
    chooser = press_for_file_chooser(page, "Space")
    chooser.set_files(make_file("keyboard.txt", b"typed"))
    item = row(page, "keyboard.txt")
    expect(item).to_have_class(re.compile(r"\bdone\b"))
    page.keyboard.press("Tab")
    assert focused(page, "li.upload a.link"), "the new link is next in the tab order"
    page.keyboard.press("Tab")
    assert focused(page, "li.upload button.copy")


def test_without_javascript_the_form_posts_and_gets_the_result_page(
        browser: Browser, server: LiveServer, make_file: MakeFile) -> None:
    context = new_context(browser, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(server.url("/"))
        expect(page.locator("#file")).to_be_visible()
        data = payload(200_000, "no-js")
        open_options(page)
        page.get_by_label("Expires after").select_option(label="1 hour")
        page.get_by_label("Maximum downloads").fill("3")
        page.get_by_label("File").set_input_files(make_file("plain.bin", data))
        with page.expect_navigation():
            page.get_by_role("button", name="Upload").click()

        expect(page.get_by_role("heading", name="Uploaded")).to_be_visible()
        url = link_of(page.locator("main"))
        slug = urlsplit(url).path.lstrip("/")
        record = server.data.record(slug)
        assert record is not None
        assert (record["max_downloads"], record["expires_at"] - record["created_at"]) == (3, 3600)
        expect(page.locator("code.token")).not_to_be_empty()
        expect(page.locator("main")).to_contain_text(blake3_hash(data))
        assert get(server, url).content == data
    finally:
        context.close()
