"""tus requests the live tus suites share: an upload's id and offset, how many PATCHes the
server has answered for it, and a PATCH cut off mid-body."""

from __future__ import annotations

import socket

import requests

from tests.live_server import LiveServer, abort, connect, request_head, wait_until

TUS = {"Tus-Resumable": "1.0.0"}


def upload_id(url: str) -> str:
    return url.rsplit("/", 1)[1]


def offset_of(server: LiveServer, url: str) -> int:
    head = requests.head(url, headers=TUS, timeout=10)
    assert head.status_code == 200, head.status_code
    return int(head.headers["Upload-Offset"])


def patches_answered(server: LiveServer, url: str) -> int:
    path = f"/api/uploads/{upload_id(url)}"
    return sum(1 for line in server.access_lines()
               if line["method"] == "PATCH" and line["path"] == path)


def cut_patch(server: LiveServer, url: str, data: bytes, offset: int, send: int,
              reset: bool) -> None:
    """A PATCH announcing the rest of the file that sends only ``send`` bytes of it, then
    closes its connection (a reset when ``reset``); returns once the server is done with
    it."""
    answered = patches_answered(server, url)
    sock = connect(server)
    sock.sendall(request_head("PATCH", f"/api/uploads/{upload_id(url)}", {
        **TUS, "Upload-Offset": str(offset), "Content-Length": str(len(data) - offset),
        "Content-Type": "application/offset+octet-stream"}))
    sock.sendall(data[offset:offset + send])
    if not reset:
        sock.shutdown(socket.SHUT_WR)
    abort(sock, reset)
    assert wait_until(lambda: patches_answered(server, url) > answered, 30)
