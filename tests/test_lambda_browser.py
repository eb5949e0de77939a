"""The upload page under the Lambda host, in a real headless Chromium: the page is served
by teledrop's handler behind ministack's HTTP API, its script sends a file of several parts
as a direct upload straight to ministack's S3 (across origins, under the bucket's CORS
rule), and the drop it makes holds the file byte for byte. The same file picked again after
a reload goes on with the parts still missing. A bucket whose rule does not expose ``ETag``
makes the page say why it failed, and leaves nothing in the bucket."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.services.ministack import HttpApi
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, MiB, link_of, row
from tests.support.hosts import SharedBackends
from tests.support.lambda_function import api, backends  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

TIMEOUT_MS = 60_000
#: Three parts of 5 MiB, the last one short.
SIZE = 12 * MiB + 7


@pytest.fixture(scope="module")
def lambda_browser(api: HttpApi) -> Iterator[Browser]:
    """Chromium, with the API's name resolving to ministack's address, as DNS would."""
    host = api.host.split(":", 1)[0]
    address = api.address.split(":", 1)[0]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {host} {address}"])
        yield chromium
        chromium.close()


def bucket_cors(backends: SharedBackends, api: HttpApi, expose: list[str],
                origin: str | None = None) -> None:
    """The bucket's CORS rule as docs/serverless.md gives it, for the page's origin (or
    ``origin``)."""
    rule: dict[str, Any] = {"AllowedOrigins": [origin or api.url.rstrip("/")],
                            "AllowedMethods": ["PUT"], "AllowedHeaders": ["*"],
                            "ExposeHeaders": expose, "MaxAgeSeconds": 3600}
    backends.endpoint.client().put_bucket_cors(Bucket=backends.bucket,
                                               CORSConfiguration={"CORSRules": [rule]})


def open_page(browser: Browser, api: HttpApi) -> tuple[Page, list[str]]:
    context = browser.new_context(viewport={"width": 900, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    page.goto(api.url)
    expect(page.locator("html")).to_have_class(re.compile(r"\bjs\b"))
    return page, errors


def big_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(SIZE)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    return path, data


def test_the_page_sends_a_file_in_parts_straight_to_the_bucket(
        lambda_browser: Browser, api: HttpApi, backends: SharedBackends, tmp_path: Path) -> None:
    bucket_cors(backends, api, ["ETag"])
    path, data = big_file(tmp_path)
    page, errors = open_page(lambda_browser, api)
    parts: list[str] = []
    page.on("request", lambda request: parts.append(request.url)
            if request.method == "PUT" else None)
    page.set_input_files("#file", files=[str(path)])
    item = row(page, "big.bin")
    expect(item).to_have_class(re.compile(r"\bdone\b"), timeout=TIMEOUT_MS)
    link = link_of(item)
    slug = link.rsplit("/", 1)[1]
    info = api.request("GET", f"/api/drops/{slug}", headers={"Accept": "application/json"})
    assert info.status_code == 200, info.text
    assert info.json()["size"] == SIZE
    assert info.json()["hash"] == f"blake3:{blake3(data).hexdigest()}"
    # three part PUTs, each to the bucket, none through the function
    assert len(parts) == 3 and all(url.startswith(f"http://{api.address}/") for url in parts)
    assert backends.multipart_uploads() == []
    assert errors == []
    page.context.close()


def test_parts_the_network_drops_pause_the_upload_resume_sends_them_and_cancel_keeps_nothing(
        lambda_browser: Browser, api: HttpApi, backends: SharedBackends, tmp_path: Path) -> None:
    """Every part PUT cut (the browser's network refuses them): each part is tried again,
    then the upload pauses; Resume, with the network back, sends the parts and the drop is
    whole. A second upload cut the same way and cancelled leaves nothing in the bucket."""
    bucket_cors(backends, api, ["ETag"])
    objects = backends.objects()
    path, data = big_file(tmp_path)
    page, _ = open_page(lambda_browser, api)
    bucket = f"http://{api.address}/**"
    page.route(bucket, lambda route: route.abort()
               if route.request.method == "PUT" else route.continue_())
    page.set_input_files("#file", files=[str(path)])
    item = row(page, "big.bin")
    expect(item).to_have_class(re.compile(r"\bpaused\b"), timeout=TIMEOUT_MS)
    assert len(backends.multipart_uploads()) == 1  # created, waiting for its parts
    page.unroute(bucket)
    item.get_by_role("button", name="Resume upload of big.bin").click()
    expect(item).to_have_class(re.compile(r"\bdone\b"), timeout=TIMEOUT_MS)
    slug = link_of(item).rsplit("/", 1)[1]
    info = api.request("GET", f"/api/drops/{slug}", headers={"Accept": "application/json"})
    assert info.json()["hash"] == f"blake3:{blake3(data).hexdigest()}"

    kept = backends.objects()
    page.route(bucket, lambda route: route.abort()
               if route.request.method == "PUT" else route.continue_())
    other = tmp_path / "other.bin"
    other.write_bytes(data[:SIZE // 2])
    page.set_input_files("#file", files=[str(other)])
    second = row(page, "other.bin")
    expect(second).to_have_class(re.compile(r"\bpaused\b"), timeout=TIMEOUT_MS)
    second.get_by_role("button", name="Cancel upload of other.bin").click()
    expect(second).to_have_class(re.compile(r"\bcancelled\b"))
    for _ in range(100):
        if not backends.multipart_uploads():
            break
        page.wait_for_timeout(100)
    assert backends.multipart_uploads() == [] and backends.objects() == kept
    assert len(kept) == len(objects) + 1  # the resumed drop, nothing else
    page.context.close()


#: True once the page keeps an upload with two stored parts, for a reload to go on with.
TWO_PARTS_KEPT = """() => Object.keys(localStorage).some((key) =>
    key.startsWith("teledrop-direct::") && key.endsWith("::parts")
    && JSON.parse(localStorage.getItem(key)).length === 2)"""
KEPT_UPLOADS = """() => Object.keys(localStorage).filter((key) => key.startsWith("teledrop-direct::"))"""


def part_number(url: str) -> int:
    return int(parse_qs(urlsplit(url).query)["partNumber"][0])


def two_parts_then_reload(page: Page, api: HttpApi, path: Path) -> None:
    """Pick ``path``; once its first two parts are stored (its third never gets through),
    reload the page, with the network whole again."""
    bucket = f"http://{api.address}/**"
    page.route(bucket, lambda route: route.abort()
               if route.request.method == "PUT" and part_number(route.request.url) == 3
               else route.continue_())
    page.set_input_files("#file", files=[str(path)])
    page.wait_for_function(TWO_PARTS_KEPT, timeout=TIMEOUT_MS)
    page.unroute(bucket)
    page.reload()
    expect(page.locator("html")).to_have_class(re.compile(r"\bjs\b"))


def assert_whole(api: HttpApi, item: Any, data: bytes) -> None:
    expect(item).to_have_class(re.compile(r"\bdone\b"), timeout=TIMEOUT_MS)
    slug = link_of(item).rsplit("/", 1)[1]
    info = api.request("GET", f"/api/drops/{slug}", headers={"Accept": "application/json"})
    assert info.json()["hash"] == f"blake3:{blake3(data).hexdigest()}"


def test_a_file_picked_again_after_a_reload_sends_only_its_missing_parts(
        lambda_browser: Browser, api: HttpApi, backends: SharedBackends, tmp_path: Path) -> None:
    bucket_cors(backends, api, ["ETag"])
    objects = backends.objects()
    path, data = big_file(tmp_path)
    page, errors = open_page(lambda_browser, api)
    two_parts_then_reload(page, api, path)
    sent: list[int] = []
    page.on("request", lambda request: sent.append(part_number(request.url))
            if request.method == "PUT" else None)
    page.set_input_files("#file", files=[str(path)])
    assert_whole(api, row(page, "big.bin"), data)
    assert sent == [3]
    assert page.evaluate(KEPT_UPLOADS) == []  # completed: nothing kept for a later page
    assert backends.multipart_uploads() == []
    assert len(backends.objects()) == len(objects) + 1
    assert not [error for error in errors if "net::ERR_FAILED" not in error]
    page.context.close()


def test_a_kept_upload_the_bucket_no_longer_has_starts_again_as_a_new_one(
        lambda_browser: Browser, api: HttpApi, backends: SharedBackends, tmp_path: Path) -> None:
    """The upload a page kept was aborted meanwhile (as gc aborts a stale one): the file
    picked again after the reload goes up whole, as a new upload."""
    bucket_cors(backends, api, ["ETag"])
    path, data = big_file(tmp_path)
    page, _ = open_page(lambda_browser, api)
    two_parts_then_reload(page, api, path)
    client = backends.endpoint.client()
    for upload in client.list_multipart_uploads(Bucket=backends.bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=backends.bucket, Key=upload["Key"],
                                      UploadId=upload["UploadId"])
    sent: list[int] = []
    page.on("request", lambda request: sent.append(part_number(request.url))
            if request.method == "PUT" else None)
    page.set_input_files("#file", files=[str(path)])
    assert_whole(api, row(page, "big.bin"), data)
    assert 3 in sent and sorted(set(sent)) == [1, 2, 3]  # the gone one's part 3, then all
    assert page.evaluate(KEPT_UPLOADS) == []
    assert backends.multipart_uploads() == []
    page.context.close()
