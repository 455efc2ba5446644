"""The JSON log line: standard fields, then every ``extra`` field, in order."""

from __future__ import annotations

import json
import logging

from imagegate.logs import JSONFormatter


def test_a_line_has_the_extra_fields_and_no_record_internals() -> None:
    record = logging.getLogger("imagegate.request").makeRecord(
        "imagegate.request",
        logging.INFO,
        __file__,
        1,
        "%s %s",
        ("GET", "/v2/"),
        None,
        extra={"event": "request", "status": 200, "user": None, "bytes": b"x"},
    )
    entry = json.loads(JSONFormatter().format(record))
    assert list(entry) == ["time", "level", "logger", "message", "event", "status", "user", "bytes"]
    assert entry["message"] == "GET /v2/"
    assert entry["level"] == "info"
    assert entry["bytes"] == "b'x'"  # anything JSON cannot hold is written as its str()
