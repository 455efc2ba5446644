"""Docker Desktop's enforce-sign-in files, in every form Desktop reads (REFERENCE.md
section 2), each free of the pitfall that makes Desktop silently ignore it.

Every renderer validates the organization names first (``validate_orgs``: lowercase,
valid, distinct, at least one) and raises ``InvalidRegistryJson`` otherwise, so a file
that would sign everybody out is never produced.
"""

from __future__ import annotations

import json
import plistlib
import re
import uuid
from collections.abc import Iterable
from pathlib import PurePath, PurePosixPath, PureWindowsPath
from typing import Literal, get_args

from imagegate.core.signin import ALLOWED_ORGS_KEY, validate_orgs

DesktopOS = Literal["linux", "macos", "windows"]
DESKTOP_OSES: tuple[DesktopOS, ...] = get_args(DesktopOS)

# Where Docker Desktop reads registry.json on each operating system.
REGISTRY_JSON_PATHS: dict[DesktopOS, PurePath] = {
    "linux": PurePosixPath("/usr/share/docker-desktop/registry/registry.json"),
    "macos": PurePosixPath("/Library/Application Support/com.docker.docker/registry.json"),
    "windows": PureWindowsPath(r"C:\ProgramData\DockerDesktop\registry.json"),
}
DESKTOP_PLIST_PATH = PurePosixPath("/Library/Application Support/com.docker.docker/desktop.plist")
POLICY_KEY = r"HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Docker\Docker Desktop"
PROFILE_PAYLOAD_TYPE = "com.docker.config"
DEFAULT_PROFILE_IDENTIFIER = "imagegate.enforce-sign-in"
_IDENTIFIER_RE = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")

# uuid5 namespace of the profiles this module writes: the same identifier and
# organizations always give the same UUIDs, so regenerating a profile is a no-op diff.
_PROFILE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "imagegate:mobileconfig")


def registry_json(orgs: Iterable[str], os: DesktopOS) -> bytes:
    """``{"allowedOrgs": [...]}`` as UTF-8 without a byte order mark.

    Windows gets CRLF line endings so the file reads well in Notepad on any Windows
    version; JSON treats the CR as whitespace, so Desktop parses both forms alike.
    """
    text = json.dumps({ALLOWED_ORGS_KEY: list(validate_orgs(orgs))}, indent=2) + "\n"
    if os == "windows":
        text = text.replace("\n", "\r\n")
    return text.encode("utf-8")


def mobileconfig(orgs: Iterable[str], identifier: str = DEFAULT_PROFILE_IDENTIFIER) -> bytes:
    """A macOS configuration profile with one ``com.docker.config`` payload.

    ``allowedOrgs`` must be ONE string joined by ``;``: Desktop silently ignores an array
    in a profile (unlike ``desktop.plist``, where it must be an array).
    """
    names = validate_orgs(orgs)
    if _IDENTIFIER_RE.fullmatch(identifier) is None:
        # macOS replaces an installed profile by this identifier: it must be stable
        # and reverse-DNS shaped.
        raise ValueError(
            f"{identifier!r} is not a profile identifier; use reverse-DNS such as "
            "com.example.docker.sign-in"
        )
    joined = ";".join(names)
    listed = ", ".join(names)
    payload_identifier = f"{identifier}.{PROFILE_PAYLOAD_TYPE}"
    payload = {
        "PayloadType": PROFILE_PAYLOAD_TYPE,
        "PayloadVersion": 1,
        "PayloadIdentifier": payload_identifier,
        "PayloadUUID": _profile_uuid(payload_identifier, names),
        "PayloadDisplayName": "Docker Desktop sign-in",
        "PayloadDescription": f"Docker Desktop requires sign-in as a member of {listed}",
        ALLOWED_ORGS_KEY: joined,
    }
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        "PayloadUUID": _profile_uuid(identifier, names),
        "PayloadDisplayName": "Docker Desktop: enforce sign-in",
        "PayloadDescription": f"Requires signing in to Docker Desktop as a member of {listed}.",
        # Scope is a property of the whole profile (Apple's profile reference): System
        # applies it to every user of the Mac, not only the one who installs it.
        "PayloadScope": "System",
        "PayloadContent": [payload],
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML)


def desktop_plist(orgs: Iterable[str]) -> bytes:
    """``desktop.plist`` for ``DESKTOP_PLIST_PATH``: here ``allowedOrgs`` is an array."""
    return plistlib.dumps({ALLOWED_ORGS_KEY: list(validate_orgs(orgs))}, fmt=plistlib.FMT_XML)


# regedit wraps a hex value at 80 columns, ending each full line with ",\".
_REG_LINE_WIDTH = 80


def reg_file(orgs: Iterable[str]) -> bytes:
    """A Windows ``.reg`` file setting ``allowedOrgs`` under ``POLICY_KEY`` to a multi-string.

    REG_MULTI_SZ has no text form in a .reg file: it is ``hex(7):`` followed by the
    UTF-16LE bytes of each string, each NUL-terminated, plus a final NUL. The file is
    written as regedit exports one (and as ``reg import`` and Group Policy read it
    without guessing): UTF-16LE with a byte order mark and CRLF line endings. An ANSI
    file would do for these ASCII names, but the Unicode form is the one "Version 5.00"
    declares.
    """
    data = "".join(f"{name}\0" for name in validate_orgs(orgs)).encode("utf-16-le") + b"\0\0"
    value = _wrap_hex(f'"{ALLOWED_ORGS_KEY}"=hex(7):', data)
    lines = ["Windows Registry Editor Version 5.00", "", f"[{POLICY_KEY}]", *value, "", ""]
    return "\ufeff".encode("utf-16-le") + "\r\n".join(lines).encode("utf-16-le")


def _wrap_hex(prefix: str, data: bytes) -> list[str]:
    """``prefix`` and the bytes as ``xx,xx,...``, continued with ``\\`` the way regedit does."""
    lines: list[str] = []
    line = prefix
    for index, byte in enumerate(data):
        item = f"{byte:02x}" + ("," if index < len(data) - 1 else "")
        # Room is kept for the "\" that ends a continued line.
        if len(line) + len(item) + 1 > _REG_LINE_WIDTH:
            lines.append(line + "\\")
            line = "  "
        line += item
    lines.append(line)
    return lines


def _profile_uuid(identifier: str, orgs: tuple[str, ...]) -> str:
    return str(uuid.uuid5(_PROFILE_NAMESPACE, f"{identifier}\n{';'.join(orgs)}")).upper()
