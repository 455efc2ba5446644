"""``core.inputs``: JSON and text from outside, refused with a reason instead of failing later."""

from __future__ import annotations

from typing import Any

import pytest

from imagegate.core.inputs import MAX_JSON_DEPTH, JsonInvalid, load_json, text_problem


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"a": [1, "x", null]}', {"a": [1, "x", None]}),
        ('{"a": "\\ud83d\\ude00"}', {"a": "\U0001f600"}),  # a surrogate pair is one letter
        (b'{"a": "caf\xc3\xa9"}', {"a": "café"}),
        (b'"x\\u0000y"', "x\x00y"),  # valid JSON; where text is stored, text_problem says no
    ],
)
def test_accepted(data: bytes | str, expected: Any) -> None:
    assert load_json(data) == expected


def test_nesting_up_to_the_limit_is_fine() -> None:
    document = load_json(_nested(MAX_JSON_DEPTH))
    for _ in range(MAX_JSON_DEPTH - 1):
        [document] = document
    assert document == []


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_nested(MAX_JSON_DEPTH + 1), "it is nested more than 64 levels deep"),
        (_nested(100_000), "it is nested more than 64 levels deep"),  # RecursionError inside
        (b'{"a":' * 70 + b"1" + b"}" * 70, "it is nested more than 64 levels deep"),
        (b"[" * 100_000, "it is nested more than 64 levels deep"),
        (b'{"a": "\\udc80"}', "it contains a lone surrogate (U+DC80), which is not text"),
        (b'{"\\ud800": 1}', "it contains a lone surrogate (U+D800), which is not text"),
        (b'["ok", ["\\ude00x"]]', "it contains a lone surrogate (U+DE00), which is not text"),
        (b'"\xed\xb2\x80"', "it is not UTF-8 (byte 1)"),  # a surrogate's UTF-8 bytes
        (b"\xef\xbb\xbf{}", "Unexpected UTF-8 BOM (decode using utf-8-sig) at line 1 column 1"),
        (b"{not json", "Expecting property name enclosed in double quotes at line 1 column 2"),
        (b"", "Expecting value at line 1 column 1"),
    ],
)
def test_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(JsonInvalid) as refused:
        load_json(data)
    assert str(refused.value) == reason
    assert isinstance(refused.value, ValueError)  # every existing ``except ValueError`` holds


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("acme", None),
        ("café ☕ \U0001f600", None),
        ("a\x00b", "it contains a NUL character"),
        ("\udc80", "it contains a lone surrogate (U+DC80), which is not text"),
        ("é\ud800", "it contains a lone surrogate (U+D800), which is not text"),
    ],
)
def test_text_problem(value: str, problem: str | None) -> None:
    assert text_problem(value) == problem
