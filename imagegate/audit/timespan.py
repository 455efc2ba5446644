"""Points in time as people type them on a command line (pure, no I/O).

``24h``, ``30m``, ``7d`` or ``2w`` mean that long before now; ``2024-05-01`` is midnight
UTC that day; ``2024-05-01T12:00:00Z`` (or with an offset) is that instant. A date-time
without an offset is read as UTC, since audit timestamps are UTC everywhere.
"""

from __future__ import annotations

import datetime as dt
import re

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_AGO = re.compile(r"(\d{1,6})([smhdw])")
_EXAMPLES = "such as 30m, 24h, 7d, 2w, 2024-05-01 or 2024-05-01T12:00:00Z"


class TimespanError(ValueError):
    """The text is not a point in time; the message says what is accepted."""


def parse_instant(text: str, now: dt.datetime) -> dt.datetime:
    """The aware UTC instant ``text`` names, relative ones counted back from ``now``."""
    value = text.strip()
    ago = _AGO.fullmatch(value.lower())
    if ago is not None:
        amount, unit = ago.groups()
        return now.astimezone(dt.UTC) - dt.timedelta(**{_UNITS[unit]: int(amount)})
    try:
        parsed = dt.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise TimespanError(f"{text!r} is not a time {_EXAMPLES}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)
