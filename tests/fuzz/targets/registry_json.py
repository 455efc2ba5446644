"""Docker Desktop's ``registry.json`` as the gateway enforces it (``core/signin.py``).

Properties: only ``InvalidRegistryJson`` escapes (the gateway then fails closed and shows
the message), and its message is text a log line and a terminal can hold; an accepted
file is UTF-8 JSON without a byte order mark whose one key ``allowedOrgs`` lists
distinct, valid, lowercase organization names, and writing those names back as a
registry.json gives a file that reads the same.
"""

from __future__ import annotations

import json
import re

from imagegate.core.signin import InvalidRegistryJson, parse_registry_json

ORG = re.compile(r"[a-z0-9][a-z0-9_-]{0,28}[a-z0-9]", re.ASCII)


def test_one_input(data: bytes) -> None:
    try:
        orgs = parse_registry_json(data)
    except InvalidRegistryJson as exc:
        message = str(exc)
        assert message and "\n" not in message, message
        message.encode("utf-8")  # printed by 'enforce-sign-in check', logged by serve
        return
    assert orgs and len(set(orgs)) == len(orgs), orgs
    assert all(ORG.fullmatch(org) and org != "library" for org in orgs), orgs
    document = json.loads(data.decode("utf-8"))
    assert list(document) == ["allowedOrgs"] and tuple(document["allowedOrgs"]) == orgs
    assert parse_registry_json(json.dumps({"allowedOrgs": list(orgs)}).encode()) == orgs
