"""A Lambda handler that answers with what it was given, to prove the Lambda harnesses
(tests/services/lambda_rie.py, tests/services/ministack.py) before any teledrop code runs
under them."""

from __future__ import annotations

import json
import os
from typing import Any

#: Environment variables the answer reports, so a test sees what the harness passed on.
REPORTED_ENV = ("ECHO_SETTING", "AWS_LAMBDA_FUNCTION_NAME")


def handler(event: Any, context: Any) -> dict[str, Any]:
    """An HTTP answer (payload format 2.0) whose JSON body holds the event, the request id
    and the reported environment; ``{"size": N}`` as the event's body asks for an answer
    of ``N`` bytes instead, to probe the runtime's response limit; ``/mirror`` answers the
    request's own body and content type back, base64 kept, with its cookies set back."""
    body = event.get("body") if isinstance(event, dict) else None
    if isinstance(event, dict) and event.get("rawPath") == "/mirror":
        return {"statusCode": 200, "body": body or "",
                "headers": {"content-type": event["headers"].get("content-type", "")},
                "isBase64Encoded": bool(event.get("isBase64Encoded")),
                "cookies": event.get("cookies", [])}
    if isinstance(body, str) and body.startswith('{"size"'):
        return {"statusCode": 200, "body": "x" * json.loads(body)["size"]}
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"event": event, "request_id": context.aws_request_id,
                                "env": {name: os.environ.get(name) for name in REPORTED_ENV}})}
