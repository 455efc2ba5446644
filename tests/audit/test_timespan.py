"""Times as typed on the command line: ``24h`` ago, a date, a date-time."""

from __future__ import annotations

import datetime as dt

import pytest

from imagegate.audit.timespan import TimespanError, parse_instant

NOW = dt.datetime(2024, 5, 10, 12, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", dt.datetime(2024, 5, 10, 12, 0, tzinfo=dt.UTC)),
        ("24h", dt.datetime(2024, 5, 9, 12, 30, tzinfo=dt.UTC)),
        ("7d", dt.datetime(2024, 5, 3, 12, 30, tzinfo=dt.UTC)),
        ("2w", dt.datetime(2024, 4, 26, 12, 30, tzinfo=dt.UTC)),
        ("90s", dt.datetime(2024, 5, 10, 12, 28, 30, tzinfo=dt.UTC)),
        (" 24H ", dt.datetime(2024, 5, 9, 12, 30, tzinfo=dt.UTC)),
        ("2024-05-01", dt.datetime(2024, 5, 1, tzinfo=dt.UTC)),
        ("2024-05-01T08:15:00Z", dt.datetime(2024, 5, 1, 8, 15, tzinfo=dt.UTC)),
        ("2024-05-01T08:15:00", dt.datetime(2024, 5, 1, 8, 15, tzinfo=dt.UTC)),
        ("2024-05-01T10:15:00+02:00", dt.datetime(2024, 5, 1, 8, 15, tzinfo=dt.UTC)),
    ],
)
def test_accepted_forms(text: str, expected: dt.datetime) -> None:
    parsed = parse_instant(text, NOW)
    assert parsed == expected
    assert parsed.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("text", ["", "yesterday", "24", "h", "5y", "-1d", "2024-13-01", "1.5h"])
def test_anything_else_says_what_is_accepted(text: str) -> None:
    with pytest.raises(TimespanError) as raised:
        parse_instant(text, NOW)
    assert str(raised.value) == f"{text!r} is not a time such as 30m, 24h, 7d, 2w, " + (
        "2024-05-01 or 2024-05-01T12:00:00Z"
    )
