"""registry.json as the gateway reads it: Desktop's format, stricter, with exact reasons."""

from __future__ import annotations

import codecs

import pytest

from imagegate.core.signin import (
    InvalidRegistryJson,
    SignInRequirement,
    membership_message,
    missing_orgs_problem,
    parse_registry_json,
)


@pytest.mark.parametrize(
    ("data", "orgs"),
    [
        (b'{"allowedOrgs": ["acme"]}', ("acme",)),
        (b'{"allowedOrgs": ["acme", "globex"]}\n', ("acme", "globex")),
        (b'  {\n  "allowedOrgs" : [ "my-org", "org_2" ]\n}\n', ("my-org", "org_2")),
    ],
)
def test_a_valid_file_lists_the_orgs_in_file_order(data: bytes, orgs: tuple[str, ...]) -> None:
    assert parse_registry_json(data) == orgs


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (codecs.BOM_UTF8 + b'{"allowedOrgs": ["acme"]}', "starts with a UTF-8 byte order mark"),
        ('{"allowedOrgs": ["acme"]}'.encode("utf-16"), "UTF-16 byte order mark"),
        (b'{"allowedOrgs": ["acm\xe9"]}', "not UTF-8 (invalid byte at offset 21)"),
        (b'{"allowedOrgs": ["acme"],}', "not valid JSON"),
        (b"", "not valid JSON"),
        (
            b'{"allowedOrgs": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            "the file is not valid JSON: it is nested more than 64 levels deep",
        ),
        (b'["acme"]', "must hold one JSON object"),
        (b'{"allowedorgs": ["acme"]}', "keys are case-sensitive: write 'allowedOrgs'"),
        (b'{"allowedOrgs": ["acme"], "x": 1}', "unknown key 'x'"),
        (b"{}", "the key 'allowedOrgs' is missing"),
        (b'{"allowedOrgs": "acme"}', "must be a list of organization names, not str"),
        (b'{"allowedOrgs": []}', "'allowedOrgs' is empty"),
        (b'{"allowedOrgs": ["Acme"]}', "'Acme' is not lowercase"),
        (b'{"allowedOrgs": [" acme"]}', "has spaces around it"),
        (b'{"allowedOrgs": [""]}', "is empty"),
        (b'{"allowedOrgs": [7]}', "7 is not an organization name"),
        (b'{"allowedOrgs": ["acme", "acme"]}', "'acme' is listed twice"),
        (b'{"allowedOrgs": ["a"]}', "invalid organization name 'a'"),
        (b'{"allowedOrgs": [' + b"7" * 5000 + b"]}", "holds a number too long to read"),
    ],
)
def test_an_invalid_file_says_exactly_what_is_wrong(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidRegistryJson) as raised:
        parse_registry_json(data)
    assert reason in str(raised.value)


def test_missing_orgs_are_named_sorted() -> None:
    assert missing_orgs_problem([]) is None
    assert missing_orgs_problem(["zeta"]) == (
        "organization 'zeta' not found on this gateway; create it or correct the name"
    )
    assert missing_orgs_problem(["zeta", "alpha"]) == (
        "organizations 'alpha', 'zeta' not found on this gateway; create it or correct the name"
    )


def test_what_counts_as_enforced() -> None:
    assert not SignInRequirement().enforced
    assert SignInRequirement(("acme",)).enforced
    assert SignInRequirement(problem="broken").enforced


def test_dockers_message_verbatim() -> None:
    assert membership_message(["org1", "org2"]) == (
        "You must be a member of the [org1 org2] organization. Log in with a different "
        "account, or contact your organization owner to add your account."
    )
