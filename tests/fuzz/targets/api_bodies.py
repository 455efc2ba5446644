"""The management API's JSON request bodies (``http/api/framework.py`` read_body), checked
against every schema the endpoint table declares (the first input byte picks the
endpoint, the second how the body is split into chunks; the rest is the body).

Properties: only ``ApiError`` escapes, a 400 or 413 whose Hub-shaped error body renders
as the API sends it; an accepted body is a JSON object valid under the endpoint's
declared schema (checked by an independent JSON Schema validator), holds only text that
can be sent back as UTF-8 (handlers echo fields and store them), and reads the same again
from its own JSON.
"""

from __future__ import annotations

import json
from collections.abc import Coroutine
from typing import Any

import jsonschema_rs
from starlette.requests import Request
from starlette.types import Message

from imagegate.config import load_settings
from imagegate.http.api import endpoints
from imagegate.http.api.auth import ApiTokens
from imagegate.http.api.framework import ApiError, error_response, read_body

# The table as the server builds it (the handlers never run here, so no services), in
# an order that changes only when an endpoint with a body is added.
TABLE = sorted(
    (
        endpoint
        for endpoint in endpoints(load_settings({}), None, ApiTokens(b"k" * 32, None), None)  # type: ignore[arg-type]
        if endpoint.body is not None
    ),
    key=lambda endpoint: (endpoint.path, endpoint.method),
)


def _json_schema(schema: Any) -> Any:
    """OpenAPI 3.0's ``nullable`` in JSON Schema's words, for the independent validator."""
    if isinstance(schema, dict):
        converted = {key: _json_schema(value) for key, value in schema.items()}
        if converted.pop("nullable", False):
            converted["type"] = [converted["type"], "null"]
        return converted
    if isinstance(schema, list):
        return [_json_schema(item) for item in schema]
    return schema


# Formats (date-time) are the handlers' to check, with their own messages.
VALIDATORS = [
    jsonschema_rs.Draft4Validator(_json_schema(e.body), validate_formats=False) for e in TABLE
]


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never waits (the whole body is already there)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise AssertionError("read_body waited for something")


def _request(body: bytes, chunk: int) -> Request:
    chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]

    async def receive() -> Message:
        data = chunks.pop(0)
        return {"type": "http.request", "body": data, "more_body": bool(chunks)}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b""}
    return Request(scope, receive)


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (key, *_texts(item))]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return []


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    index = data[0] % len(TABLE)
    endpoint, body = TABLE[index], data[2:]
    schema = endpoint.body
    assert schema is not None
    try:
        accepted = _run(read_body(_request(body, 1 + data[1] * 8), schema))
    except ApiError as exc:
        assert exc.status in (400, 413) and exc.message, (exc.status, exc.message)
        sent = json.loads(error_response(exc).body)  # rendered as the server sends it
        assert sent["message"] == exc.message, sent
        return
    assert isinstance(accepted, dict), accepted
    VALIDATORS[index].validate(accepted)
    for text in _texts(accepted):
        text.encode("utf-8")
    again = json.dumps(accepted).encode()
    assert _run(read_body(_request(again, len(again)), schema)) == accepted
