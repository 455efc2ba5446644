"""Text and JSON from outside, checked where they enter, before anything uses them.

Three kinds of input pass a first look and fail later, far from where they came in:

- JSON nested thousands of levels deep: ``json.loads`` raises ``RecursionError``, which no
  ``except ValueError`` catches. ``load_json`` answers ``JsonInvalid`` (a ``ValueError``)
  for nesting deeper than ``MAX_JSON_DEPTH``; no document we read needs more than a few.
- Strings that are not text: a lone surrogate (``"\\udc80"`` in JSON, which ``json``
  decodes as is) makes every UTF-8 encoder fail (a password hasher, the database driver,
  a log line), and PostgreSQL refuses a NUL character in any text value.
  ``text_problem`` says what is wrong with such a string; ``load_json`` refuses lone
  surrogates anywhere in a document (RFC 8259 leaves them undefined, I-JSON forbids them).
- Numbers: ``str.isdigit`` is true for ``"²"``, which ``int`` refuses, and ``int`` refuses
  more than 4300 digits; past 19 digits no database column holds the value. ``whole_number``
  reads ASCII digits only, at most ``MAX_DIGITS`` of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

MAX_JSON_DEPTH = 64
MAX_DIGITS = 18  # every such number is below 2**63, a database's largest integer


class JsonInvalid(ValueError):
    """Not JSON we accept; the message says why, for the person who sent it."""


def _surrogate(value: str) -> str | None:
    """What is wrong with a string no UTF-8 encoder takes, or ``None``."""
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"it contains a lone surrogate (U+{ord(value[exc.start]):04X}), which is not text"
    return None


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored or encoded as text, or ``None`` when it can."""
    if "\x00" in value:
        return "it contains a NUL character"
    return _surrogate(value)


def first_text_problem(values: Iterable[tuple[str, object]]) -> tuple[str, str] | None:
    """The first ``(name, problem)`` among named values (path or query parameters, form
    fields) that is not text (``text_problem``), or ``None`` when all are."""
    for name, value in values:
        problem = text_problem(str(value))
        if problem is not None:
            return name, problem
    return None


def whole_number(text: str, max_digits: int = MAX_DIGITS) -> int | None:
    """``text`` as a non-negative integer when it is 1 to ``max_digits`` ASCII digits."""
    if not (0 < len(text) <= max_digits and text.isascii() and text.isdigit()):
        return None
    return int(text)


def _check(document: Any, max_depth: int) -> None:
    """Depth and text of every value, iteratively (the document may be deep)."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            problem = _surrogate(value)
            if problem is not None:
                raise JsonInvalid(problem)
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > max_depth:
            raise JsonInvalid(f"it is nested more than {max_depth} levels deep")
        if isinstance(value, dict):
            for key, item in value.items():
                problem = _surrogate(key)
                if problem is not None:
                    raise JsonInvalid(problem)
                pending.append((item, depth + 1))
        else:
            pending.extend((item, depth + 1) for item in value)


def load_json(data: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse UTF-8 JSON from outside; ``JsonInvalid`` for anything ``json.loads`` refuses,
    for nesting deeper than ``max_depth`` and for strings that are not text."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        document = json.loads(text)
    except RecursionError:
        raise JsonInvalid(f"it is nested more than {max_depth} levels deep") from None
    except UnicodeDecodeError as exc:
        raise JsonInvalid(f"it is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise JsonInvalid(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError:  # a number of more than 4,300 digits (sys.get_int_max_str_digits)
        raise JsonInvalid("it holds a number too long to read") from None
    _check(document, max_depth)
    return document
