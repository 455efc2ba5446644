"""Docker Desktop's sign-in files, each parsed back with a real parser the way Desktop
(or regedit, or macOS) reads it."""

from __future__ import annotations

import codecs
import json
import plistlib
import uuid
from collections.abc import Callable

import pytest

from imagegate.core.signin import InvalidRegistryJson, parse_registry_json
from imagegate.deploy.desktop import (
    POLICY_KEY,
    desktop_plist,
    mobileconfig,
    reg_file,
    registry_json,
)
from tests.support.regfile import REG_MULTI_SZ, RegValue, logical_lines, parse_reg

ORGS = ["acme", "globex"]


@pytest.mark.parametrize("os", ["linux", "macos", "windows"])
def test_registry_json_is_utf8_json_without_bom(os: str) -> None:
    data = registry_json(ORGS, os)  # type: ignore[arg-type]
    assert not data.startswith(codecs.BOM_UTF8)
    assert json.loads(data.decode("utf-8")) == {"allowedOrgs": ["acme", "globex"]}
    # The gateway's own strict reader accepts what it writes.
    assert parse_registry_json(data) == ("acme", "globex")


def test_registry_json_line_endings_follow_the_os() -> None:
    assert b"\r\n" in registry_json(ORGS, "windows")
    assert b"\r" not in registry_json(ORGS, "linux")
    assert b"\r" not in registry_json(ORGS, "macos")


RENDERERS: dict[str, Callable[[list[str]], bytes]] = {
    "registry.json": lambda orgs: registry_json(orgs, "linux"),
    "mobileconfig": mobileconfig,
    "desktop.plist": desktop_plist,
    "reg": reg_file,
}


@pytest.mark.parametrize("form", RENDERERS)
@pytest.mark.parametrize(
    ("orgs", "complaint"),
    [
        (["Acme"], "'Acme' is not lowercase"),
        (["acme", "acme"], "'acme' is listed twice"),
        ([], "'allowedOrgs' is empty"),
        (["ac me"], "ac me"),
    ],
)
def test_every_form_refuses_names_desktop_could_not_use(
    form: str, orgs: list[str], complaint: str
) -> None:
    with pytest.raises(InvalidRegistryJson, match=complaint):
        RENDERERS[form](orgs)


def test_mobileconfig_allowed_orgs_is_one_semicolon_separated_string() -> None:
    profile = plistlib.loads(mobileconfig(ORGS))
    [payload] = profile["PayloadContent"]
    assert payload["PayloadType"] == "com.docker.config"
    # An array here is silently ignored by Desktop: it must be one string.
    assert payload["allowedOrgs"] == "acme;globex"
    assert isinstance(payload["allowedOrgs"], str)


def test_mobileconfig_is_a_complete_system_profile() -> None:
    profile = plistlib.loads(mobileconfig(ORGS, identifier="com.example.docker"))
    [payload] = profile["PayloadContent"]
    assert profile["PayloadType"] == "Configuration"
    assert profile["PayloadScope"] == "System"
    assert profile["PayloadIdentifier"] == "com.example.docker"
    assert payload["PayloadIdentifier"] == "com.example.docker.com.docker.config"
    for dictionary in (profile, payload):
        assert dictionary["PayloadVersion"] == 1
        assert dictionary["PayloadDisplayName"]
        uuid.UUID(dictionary["PayloadUUID"])  # well-formed
    assert profile["PayloadUUID"] != payload["PayloadUUID"]


def test_mobileconfig_uuids_are_stable_for_the_same_input_only() -> None:
    first = plistlib.loads(mobileconfig(ORGS))
    again = plistlib.loads(mobileconfig(ORGS))
    other = plistlib.loads(mobileconfig(["acme"]))
    assert first["PayloadUUID"] == again["PayloadUUID"]
    assert first["PayloadUUID"] != other["PayloadUUID"]


def test_mobileconfig_refuses_an_identifier_macos_cannot_key_on() -> None:
    with pytest.raises(ValueError, match="not a profile identifier"):
        mobileconfig(ORGS, identifier="my profile")


def test_desktop_plist_allowed_orgs_is_an_array() -> None:
    assert plistlib.loads(desktop_plist(ORGS)) == {"allowedOrgs": ["acme", "globex"]}


def test_reg_file_sets_a_multi_string_policy_value() -> None:
    keys = parse_reg(reg_file(ORGS))
    assert keys == {POLICY_KEY: {"allowedOrgs": RegValue(REG_MULTI_SZ, ["acme", "globex"])}}
    assert POLICY_KEY == r"HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Docker\Docker Desktop"


def test_reg_file_is_utf16le_with_bom_and_crlf_as_regedit_exports() -> None:
    data = reg_file(ORGS)
    assert data.startswith(codecs.BOM_UTF16_LE)
    text = data[2:].decode("utf-16-le")
    assert text.startswith("Windows Registry Editor Version 5.00\r\n\r\n[")
    assert "\n" not in text.replace("\r\n", "")


def test_reg_file_wraps_long_values_at_80_columns() -> None:
    orgs = [f"organization{number:02d}" for number in range(12)]
    text = reg_file(orgs)[2:].decode("utf-16-le")
    physical = text.split("\r\n")
    assert max(len(line) for line in physical) <= 80
    continued = [line for line in physical if line.endswith("\\")]
    assert len(continued) > 5
    assert all(line.startswith("  ") for line in physical[physical.index(continued[0]) + 1 :][:5])
    assert len(logical_lines(text)) < len(physical)
    assert parse_reg(reg_file(orgs))[POLICY_KEY]["allowedOrgs"].data == orgs
