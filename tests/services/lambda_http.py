"""An HTTP address for a function under the Lambda emulator: a test stand-in for the API
Gateway HTTP API in front of it (``$default`` route and stage, payload format 2.0).

The emulator (tests/services/lambda_rie.py) only takes invocations, so a program of its
own (``teledrop upload``) has nothing to talk HTTP to. :class:`HttpFront` is that address:
a threaded ``http.server`` on a free loopback port that does what the HTTP API does for a
Lambda proxy integration (AWS's "Working with AWS Lambda proxy integrations for HTTP
APIs") and nothing more. It is not part of teledrop and plays no other part of AWS.

- A request becomes a version 2.0 event through :func:`tests.lambda_events.event` (the
  one place the format's rules are written): path and query as sent, header names
  lower-cased, ``Cookie`` into ``cookies``, the client's address as ``sourceIp``, a body
  that is not text base64-encoded; ``x-forwarded-proto`` and ``-port`` say how the client
  came, ``x-forwarded-for`` gains its address.
- The function's result becomes the answer: ``statusCode``, ``headers``, each of
  ``cookies`` as a ``Set-Cookie`` of its own, the body (base64 undone). ``HEAD`` keeps the
  ``Content-Length`` the function gave.
- A failed invocation, or a result without ``statusCode``, is the HTTP API's
  ``500 {"message":"Internal Server Error"}`` (the format's guess at what a bare result
  means is not played: teledrop always answers with a status).

A body is read whole, as the HTTP API hands it over whole; one sent chunked is ``411``.
The emulator runs one instance: invocations wait for each other behind a lock.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import requests

from tests.lambda_events import event
from tests.services.lambda_rie import LambdaEmulator
from tests.services.seaweedfs import HOST
from tests.support.lambda_function import result_body

#: Headers of one connection, or that the front itself sets: never passed on.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
               "transfer-encoding", "upgrade", "content-length",
               "x-forwarded-proto", "x-forwarded-port"}
INTERNAL_ERROR = json.dumps({"message": "Internal Server Error"}).encode()


class HttpFront:
    """``http://127.0.0.1:{port}/`` in front of ``function``; a context manager."""

    def __init__(self, function: LambdaEmulator) -> None:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self) -> None:
                front.serve(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = answer

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.function = function
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def request(self, method: str, target: str, **kwargs: Any) -> requests.Response:
        """``method`` on ``target`` (a path under the front); redirects are not followed,
        as a download's ``Location`` leaves the API."""
        kwargs.setdefault("timeout", 60)
        return requests.request(method, self.url + target.lstrip("/"),
                                allow_redirects=False, **kwargs)

    def __enter__(self) -> HttpFront:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- one request -----------------------------------------------------------------

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
            self.send(handler, 411, {"Content-Type": "application/json"},
                      json.dumps({"message": "Length Required"}).encode())
            handler.close_connection = True
            return
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        with self.lock:
            answer = self.function.invoke_raw(self.event(handler, body))
        result = answer.json() if answer.status_code == 200 else None
        if not isinstance(result, dict) or "statusCode" not in result:
            self.send(handler, 500, {"Content-Type": "application/json"}, INTERNAL_ERROR)
            return
        self.send(handler, int(result["statusCode"]), result.get("headers") or {},
                  result_body(result), result.get("cookies") or [])

    def event(self, handler: BaseHTTPRequestHandler, body: bytes | None) -> dict[str, Any]:
        target = urlsplit(handler.path)
        source_ip = handler.client_address[0]
        headers = [(name, value) for name, value in handler.headers.items()
                   if name.lower() not in _HOP_BY_HOP]
        headers += [("x-forwarded-for", source_ip), ("x-forwarded-port", str(self.port)),
                    ("x-forwarded-proto", "http")]
        return event(handler.command, target.path or "/", target.query, headers, body,
                     source_ip=source_ip)

    @staticmethod
    def send(handler: BaseHTTPRequestHandler, status: int, headers: Mapping[str, str],
             body: bytes, cookies: Sequence[str] = ()) -> None:
        handler.send_response(status)
        length = str(len(body))
        for name, value in headers.items():
            if name.lower() == "content-length":
                length = value if handler.command == "HEAD" else length
            elif name.lower() not in _HOP_BY_HOP:
                handler.send_header(name, str(value))
        for cookie in cookies:
            handler.send_header("Set-Cookie", cookie)
        handler.send_header("Content-Length", length)
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)

