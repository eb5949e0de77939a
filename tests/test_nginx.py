"""docs/deploy.md's nginx setup, for real: conf/nginx.conf's server block (its TLS lines
aside) in front of a real gunicorn. Uploads stream through (nginx spools nothing), links
carry the public host, the proxy's headers are trusted with proxy_hops = 1, metrics are
scraped through the proxy."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.live_server import REPO, HOST, LiveServer, free_port, live_server, wait_until

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.gunicorn


@dataclass
class Proxy:
    base_url: str
    error_log: Path


def http_block(server_block: str, tmp: Path) -> str:
    temp = "\n".join(f"    {name}_temp_path {tmp / name};"
                     for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""worker_processes 1;
pid {tmp / 'nginx.pid'};
error_log {tmp / 'error.log'} warn;
events {{}}
http {{
    access_log off;
{temp}
{server_block}
}}
"""


def deploy_block(upstream_port: int, listen_port: int) -> str:
    """conf/nginx.conf as shipped, made to listen on a loopback port without TLS."""
    block = (REPO / "conf" / "nginx.conf").read_text()
    block = block.replace("listen 443 ssl http2;", f"listen {HOST}:{listen_port};")
    block = block.replace("127.0.0.1:8000", f"127.0.0.1:{upstream_port}")
    assert f"listen {HOST}:{listen_port};" in block and str(upstream_port) in block
    return block


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("behind-nginx"),
                     server={"proxy_hops": 1, "workers": 1, "threads": 4}) as server:
        yield server


@pytest.fixture(scope="module")
def proxy(upstream: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    tmp = tmp_path_factory.mktemp("nginx")
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(http_block(deploy_block(upstream.port, port), tmp))
    check = subprocess.run([NGINX, "-t", "-c", str(conf)], capture_output=True, text=True,
                           check=False)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://{HOST}:{port}"
    try:
        def answering() -> bool:
            try:
                return requests.get(base + "/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        assert wait_until(answering, 10), "nginx did not come up"
        yield Proxy(base, tmp / "error.log")
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_an_upload_streams_through_nginx_and_links_to_the_public_host(
        proxy: Proxy, upstream: LiveServer, tmp_path: Path) -> None:
    payload = tmp_path / "big.bin"
    payload.write_bytes(os.urandom(32 * 1024 * 1024))
    result = subprocess.run(["curl", "-sS", "--fail-with-body", "-F", f"file=@{payload}",
                             proxy.base_url + "/"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    link = result.stdout.strip()
    # proxy_hops = 1: the link is built from nginx's X-Forwarded-Host, not gunicorn's port
    assert re.fullmatch(re.escape(proxy.base_url) + r"/[A-Za-z0-9_][A-Za-z0-9_-]{7,}", link)
    # proxy_request_buffering off: nginx handed the body on as it came. (nginx unlinks a
    # spool file as it creates it, so its warning is the trace a spooled body leaves.)
    assert "buffered to a temporary file" not in proxy.error_log.read_text()
    downloaded = requests.get(link, timeout=60)
    assert downloaded.status_code == 200
    assert hashlib.sha256(downloaded.content).digest() == \
        hashlib.sha256(payload.read_bytes()).digest()
    upstream.data.assert_consistent()


def test_a_raw_put_and_a_delete_go_through(proxy: Proxy) -> None:
    created = requests.put(proxy.base_url + "/note.txt", data=b"through the proxy",
                           headers={"Accept": "application/json"}, timeout=30)
    assert created.status_code == 201
    drop = created.json()
    assert drop["url"].startswith(proxy.base_url + "/")
    gone = requests.delete(drop["url"], headers={"X-Delete-Token": drop["delete_token"]},
                           timeout=30)
    assert gone.status_code == 204
    assert requests.get(drop["url"], timeout=30).status_code == 404


def test_metrics_are_scraped_through_the_proxy(proxy: Proxy) -> None:
    requests.put(proxy.base_url + "/counted.txt", data=b"x", timeout=30)
    response = requests.get(proxy.base_url + "/metrics", timeout=30)
    assert response.status_code == 200
    match = re.search(r"^teledrop_uploads_total (\d+\.\d+)$", response.text, re.MULTILINE)
    assert match and float(match.group(1)) >= 1



def test_a_clients_own_forwarded_prefix_and_port_never_reach_the_links(proxy: Proxy) -> None:
    """nginx passes on what it does not set: X-Forwarded-Prefix and -Port are the client's,
    and teledrop must not build its links or Location from them."""
    created = requests.put(proxy.base_url + "/spoof.txt", data=b"x", allow_redirects=False,
                           headers={"Accept": "application/json",
                                    "X-Forwarded-Prefix": "//evil.example",
                                    "X-Forwarded-Port": "666"}, timeout=30)
    assert created.status_code == 201, created.text
    slug = created.json()["slug"]
    assert created.headers["Location"] == f"/{slug}"
    assert created.json()["url"] == f"{proxy.base_url}/{slug}"


def test_nginx_answers_100_continue_itself_and_the_refusal_follows_unsent_body(
        proxy: Proxy) -> None:
    """nginx sends ``100 Continue`` as soon as it forwards the request (teledrop, directly,
    would not); teledrop's refusal then comes back before the client sent any body, and
    nginx ends the connection."""
    taken = requests.put(proxy.base_url + "/k.txt?slug=nginx-kept", data=b"k", timeout=30)
    assert taken.status_code in (201, 409)
    port = int(proxy.base_url.rsplit(":", 1)[1])
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(b"PUT /a.txt?slug=nginx-kept HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 1000\r\nExpect: 100-continue\r\n\r\n")
        received = b""
        while data := sock.recv(65536):
            received += data
    assert received.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 409 "), received
