"""Payload format 2.0 events, as a Function URL or an HTTP API hands them to a function.

What the builder does to a request is what Lambda does (AWS's "Working with AWS Lambda
proxy integrations for HTTP APIs"): header names lower-cased and repeated headers joined
with commas, the cookies of ``Cookie`` headers moved to ``cookies``, repeated query keys
kept apart in ``rawQueryString`` but joined with commas in ``queryStringParameters``
(absent without a query), and every body that is not text, JSON or XML base64-encoded.
``host``, ``x-forwarded-proto`` and ``user-agent`` have defaults a caller's headers replace;
``content-length`` is always the body's.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

EVENTS = Path(__file__).parent / "events"
DOMAIN = "abcdefghij.lambda-url.eu-west-1.on.aws"
SOURCE_IP = "203.0.113.7"
DEFAULT_HEADERS = {"host": DOMAIN, "x-forwarded-proto": "https", "user-agent": "curl/8.5.0"}
#: Types Lambda passes as text; anything else arrives base64-encoded.
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")


def is_text(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media.startswith(_TEXT_TYPES) or media.endswith(("+json", "+xml"))


def event(method: str, path: str, query: str = "",
          headers: Iterable[tuple[str, str]] | dict[str, str] = (),
          body: bytes | None = None, cookies: Iterable[str] = (),
          stage: str = "$default", base64_body: bool | None = None,
          source_ip: str = SOURCE_IP) -> dict[str, Any]:
    """One event. ``path`` is the raw (percent-encoded) path under the stage;
    ``base64_body`` forces the body's encoding either way (Lambda's rule by default)."""
    pairs = list(headers.items() if isinstance(headers, dict) else headers)
    joined: dict[str, str] = {}
    cookies = list(cookies)
    for name, value in pairs:
        name = name.lower()
        if name == "cookie":
            cookies += [cookie.strip() for cookie in value.split(";") if cookie.strip()]
        elif name == "host" or name not in joined:
            joined[name] = value
        else:
            joined[name] = f"{joined[name]},{value}"
    for name, value in DEFAULT_HEADERS.items():
        joined.setdefault(name, value)
    joined.pop("content-length", None)
    if body is not None:
        joined["content-length"] = str(len(body))
    domain = joined["host"].split(":")[0]
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    result: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": joined,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdefghij",
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1",
                     "sourceIp": source_ip, "userAgent": joined["user-agent"]},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": stage,
            "time": "01/Dec/2026:12:00:00 +0000",
            "timeEpoch": 1796126400000,
        },
        "isBase64Encoded": False,
    }
    if cookies:
        result["cookies"] = cookies
    if query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        result["queryStringParameters"] = params
    if body is not None:
        encode = not is_text(joined.get("content-type")) if base64_body is None \
            else base64_body
        result["isBase64Encoded"] = encode
        result["body"] = base64.b64encode(body).decode("ascii") if encode \
            else body.decode("utf-8")
    return result


def multipart(file: bytes, filename: str = "report.bin", content_type: str = "",
              boundary: str = "teledropboundary42", **fields: str) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body with these fields before one file part, and its
    Content-Type."""
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
             f'{value}\r\n'.encode() for name, value in fields.items()]
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; ' \
           f'filename="{filename}"\r\n'
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    parts.append(head.encode() + b"\r\n" + file + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def stored(name: str) -> dict[str, Any]:
    """An event kept under ``tests/events/``."""
    return json.loads((EVENTS / name).read_text())
