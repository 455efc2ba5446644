"""A reader for Windows registry files (``.reg``), written from regedit's format, to check
what ``imagegate enforce-sign-in reg`` writes the way regedit would read it::

    keys = parse_reg(path.read_bytes())
    assert keys[r"HKEY_LOCAL_MACHINE\\SOFTWARE\\..."]["allowedOrgs"] == RegValue(7, ["acme"])

It decodes the file (UTF-16LE with a byte order mark for "Version 5.00", what regedit
exports; UTF-8 otherwise), joins lines continued with a trailing backslash, and decodes
string, ``dword:`` and ``hex(N):`` values; REG_MULTI_SZ (``hex(7)``) becomes its list of
strings. Anything malformed raises ``ValueError``: a reader that guessed would hide the
very mistakes the tests look for.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

HEADER = "Windows Registry Editor Version 5.00"
REG_SZ, REG_EXPAND_SZ, REG_BINARY, REG_DWORD, REG_MULTI_SZ = 1, 2, 3, 4, 7

_VALUE_RE = re.compile(r'(?:"(?P<name>(?:[^"\\]|\\.)*)"|(?P<default>@))=(?P<data>.*)')
_HEX_RE = re.compile(r"hex(?:\((?P<kind>[0-9a-fA-F]+)\))?:(?P<bytes>.*)")


@dataclass(frozen=True)
class RegValue:
    kind: int  # REG_SZ, REG_DWORD, REG_MULTI_SZ...
    data: str | int | bytes | list[str]


Keys = dict[str, dict[str, RegValue]]


def decode(data: bytes) -> str:
    """The text of a .reg file: UTF-16LE after its BOM, else UTF-8 (with or without BOM)."""
    if data.startswith(codecs.BOM_UTF16_LE):
        return data[len(codecs.BOM_UTF16_LE) :].decode("utf-16-le")
    return data.decode("utf-8-sig")


def logical_lines(text: str) -> list[str]:
    """Physical lines (CRLF or LF) with ``\\``-continued ones joined, leading blanks of a
    continuation dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = pending + (raw.lstrip() if pending else raw)
        # A string ends with '"' and a key with ']': a trailing backslash only continues.
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        pending = ""
        lines.append(line)
    if pending:
        raise ValueError("the file ends inside a continued line")
    return lines


def parse_reg(data: bytes) -> Keys:
    """Every key of the file and its values (a deleted value or key is left out)."""
    lines = logical_lines(decode(data))
    if not lines or lines[0] != HEADER:
        raise ValueError(f"the first line is not {HEADER!r}: {lines[:1]!r}")
    keys: Keys = {}
    current: dict[str, RegValue] | None = None
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip() or line.startswith(";"):
            continue
        if line.startswith("[") and line.endswith("]"):
            name = line[1:-1]
            if name.startswith("-"):  # [-KEY] deletes the key
                current = None
                keys.pop(name[1:], None)
                continue
            current = keys.setdefault(name, {})
            continue
        match = _VALUE_RE.fullmatch(line)
        if match is None:
            raise ValueError(f"line {number} is neither a [key] nor a value: {line!r}")
        if current is None:
            raise ValueError(f"line {number} sets a value outside any key: {line!r}")
        name = "" if match["default"] else _unescape(match["name"])
        if match["data"] == "-":
            current.pop(name, None)
            continue
        current[name] = _value(match["data"], number)
    return keys


def _value(data: str, number: int) -> RegValue:
    if data.startswith('"') and data.endswith('"') and len(data) >= 2:
        return RegValue(REG_SZ, _unescape(data[1:-1]))
    if data.startswith("dword:"):
        digits = data.removeprefix("dword:")
        if re.fullmatch(r"[0-9a-fA-F]{8}", digits) is None:
            raise ValueError(f"line {number}: a dword has 8 hex digits: {data!r}")
        return RegValue(REG_DWORD, int(digits, 16))
    match = _HEX_RE.fullmatch(data)
    if match is None:
        raise ValueError(f"line {number}: unknown value type: {data!r}")
    kind = int(match["kind"], 16) if match["kind"] else REG_BINARY
    raw = _hex_bytes(match["bytes"], number)
    if kind == REG_MULTI_SZ:
        return RegValue(kind, _multi_string(raw, number))
    if kind == REG_EXPAND_SZ:
        return RegValue(kind, _utf16(raw, number).removesuffix("\0"))
    return RegValue(kind, raw)


def _hex_bytes(text: str, number: int) -> bytes:
    if not text:
        return b""
    items = text.split(",")
    if any(re.fullmatch(r"[0-9a-fA-F]{2}", item) is None for item in items):
        raise ValueError(f"line {number}: hex data is comma-separated byte pairs: {text!r}")
    return bytes(int(item, 16) for item in items)


def _utf16(raw: bytes, number: int) -> str:
    if len(raw) % 2:
        raise ValueError(f"line {number}: UTF-16 data has an odd number of bytes")
    return raw.decode("utf-16-le")


def _multi_string(raw: bytes, number: int) -> list[str]:
    """REG_MULTI_SZ: NUL-terminated strings, then one more NUL."""
    text = _utf16(raw, number)
    if not text.endswith("\0\0"):
        raise ValueError(f"line {number}: a multi-string must end with two NULs: {text!r}")
    if text == "\0\0":
        return []
    strings = text[:-2].split("\0")
    if "" in strings:
        raise ValueError(f"line {number}: an empty string inside a multi-string: {text!r}")
    return strings


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)
