"""The management API's query parameters (``http/api/framework.py``): ``page`` and
``page_size`` (PageRequest), text filters (query_text) and the audit log's ``from``/``to``
date-times (parse_date_time). The input is a raw query string, as a client sends it.

Properties: only ``ApiError`` escapes, a 400 whose Hub-shaped error body renders; a page
request is within its documented bounds and equals the number the client wrote; a text
filter is within its length; a date-time is timezone-aware and its RFC 3339 rendering
(what the API sends back) reads again as the same instant.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from imagegate.http.api.framework import (
    MAX_PAGE_SIZE,
    ApiError,
    PageRequest,
    error_response,
    parse_date_time,
    query_text,
    rfc3339_short,
)


class NotRenderedBack(AssertionError):
    """A date-time the API accepts but cannot send back as the same instant."""


def _refusal(parse: Callable[[], Any]) -> Any:
    """What ``parse`` returns, or None when it refuses as the API should."""
    try:
        return parse()
    except ApiError as exc:
        assert exc.status == 400 and exc.message, (exc.status, exc.message)
        sent = json.loads(error_response(exc).body)  # rendered as the server sends it
        assert sent["message"] == exc.message, sent
        return None


def _number(text: str | None) -> int | None:
    return int(text) if text and text.isascii() and text.isdigit() else None


def test_one_input(data: bytes) -> None:
    request = Request({"type": "http", "query_string": data, "headers": []})
    params = request.query_params
    page = _refusal(lambda: PageRequest.of(request))
    if page is not None:
        assert 1 <= page.page <= 1_000_000 and 1 <= page.size <= MAX_PAGE_SIZE, page
        for name, got in (("page", page.page), ("page_size", page.size)):
            assert _number(params.get(name)) in (None, got), (params.get(name), page)
    action = _refusal(lambda: query_text(request, "action", 255))
    assert action is None or (len(action) <= 255 and action == params.get("action", "")), action
    raw = params.get("from")
    if raw is not None:
        moment = _refusal(lambda: parse_date_time(raw, "from"))
        if moment is not None:
            assert moment.tzinfo is not None, (raw, moment)
            try:
                again = parse_date_time(rfc3339_short(moment) or "", "from")
            except (ApiError, OverflowError) as exc:
                raise NotRenderedBack(f"{raw!r} is rendered back as: {exc}") from None
            assert again == moment, (raw, moment, again)
