"""The pages people see, in a real headless Chromium against a real gunicorn: on a phone
(390×844) and a desktop (1280×900) the file picker comes first and is on screen without
scrolling, the options folded under their summary; axe-core finds no accessibility
violation on the upload page (after an upload), a drop's landing page, the password page
and the result page, in the light and the dark scheme; the landing page's QR code decodes
(jsQR) to the link; the share button appears only where the browser has
``navigator.share``; and an upload through the page survives the browser going offline and
a reload, each time going on from the server's offset. Screenshots go to
``test-artifacts/``."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, Route, expect

from tests.live_server import REPO, LiveServer, wait_until
from tests.support.browser import (  # noqa: F401 (fixtures)
    MiB,
    browser,
    link_of,
    new_context,
    row,
    screenshot,
    server_for,
    throttle,
)

pytestmark = pytest.mark.browser

NODE_MODULES = REPO / "node_modules"
AXE = NODE_MODULES / "axe-core" / "axe.min.js"
JSQR = NODE_MODULES / "jsqr" / "dist" / "jsQR.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
SCHEMES = ["light", "dark"]
PASSWORD = "open sesame"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from server_for(tmp_path_factory.mktemp("pages"))


@pytest.fixture
def make_file(tmp_path: Path) -> Any:
    def make(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path
    return make


def upload(server: LiveServer, data: bytes = b"a small file\n", name: str = "notes.txt",
           **fields: str) -> str:
    """A drop made with curl's request; its link."""
    response = server.request("POST", "/", files={"file": (name, data, "text/plain")},
                              data=fields)
    assert response.status_code == 201, response.text
    return response.text.strip()


def page_in(context: BrowserContext) -> tuple[Page, list[str]]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text else None)
    return page, errors


# --- layout -----------------------------------------------------------------------------

@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_file_picker_comes_first_and_is_on_screen(browser: Browser, server: LiveServer,
                                                      viewport: dict[str, int]) -> None:
    context = new_context(browser, viewport=viewport)
    try:
        page, errors = page_in(context)
        page.goto(server.url("/"))
        pick = page.locator(".drop-zone .pick")
        expect(pick).to_be_visible()
        box = pick.bounding_box()
        zone = page.locator("#drop-zone").bounding_box()
        options = page.locator("#options").bounding_box()
        assert box and zone and options
        assert box["y"] + box["height"] <= viewport["height"], box
        assert zone["y"] < options["y"], "the drop zone comes before the options"
        expect(page.locator("#options")).not_to_have_attribute("open", re.compile(".*"))
        expect(page.locator("#expires")).to_be_hidden()
        expect(page.locator("#options > summary")).to_have_text(
            "Options: expires in 7 days, unlimited downloads")
        screenshot(page, f"upload-page-{'phone' if viewport is PHONE else 'desktop'}.png")
        assert errors == []
    finally:
        context.close()


# --- accessibility ----------------------------------------------------------------------

def axe_violations(page: Page) -> list[dict[str, Any]]:
    """What axe-core (from npm, injected into the page) finds wrong on it."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ["violations"]});
        return result.violations.map((v) => ({id: v.id, impact: v.impact,
            nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5)}));
    }""")
    return found


