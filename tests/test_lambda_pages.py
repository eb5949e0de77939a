"""The Lambda host's browser side, against the WSGI host on the same config, bucket and
database: the same pages for the same requests (the upload page differing only in how its
script sends files), the same content negotiation and ``Vary``, the pages' static files,
the same access-log line and the same CORS on the direct-upload API."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask

from teledrop.core.config import load_config
from teledrop.hosts import pages
from teledrop.hosts.assets import STATIC
from teledrop.hosts.aws_lambda import EVENT_FILE_LIMIT, LambdaHost
from teledrop.hosts.http import DIRECT_CORS_HEADERS
from teledrop.web import create_app
from teledrop.web.app import service_of
from tests.lambda_events import event, multipart
from tests.services.seaweedfs import S3Endpoint
from tests.support.access import access_lines  # noqa: F401 (a fixture)
from tests.support.lambda_host import (  # noqa: F401 (lambda_env, make_host are fixtures)
    body_of,
    follow,
    lambda_env,
    make_host,
    put,
    slug_of,
)

pytestmark = pytest.mark.entry_points("s3_storage", "postgres_meta")

BASE = "https://drop.example.com"
#: Chromium opening a link.
NAVIGATE = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8",
            "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}
#: Headers whose answer must not differ between the hosts.
SAME = ("Content-Type", "Cache-Control", "Vary", "WWW-Authenticate", "Location",
        "X-Content-Type-Options", "X-Frame-Options")


@pytest.fixture
def both(lambda_env: dict[str, str], make_host: Callable[..., LambdaHost]  # noqa: F811
         ) -> Iterator[tuple[LambdaHost, Flask]]:
    """The Lambda host and the WSGI app, on one config with one public address (the WSGI
    app redirecting downloads too, as the Lambda host always does)."""
    env = {**lambda_env, "TELEDROP_SERVER__BASE_URL": BASE,
           "TELEDROP_PLUGINS__S3_STORAGE__DOWNLOADS": "redirect"}
    host = make_host(TELEDROP_SERVER__BASE_URL=BASE)
    app = create_app(load_config(environ=env))
    app.testing = True
    yield host, app
    service_of(app).close()


Answer = tuple[int, dict[str, str], bytes]


def through_lambda(host: LambdaHost, method: str, path: str, headers: dict[str, str],
                   body: bytes | None = None, query: str = "") -> Answer:
    result = host(event(method, path, query, headers, body))
    return (result["statusCode"],
            {name: result["headers"][name] for name in SAME if name in result["headers"]},
            body_of(result))


def through_wsgi(app: Flask, method: str, path: str, headers: dict[str, str],
                 body: bytes | None = None, query: str = "") -> Answer:
    response = app.test_client().open(path, method=method, headers=headers, data=body,
                                      query_string=query)
    return (response.status_code,
            {name: response.headers[name] for name in SAME if name in response.headers},
            response.get_data())


def same_answer(host: LambdaHost, app: Flask, method: str, path: str,
                headers: dict[str, str], body: bytes | None = None, query: str = "") -> Answer:
    answer = through_lambda(host, method, path, headers, body, query)
    assert answer == through_wsgi(app, method, path, headers, body, query), (method, path)
    return answer


# -- pages ------------------------------------------------------------------------------------

def test_a_browser_gets_the_same_landing_page_from_both_hosts(
        both: tuple[LambdaHost, Flask], s3_server: S3Endpoint) -> None:
    host, app = both
    slug = slug_of(put(host, b"a picture", "cat.png", "title=A%20%3Ccat%3E",
                       **{"content-type": "image/png"}))
    for headers in (NAVIGATE, {"accept": "text/html"}):
        status, headers_sent, page = same_answer(host, app, "GET", f"/{slug}", headers)
        assert status == 200 and headers_sent["Content-Type"] == "text/html; charset=utf-8"
        assert headers_sent["Vary"] == "Accept, Sec-Fetch-Mode, Sec-Fetch-Dest"
        text = page.decode()
        assert "<h1 id=\"drop-heading\">A &lt;cat&gt;</h1>" in text  # escaped
        assert f'href="{slug}/cat.png"' in text and f"{BASE}/{slug}" in text
    # the preview and the Download form lead to the bucket: the page's policy lets them
    policy = policy_of(text)
    bucket = s3_server.url.rstrip("/")
    assert f"img-src 'self' data: {bucket};" in policy
    assert f"media-src 'self' {bucket};" in policy and f"form-action 'self' {bucket};" in policy
    assert f'src="{slug}/cat.png?preview"' in text
    # viewing is not downloading: the page counted nothing
    assert json.loads(body_of(host(event("GET", f"/api/drops/{slug}"))))["downloads"] == 0


@pytest.mark.parametrize("headers", [
    {"accept": "*/*"},  # curl
    {"sec-fetch-mode": "no-cors", "sec-fetch-dest": "image", "accept": "image/*"},  # <img>
    {"sec-fetch-mode": "cors", "accept": "text/html"},  # fetch()
    {**NAVIGATE, "range": "bytes=0-1"},
], ids=["curl", "img", "fetch", "range"])
def test_every_other_request_gets_the_redirect_to_the_bytes_with_vary(
        both: tuple[LambdaHost, Flask], headers: dict[str, str]) -> None:
    host, _ = both
    slug = slug_of(put(host, b"bytes for a client"))
    result = host(event("GET", f"/{slug}", headers=headers))
    assert result["headers"]["Vary"] == "Accept, Sec-Fetch-Mode, Sec-Fetch-Dest"
    assert result["statusCode"] == 302
    fetched = follow(result) if "range" not in headers else None
    assert fetched is None or fetched.content == b"bytes for a client"
    for query in ("download", "preview"):
        assert host(event("GET", f"/{slug}", query, NAVIGATE))["statusCode"] == 302
    # the Download button's path always gets the bytes, and has no Vary to give
    named = host(event("GET", f"/{slug}/report.bin", headers=NAVIGATE))
    assert named["statusCode"] == 302 and "Vary" not in named["headers"]


def test_an_unknown_slug_is_the_same_page_for_browsers_and_varies_as_under_the_wsgi_host(
        both: tuple[LambdaHost, Flask]) -> None:
    host, app = both
    for path in ("/no-such-drop", "/no-such-drop/report.pdf"):
        status, headers, page = same_answer(host, app, "GET", path, NAVIGATE)
        assert status == 404 and headers["Vary"] == "Accept, Sec-Fetch-Mode, Sec-Fetch-Dest"
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert b"<h1>Nothing here</h1>" in page
        status, headers, text = same_answer(host, app, "GET", path, {"accept": "*/*"})
        assert status == 404 and text == b"no such drop\n"


def test_a_password_drop_asks_with_the_same_form_then_shows_the_same_page(
        both: tuple[LambdaHost, Flask]) -> None:
    host, app = both
    slug = slug_of(put(host, b"secret", **{"x-drop-password": "hunter2"}))
    status, headers, form = same_answer(host, app, "GET", f"/{slug}", NAVIGATE)
    assert status == 401 and headers["WWW-Authenticate"].startswith("X-Drop-Password")
    assert b'type="password"' in form and b"This file is protected" in form
    posted = {**NAVIGATE, "content-type": "application/x-www-form-urlencoded"}
    status, _, wrong = same_answer(host, app, "POST", f"/{slug}", posted, b"password=nope")
    assert status == 401 and b"Wrong password" in wrong
    status, headers, page = same_answer(host, app, "POST", f"/{slug}", posted,
                                        b"password=hunter2")
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert b'name="password" value="hunter2"' in page
    # the page's Download button posts the password to the named path: the bytes
    download = host(event("POST", f"/{slug}/report.bin", headers=posted, body=b"password=hunter2"))
    assert follow(download).content == b"secret"
    # curl still gets the one-line refusal, not the form
    status, headers, plain = same_answer(host, app, "GET", f"/{slug}", {"accept": "*/*"})
    assert status == 401 and headers["Content-Type"] == "text/plain; charset=utf-8"
    assert plain.count(b"\n") == 1 and b"<" not in plain


def test_the_form_posted_without_javascript_gets_the_same_result_page_shape(
        both: tuple[LambdaHost, Flask]) -> None:
    host, app = both
    body, content_type = multipart(b"from a plain form", "plain.txt")
    headers = {**NAVIGATE, "content-type": content_type}
    results = [through_lambda(host, "POST", "/", headers, body),
               through_wsgi(app, "POST", "/", headers, body)]
    pages_sent = []
    for status, sent, page in results:
        assert status == 201 and sent["Content-Type"] == "text/html; charset=utf-8"
        slug = sent["Location"].rsplit("/", 1)[1]
        token = page.decode().split('<code class="token">', 1)[1].split("<", 1)[0]
        # the drop's own values differ (slug, token, QR of its link); the page does not
        pages_sent.append(page.decode().replace(slug, "SLUG").replace(token, "TOKEN")
                          .split('<img class="qr"', 1)[0])
    assert pages_sent[0] == pages_sent[1]


def policy_of(page: str) -> str:
    return page.split('http-equiv="Content-Security-Policy" content="', 1)[1].split('"', 1)[0]


def test_the_upload_page_is_the_wsgi_hosts_sending_files_as_direct_uploads(
        both: tuple[LambdaHost, Flask], s3_server: S3Endpoint) -> None:
    host, app = both
    status, headers, page = through_lambda(host, "GET", "/", NAVIGATE)
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    config = host.service.config
    bucket = s3_server.url.rstrip("/")
    assert page.decode() == pages.index_html(config, pages.DIRECT, EVENT_FILE_LIMIT, bucket)
    # the script PUTs the parts to the bucket: the page's policy lets it, and only there
    assert f"connect-src 'self' {bucket};" in policy_of(page.decode())
    assert "connect-src 'self';" in policy_of(through_wsgi(app, "GET", "/", NAVIGATE)[2].decode())
    assert b'data-uploads="direct"' in page and b"tus.min.js" not in page
    assert b"Without JavaScript, a file of up to 4 MiB" in page
    wsgi = through_wsgi(app, "GET", "/", NAVIGATE)[2]
    assert b'data-uploads="tus"' in wsgi and b"static/vendor/tus.min.js" in wsgi
    # what differs is how files are sent, nothing else
    differs = {line for line in set(page.decode().splitlines()) ^ set(wsgi.decode().splitlines())}
    assert all("tus" in line or "direct" in line or "JavaScript" in line
               or "teledrop upload" in line or "Content-Security-Policy" in line
               for line in differs), differs
    # curl still reads the usage text
    assert through_lambda(host, "GET", "/", {"accept": "*/*"})[1]["Content-Type"] \
        == "text/plain; charset=utf-8"


@pytest.mark.parametrize("name", ["page.css", "page.js", "direct.js", "shared.js",
                                  "drops.js", "landing.js", "favicon.svg"])
def test_the_pages_static_files_are_served_as_the_wsgi_host_serves_them(
        both: tuple[LambdaHost, Flask], name: str) -> None:
    host, app = both
    result = host(event("GET", f"/static/{name}"))
    assert result["statusCode"] == 200
    assert body_of(result) == (STATIC / name).read_bytes()
    wsgi = app.test_client().get(f"/static/{name}")
    assert result["headers"]["Content-Type"] == wsgi.headers["Content-Type"]
    again = host(event("GET", f"/static/{name}",
                       headers={"if-none-match": result["headers"]["ETag"]}))
    assert again["statusCode"] == 304 and body_of(again) == b""
    head = host(event("HEAD", f"/static/{name}"))
    assert head["statusCode"] == 200 and head["body"] == ""


def test_every_file_the_direct_upload_page_loads_is_served(both: tuple[LambdaHost, Flask]) -> None:
    host, _ = both
    page = body_of(host(event("GET", "/", headers=NAVIGATE))).decode()
    loaded = {part.split('"', 1)[0] for part in page.split('static/')[1:]}
    for script in ("page.js", "drops.js", "landing.js"):  # and what the scripts import
        text = (STATIC / script).read_text()
        loaded |= {line.split('"./', 1)[1].split('"', 1)[0] for line in text.splitlines()
                   if line.startswith(("import ", "} from")) and '"./' in line}
    assert {"page.js", "direct.js", "shared.js", "page.css"} <= loaded
    for name in loaded:
        assert host(event("GET", f"/static/{name}"))["statusCode"] == 200, name


@pytest.mark.parametrize("path", ["/static/../aws_lambda.py", "/static/%2e%2e/app.py",
                                  "/static/nosuch.js", "/static/", "/static/vendor"])
def test_nothing_outside_the_static_files_is_served(both: tuple[LambdaHost, Flask],
                                                     path: str) -> None:
    host, _ = both
    assert host(event("GET", path))["statusCode"] == 404


def test_the_qr_route_is_the_wsgi_hosts(both: tuple[LambdaHost, Flask]) -> None:
    host, app = both
    link = f"{BASE}/some-drop"
    status, headers, svg = same_answer(host, app, "GET", "/api/qr.svg", {},
                                       query=f"link={link}")
    assert status == 200 and headers["Content-Type"] == "image/svg+xml" and b"<svg" in svg
    status, _, _ = same_answer(host, app, "GET", "/api/qr.svg", {},
                               query="link=https://evil.example/x")
    assert status == 400


# -- the access log -----------------------------------------------------------------------------

def test_each_event_writes_the_wsgi_hosts_access_line_with_its_request_id(
        both: tuple[LambdaHost, Flask], access_lines: list[dict[str, Any]]) -> None:
    host, app = both
    context = SimpleNamespace(aws_request_id="c0ffee-1")
    created = host(event("PUT", "/a.bin", body=b"12345"), context)
    slug = slug_of(created)
    host(event("GET", f"/{slug}"), SimpleNamespace(aws_request_id="c0ffee-2"))
    host(event("GET", "/no-such-drop", headers={"accept": "application/json"}),
         SimpleNamespace(aws_request_id="c0ffee-3"))
    host(event("PUT", "/b.bin", body=b"x"), None)  # no context: no id, still a line
    uploaded, redirected, missing, no_context = access_lines
    assert uploaded["method"] == "PUT" and uploaded["path"] == "/a.bin"
    assert uploaded["status"] == 201 and uploaded["slug"] == slug and uploaded["size"] == 5
    assert uploaded["request_id"] == "c0ffee-1" and uploaded["remote"] == "203.0.113.7"
    assert uploaded["error"] is None and uploaded["duration_ms"] >= 0
    assert redirected["status"] == 302 and redirected["slug"] == slug
    assert redirected["bytes_sent"] == 0 and redirected["request_id"] == "c0ffee-2"
    assert missing["status"] == 404 and missing["error"] == "not_found"
    assert missing["slug"] is None and missing["request_id"] == "c0ffee-3"
    assert no_context["request_id"] is None and no_context["status"] == 201
    access_lines.clear()
    app.test_client().put("/c.bin", data=b"12345")
    (wsgi_line,) = access_lines
    assert set(wsgi_line) == set(uploaded)  # one schema for every host


def test_a_broken_event_still_writes_its_line(both: tuple[LambdaHost, Flask],
                                             access_lines: list[dict[str, Any]]) -> None:
    host, _ = both
    sent = event("PUT", "/a.bin", body=b"x")
    sent.update(body="not base64!", isBase64Encoded=True)
    assert host(sent, SimpleNamespace(aws_request_id="r-9"))["statusCode"] == 400
    (line,) = access_lines
    assert line["status"] == 400 and line["path"] == "/a.bin" and line["method"] == "PUT"
    assert line["error"] == "malformed_body" and line["request_id"] == "r-9"


# -- CORS on the direct-upload API ----------------------------------------------------------------

ORIGIN = {"origin": "https://other.example"}


@pytest.mark.parametrize(("method", "path", "headers", "body"), [
    ("OPTIONS", "/api/direct-uploads", {**ORIGIN, "access-control-request-method": "POST",
                                        "access-control-request-headers": "authorization"}, None),
    ("POST", "/api/direct-uploads", {**ORIGIN, "content-type": "application/json"}, b"{}"),
    ("DELETE", "/api/direct-uploads/nosuch", ORIGIN, None),
    ("OPTIONS", "/api/direct-uploads/nosuch/complete", ORIGIN, None),
], ids=["preflight", "refused-create", "unknown-abort", "complete-preflight"])
def test_the_direct_upload_api_answers_other_origins_as_the_wsgi_host_does(
        both: tuple[LambdaHost, Flask], method: str, path: str, headers: dict[str, str],
        body: bytes | None) -> None:
    host, app = both
    result = host(event(method, path, headers=headers, body=body))
    wsgi = app.test_client().open(path, method=method, headers=headers, data=body)
    assert result["statusCode"] == wsgi.status_code
    cors = {name: value for name, value in result["headers"].items()
            if name.startswith("Access-Control-")}
    assert cors == DIRECT_CORS_HEADERS
    assert cors == {name: value for name, value in wsgi.headers.items()
                    if name.startswith("Access-Control-")}


def test_no_cors_without_an_origin_or_off_the_direct_upload_api(
        both: tuple[LambdaHost, Flask]) -> None:
    host, app = both
    for method, path, headers in (("OPTIONS", "/api/direct-uploads", {}),
                                  ("GET", "/api/drops/nosuch", ORIGIN),
                                  ("OPTIONS", "/", ORIGIN)):
        result = host(event(method, path, headers=headers))
        wsgi = app.test_client().open(path, method=method, headers=headers)
        for answer in (result["headers"], dict(wsgi.headers)):
            assert not [name for name in answer if name.startswith("Access-Control-")], path

