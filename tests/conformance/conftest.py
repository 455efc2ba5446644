"""A spec-derived OCI distribution suite, run against a real ``imagegate serve``.

Written from the OCI distribution specification v1.1 (and the behaviour its conformance
suites check, as summarised in OCI-DISTRIBUTION.md); the tests are our own. Each module
starts one gateway (in front of the session's real upstream registry) with one
organization, ``conf``, configured through the CLI only:

- ``owner`` owns ``conf`` (admin everywhere: the deletes of the content management tests);
- ``pusher`` is in team ``writers``, which has ``write`` on the whole namespace;
- ``stranger`` is in no organization.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.e2e.conftest import (  # noqa: F401 - fixtures and hooks shared with the e2e tests
    pytest_runtest_makereport,
    pytest_runtest_setup,
    start_gateway,
    upstream,
)
from tests.support.gateway import Gateway
from tests.support.oci import OciClient
from tests.support.upstream import UpstreamRegistry

ORG = "conf"
PASSWORDS = {
    "owner": "owner-Pa55word",
    "pusher": "pusher-Pa55word",
    "stranger": "stranger-Pa55word",
}


@dataclass(frozen=True)
class Registry:
    gateway: Gateway
    pusher: OciClient  # write on conf/*
    owner: OciClient  # admin on conf/*
    stranger: OciClient  # in no organization
    anonymous: OciClient


def configure_org(gateway: Gateway) -> None:
    for user, password in PASSWORDS.items():
        gateway.add_user(user, password)
    gateway.add_org(ORG, owner="owner")
    gateway.cli("org", "team", "add", ORG, "writers")
    gateway.add_member(ORG, "pusher", team="writers")
    gateway.cli("team", "permission", "set", ORG, "writers", "write")


@pytest.fixture(scope="module")
def registry(
    start_gateway: Callable[..., Gateway],  # noqa: F811 - the e2e fixture imported above
    upstream: UpstreamRegistry,  # noqa: F811
) -> Registry:
    gateway = start_gateway(upstream_url=upstream.url)
    configure_org(gateway)
    return Registry(
        gateway=gateway,
        pusher=OciClient(gateway.url, ("pusher", PASSWORDS["pusher"])),
        owner=OciClient(gateway.url, ("owner", PASSWORDS["owner"])),
        stranger=OciClient(gateway.url, ("stranger", PASSWORDS["stranger"])),
        anonymous=OciClient(gateway.url),
    )