def result_page(page: Page, server: LiveServer) -> None:
    """The page a form post without the script gets: the form is posted as the browser
    would, past the script's own handler."""
    page.goto(server.url("/"))
    page.evaluate("""() => {
        const transfer = new DataTransfer();
        transfer.items.add(new File(["posted by the form"], "form.txt", {type: "text/plain"}));
        const input = document.getElementById("file");
        input.files = transfer.files;
        HTMLFormElement.prototype.submit.call(document.getElementById("upload"));
    }""")
    expect(page.get_by_role("heading", name="Uploaded")).to_be_visible()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_axe_finds_nothing_on_any_page(browser: Browser, server: LiveServer, scheme: str,
                                       make_file: Any) -> None:
    assert AXE.is_file(), "axe-core comes from npm: run make install"
    link = upload(server, title="Notes", description="For the meeting.", max_downloads="4")
    locked = upload(server, name="locked.txt", password=PASSWORD)
    # axe is injected as a script of its own, which the pages' policy would refuse.
    context = new_context(browser, color_scheme=scheme, bypass_csp=True)
    try:
        page, errors = page_in(context)
        found: dict[str, list[dict[str, Any]]] = {}

        page.goto(server.url("/"))
        page.set_input_files("#file", files=[make_file("a11y.txt", b"checked")])
        expect(row(page, "a11y.txt")).to_have_class(re.compile(r"\bdone\b"))
        page.locator("#options > summary").click()
        found["upload page"] = axe_violations(page)
        page.goto(link)
        expect(page.get_by_role("link", name="Download")).to_be_visible()
        found["landing page"] = axe_violations(page)
        screenshot(page, f"landing-page-{scheme}.png")
        page.goto(locked)
        expect(page.get_by_label("Password")).to_be_visible()
        found["password page"] = axe_violations(page)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Download").click()
        expect(page.get_by_role("heading", name="locked.txt")).to_be_visible()
        found["password's landing page"] = axe_violations(page)
        result_page(page, server)
        found["result page"] = axe_violations(page)
        page.goto(server.url("/no-such-drop"))
        expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
        found["missing drop's page"] = axe_violations(page)
        assert {name: v for name, v in found.items() if v} == {}
        assert errors == []
    finally:
        context.close()


# --- the landing page -------------------------------------------------------------------

def decoded_qr(page: Page, selector: str) -> str | None:
    """The text of the QR code drawn in ``selector``, as jsQR reads the image's pixels."""
    page.add_script_tag(path=str(JSQR))
    return page.evaluate("""async (selector) => {
        const img = document.querySelector(selector);
        await img.decode();
        const size = 400;
        const canvas = new OffscreenCanvas(size, size);
        const ctx = canvas.getContext("2d");
        ctx.fillStyle = "#fff";
        ctx.fillRect(0, 0, size, size);
        ctx.imageSmoothingEnabled = false;
        ctx.drawImage(img, 0, 0, size, size);
        const pixels = ctx.getImageData(0, 0, size, size);
        const code = jsQR(pixels.data, size, size);
        return code ? code.data : null;
    }""", selector)


def test_the_landing_page_shows_the_drop_and_its_qr_code_reads_as_the_link(
        browser: Browser, server: LiveServer) -> None:
    link = upload(server, data=b"x" * 3000, title="Plans", max_downloads="1")
    context = new_context(browser, bypass_csp=True, locale="de-DE")
    try:
        page, errors = page_in(context)
        page.goto(link)
        expect(page.get_by_role("heading", name="Plans")).to_be_visible()
        # The reader's own units and language: a German browser writes "2,9 KiB".
        expect(page.locator("data.size")).to_have_text("2,9 KiB (3.000 bytes)")
        expect(page.locator(".relative")).to_have_text(re.compile(r"^\(in \d+ Tagen\)$"))
        assert decoded_qr(page, "img.qr") == link
        expect(page.locator("button.share-sheet")).to_be_hidden()
        assert errors == []
    finally:
        context.close()
    # Viewing counted nothing: the one download is still there.
    assert server.request("GET", link.removeprefix(server.base_url)).status_code == 200


SHARE_SHEET = """
window.shared = [];
navigator.share = (data) => { window.shared.push(data); return Promise.resolve(); };"""


def test_the_share_button_hands_the_link_to_the_share_sheet_where_there_is_one(
        browser: Browser, server: LiveServer, make_file: Any) -> None:
    link = upload(server)
    context = new_context(browser, bypass_csp=True)
    context.add_init_script(SHARE_SHEET)
    try:
        page, errors = page_in(context)
        page.goto(link)
        page.get_by_role("button", name="Share…").click()
        assert page.evaluate("window.shared.map((d) => d.url)") == [link]

        page.goto(server.url("/"))
        page.set_input_files("#file", files=[make_file("shared.txt", b"to share")])
        item = row(page, "shared.txt")
        expect(item).to_have_class(re.compile(r"\bdone\b"))
        new_link = link_of(item)
        item.get_by_role("button", name="Share shared.txt").click()
        assert page.evaluate("window.shared.map((d) => d.url)") == [new_link]
        assert decoded_qr(page, "li.upload img.qr") == new_link
        assert errors == []
    finally:
        context.close()


