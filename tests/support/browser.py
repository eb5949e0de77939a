"""What the browser tests share: Debian's Chromium under Playwright, a one-worker server
for a page, a browser context, and the page's own controls (its options, an upload's row
and link), Chromium's network throttle and screenshots into ``test-artifacts/``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect, sync_playwright

from tests.live_server import REPO, LiveServer, live_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts"
MiB = 1024 * 1024
TIMEOUT_MS = 15_000

expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def server_for(base: Path, **sections: Any) -> Iterator[LiveServer]:
    # One worker: the page's tests need no more, and it starts faster.
    with live_server(base, server={"workers": 1, "threads": 4}, **sections) as server:
        yield server


def new_context(browser: Browser, **options: Any) -> BrowserContext:
    context = browser.new_context(**{"viewport": {"width": 900, "height": 900}, **options})
    context.set_default_timeout(TIMEOUT_MS)
    return context


def open_page(context: BrowserContext, server: LiveServer) -> tuple[Page, list[str]]:
    """The upload page, and the list its uncaught script errors and Content Security Policy
    violations go into."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text else None)
    page.goto(server.url("/"))
    return page, errors


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = new_context(browser)
    yield context
    context.close()


def row(page: Page, filename: str) -> Locator:
    return page.locator("li.upload").filter(
        has=page.locator(".name", has_text=re.compile(f"^{re.escape(filename)}$")))


def throttle(page: Page, bytes_per_second: int) -> None:
    """Chromium's own network emulation: the browser sends no faster than this."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1,
        "uploadThroughput": bytes_per_second})


def open_options(page: Page) -> None:
    """Unfold the upload's options, as a person clicks their summary."""
    page.locator("#options > summary").click()
    expect(page.locator("#options")).to_have_attribute("open", "")


def link_of(item: Locator) -> str:
    href = item.locator("a.link").get_attribute("href")
    assert href
    return href


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