# --- resumable uploads through the page -------------------------------------------------

def patches(page: Page) -> list[dict[str, str]]:
    """The headers of every PATCH the page sends from now on."""
    sent: list[dict[str, str]] = []

    def note(request: Request) -> None:
        if request.method == "PATCH":
            sent.append(request.headers)
    page.on("request", note)
    return sent


def creations(page: Page) -> list[str]:
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url)
            if r.method == "POST" and r.url.endswith("/api/uploads") else None)
    return sent


def staged_bytes(server: LiveServer) -> int:
    return sum(path.stat().st_size for path in server.data.staging_files()
               if path.suffix == ".upload")


#: Chromium's offline switch stops new requests, not one already sending: the page's tus
#: client is made to send small chunks, each held a moment (:func:`slow_patches`), so that
#: the switch lands between two of them.
SMALL_CHUNKS = """
let wrapped;
Object.defineProperty(globalThis, "tus", { configurable: true, get: () => wrapped,
  set(client) {
    const Upload = client.Upload;
    client.Upload = class extends Upload {
      constructor(file, options) { super(file, { ...options, chunkSize: 256 * 1024 }); }
    };
    wrapped = client;
  } });"""


def slow_patches(page: Page, seconds: float) -> None:
    """Hold each PATCH of an upload ``seconds`` before it goes out."""
    def hold(route: Route) -> None:
        if route.request.method == "PATCH":
            time.sleep(seconds)
        route.continue_()
    page.route("**/api/uploads/*", hold)


def test_an_upload_goes_on_after_the_browser_was_offline(
        browser: Browser, server: LiveServer, make_file: Any) -> None:
    data = random.Random("offline").randbytes(3 * MiB)
    context = new_context(browser)
    context.add_init_script(SMALL_CHUNKS)
    try:
        page, errors = page_in(context)
        page.goto(server.url("/"))
        sent = patches(page)
        slow_patches(page, 0.25)
        page.set_input_files("#file", files=[make_file("away.bin", data)])
        item = row(page, "away.bin")
        page.wait_for_function("() => document.querySelector('li.upload progress')?.value "
                               "> 600 * 1024")
        context.set_offline(True)
        expect(item.locator(".message")).to_have_text(
            "Offline: the upload goes on when the connection is back.")
        kept = staged_bytes(server)
        assert 0 < kept < len(data)
        context.set_offline(False)
        expect(item).to_have_class(re.compile(r"\bdone\b"), timeout=30_000)
        offsets = [int(h["upload-offset"]) for h in sent]
        assert offsets[0] == 0 and len(offsets) >= 2 and offsets[-1] > 0, offsets
        got = server.request("GET", link_of(item).removeprefix(server.base_url))
        assert got.content == data
        assert errors == []
    finally:
        context.close()


def test_an_upload_goes_on_after_a_reload_when_the_same_file_is_picked(
        browser: Browser, server: LiveServer, make_file: Any) -> None:
    data = random.Random("reload").randbytes(3 * MiB)
    path = make_file("again.bin", data)
    context = new_context(browser)
    try:
        page, errors = page_in(context)
        page.on("dialog", lambda dialog: dialog.accept())  # "leave the page?" yes
        page.goto(server.url("/"))
        created = creations(page)
        throttle(page, 512 * 1024)
        page.set_input_files("#file", files=[path])
        assert wait_until(lambda: staged_bytes(server) > 256 * 1024, 15), "nothing arrived"
        page.reload()
        expect(page.locator("li.upload")).to_have_count(0)
        kept = staged_bytes(server)
        assert 0 < kept < len(data)

        sent = patches(page)
        page.set_input_files("#file", files=[path])
        item = row(page, "again.bin")
        expect(item).to_have_class(re.compile(r"\bdone\b"), timeout=30_000)
        assert len(created) == 1, "the same upload went on: no second one was made"
        assert int(sent[0]["upload-offset"]) > 0, sent
        got = server.request("GET", link_of(item).removeprefix(server.base_url))
        assert got.content == data
        # Done: the browser keeps no address of it to resume.
        assert page.evaluate("Object.keys(localStorage).filter((k) => k.startsWith('tus::'))") \
            == []
        assert errors == []
    finally:
        context.close()
