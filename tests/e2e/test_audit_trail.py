"""The audit trail end to end: a scripted sequence of changes and real pulls, then queries.

One gateway of this module's own (so no other module's users, pulls or changes appear)
in front of the session upstream. Users, the organization, its settings, its allowlist
and its membership are changed with the admin CLI; pulls are real ``skopeo copy`` runs,
member, anonymous and with a wrong password. Then ``imagegate audit`` must return exactly
the records written out below, in order: the organization's trail, one user's, the
refusals, one repository's, as JSON lines, as a table and as a file.

Each registry request is its own ``registry.pull`` event (``data.request`` says which):
the comparison folds the blob fetches that follow a manifest pull into that pull (how
many, and which digests), so the expected lists read as one line per pull. Blob fetches
of one pull may run in parallel, so only their number and digests are compared, never
their order. The expectations are written by hand, not derived from the product's code.

The recorder writes pull and login events in batches; the test polls the trail until
every expected event is there (or a deadline passes), never timing an assertion.
"""

from __future__ import annotations

import getpass
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.binaries import require_binary
from tests.e2e.world import (
    COMMUNITY_NOT_ALLOWED,
    NOT_MEMBER_TEXT,
    OK,
    SIGN_IN_TEXT,
    Seeded,
    blocked,
    check_pull,
)
from tests.support.clients import MissingClient, Skopeo
from tests.support.gateway import Gateway
from tests.support.hubstub import HubStub
from tests.support.upstream import UpstreamRegistry

pytestmark = pytest.mark.e2e

ORG = "acme"
ALICE = ("alice", "alice-Pa55word")  # owner of acme
BOB = ("bob", "bob-Pa55word")  # a member of acme, until he is removed
CLI = f"cli:{getpass.getuser()}"  # who the admin CLI records as the actor
EVERY_EVENT = 33  # the whole trail of the script below, counted by hand
DEADLINE_SECONDS = 30.0


# -- the records, as a person reads them --------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A change by the admin CLI: what, on which name, before and after."""

    action: str
    name: str
    before: Any
    after: Any
    actor: str = CLI


@dataclass(frozen=True)
class Login:
    actor: str
    decision: str
    reason: str = ""
    via: str = "registry"


@dataclass(frozen=True)
class Pull:
    """A manifest request's decision, and how many blob fetches followed it.

    ``reason`` is a part of the recorded reason; ``digest`` is the manifest digest an
    allowed pull by tag resolved to (``None`` for a refusal).
    """

    actor: str | None
    decision: str
    repository: str
    reference: str
    reason: str
    digest: str | None = None
    blobs: int = 0
    blob_digests: frozenset[str] = field(default=frozenset(), compare=False, repr=False)


@dataclass(frozen=True)
class Other:
    """An event the projection does not expect: shown whole, so a diff says what it is."""

    event: dict[str, Any]


Record = Change | Login | Pull | Other


def project(events: list[dict[str, Any]]) -> list[Record]:
    """``imagegate audit --json`` lines as records, blob fetches folded into their pull."""
    records: list[Record] = []
    for event in events:
        action, data = event["action"], event["data"]
        if action == "registry.pull" and data.get("request") == "blob":
            last = records[-1] if records else None
            if (
                isinstance(last, Pull)
                and last.actor == event["actor"]
                and last.repository == event["repository"]
                and last.decision == event["decision"]
            ):
                records[-1] = Pull(
                    last.actor,
                    last.decision,
                    last.repository,
                    last.reference,
                    last.reason,
                    last.digest,
                    last.blobs + 1,
                    last.blob_digests | {event["digest"]},
                )
                continue
            records.append(Other(event))
        elif action == "registry.pull" and data.get("request") == "manifest":
            records.append(
                Pull(
                    event["actor"],
                    event["decision"],
                    event["repository"],
                    event["reference"],
                    event["reason"] or "",
                    event["digest"],
                )
            )
        elif action == "auth.login":
            records.append(
                Login(event["actor"], event["decision"], event["reason"] or "", data.get("via"))
            )
        elif action.split(".")[0] in ("org", "user", "repo", "publisher"):
            records.append(
                Change(action, event["name"], data.get("before"), data.get("after"), event["actor"])
            )
        else:
            records.append(Other(event))
    return records


def assert_trail(actual: list[Record], expected: list[Record]) -> None:
    """Exactly ``expected``, in order; a pull's ``reason`` need only be part of the recorded
    one. A mismatch shows both lists, one record a line."""
    normalized = [
        _with_expected_reason(got, want)
        if isinstance(got, Pull) and isinstance(want, Pull)
        else got
        for got, want in zip(actual, expected, strict=False)
    ]
    normalized += actual[len(expected) :]
    assert normalized == expected, (
        "the audit trail differs from the script\n--- recorded ---\n"
        + "\n".join(map(repr, actual))
        + "\n--- expected ---\n"
        + "\n".join(map(repr, expected))
    )


def _with_expected_reason(got: Pull, want: Pull) -> Pull:
    if want.reason in got.reason:
        return Pull(
            got.actor,
            got.decision,
            got.repository,
            got.reference,
            want.reason,
            got.digest,
            got.blobs,
            got.blob_digests,
        )
    return got


# -- the script ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scripted:
    gateway: Gateway
    official: Seeded
    community: Seeded
    acme_app: Seeded

    def audit(self, *args: str) -> list[dict[str, Any]]:
        shown = self.gateway.cli("audit", "--json", *args)
        return [json.loads(line) for line in shown.stdout.splitlines()]


@pytest.fixture(scope="module")
def scripted(
    start_gateway: Callable[..., Gateway],
    upstream: UpstreamRegistry,
    hub: HubStub,
    images: dict[str, Seeded],
    tmp_path_factory: pytest.TempPathFactory,
) -> Scripted:
    """Run the script once for the module, and wait until its whole trail is recorded."""
    require_binary("skopeo")
    try:
        skopeo = Skopeo(tmp_path_factory.mktemp("audit-skopeo"))
    except MissingClient as exc:
        pytest.fail(str(exc), pytrace=False)
    gateway = start_gateway(upstream_url=upstream.url, hub_api_url=hub.url)
    official, community, acme_app = images["official"], images["community"], images["acme"]
    host = gateway.host

    gateway.add_user(*ALICE)
    gateway.add_user(*BOB)
    gateway.add_org(ORG, owner=ALICE[0])
    gateway.add_member(ORG, BOB[0])
    gateway.set_image_access(ORG, "--enable")  # community restricted by default

    check_pull(skopeo.pull(official.reference(host), BOB), OK, official)
    check_pull(
        skopeo.pull(community.reference(host), BOB),
        blocked(ORG, COMMUNITY_NOT_ALLOWED),
        community,
    )
    check_pull(skopeo.pull(official.reference(host)), OK, official)  # anonymous
    refused = skopeo.pull(acme_app.reference(host))  # anonymous, an organization's image
    assert not refused.ok and SIGN_IN_TEXT in refused.stderr, refused.describe()
    wrong = skopeo.pull(official.reference(host), (BOB[0], "not-his-password"))
    assert not wrong.ok and "unauthorized" in wrong.stderr.lower(), wrong.describe()

    gateway.cli("image-access", "allow", ORG, community.repository)
    check_pull(skopeo.pull(community.reference(host), BOB), OK, community)

    gateway.remove_member(ORG, BOB[0])
    outsider = skopeo.pull(acme_app.reference(host), BOB)
    assert not outsider.ok and NOT_MEMBER_TEXT in outsider.stderr, outsider.describe()
    check_pull(skopeo.pull(community.reference(host), BOB), OK, community)  # no org: no policy

    result = Scripted(gateway, official, community, acme_app)
    deadline = time.monotonic() + DEADLINE_SECONDS
    while len(events := result.audit()) < EVERY_EVENT and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(events) == EVERY_EVENT, "\n".join(map(repr, project(events)))
    return result


# -- the queries --------------------------------------------------------------------------

MEMBER_TEAM = {"description": "", "team": "members"}
DEFAULT_SETTINGS = {
    "allow_community": False,
    "allow_official": True,
    "allow_verified_publishers": True,
}
BOB_IN_ACME = {"role": "member", "teams": ["members"]}
NOBODY: dict[str, Any] = {"role": None, "teams": []}
OFFICIAL_ALLOWED = "Docker Official Images are allowed by acme"
ALLOWLISTED = "someone/thing is on the allowlist of acme"
SIGN_IN_FIRST = (
    "acme/app does not exist or is private to organization acme; sign in as a member who may "
    "read it"
)
NOT_A_MEMBER = (
    "acme/app does not exist or is private to organization acme, and bob is not a member of acme"
)
WRONG_PASSWORD = "incorrect username or password"
ANONYMOUS_UNBOUND = "bound by no organization's policy"
NO_POLICY = "no image access policy applies"
BLOBS = 3  # each seeded image: a config and two layers


def _assert_blobs_are_the_image(records: list[Record], scripted: Scripted) -> None:
    by_repository = {
        image.repository: set(image.layer_digests)
        for image in (scripted.official, scripted.community, scripted.acme_app)
    }
    for record in records:
        if isinstance(record, Pull) and record.blobs:
            layers = by_repository[record.repository]
            assert layers <= record.blob_digests, (record, layers)


def test_the_organizations_trail_is_exactly_the_script(scripted: Scripted) -> None:
    """Its changes, and what its members did while they were members (signing in too);
    anonymous pulls of its own images. Not: a failed login (no member is known),
    anonymous pulls of others' images, what a former member does elsewhere."""
    official, community = scripted.official, scripted.community
    records = project(scripted.audit("--org", ORG))
    assert_trail(
        records,
        [
            Change("org.create", ORG, None, {"owner": "alice"}),
            Change("org.team.create", "members", None, MEMBER_TEAM),
            Change("org.member.add", "bob", NOBODY, BOB_IN_ACME),
            Change(
                "org.settings.update",
                ORG,
                {**DEFAULT_SETTINGS, "enabled": False},
                {**DEFAULT_SETTINGS, "enabled": True},
            ),
            Login("bob", "allowed"),
            Pull("bob", "allowed", "library/alpine", "3", OFFICIAL_ALLOWED, official.digest, BLOBS),
            Login("bob", "allowed"),
            Pull("bob", "denied", "someone/thing", "1", COMMUNITY_NOT_ALLOWED),
            Pull(None, "denied", "acme/app", "1", SIGN_IN_FIRST),
            Change("org.allowlist.add", "someone/thing", None, {"repository": "someone/thing"}),
            Login("bob", "allowed"),
            Pull("bob", "allowed", "someone/thing", "1", ALLOWLISTED, community.digest, BLOBS),
            Change("org.member.remove", "bob", BOB_IN_ACME, NOBODY),
            Pull("bob", "denied", "acme/app", "1", NOT_A_MEMBER),
        ],
    )
    _assert_blobs_are_the_image(records, scripted)


def test_a_users_trail_has_every_login_and_pull(scripted: Scripted) -> None:
    """One sign-in per skopeo run with credentials, the wrong password too."""
    official, community = scripted.official, scripted.community
    records = project(scripted.audit("--user", "bob"))
    assert_trail(
        records,
        [
            Login("bob", "allowed"),
            Pull("bob", "allowed", "library/alpine", "3", OFFICIAL_ALLOWED, official.digest, BLOBS),
            Login("bob", "allowed"),
            Pull("bob", "denied", "someone/thing", "1", COMMUNITY_NOT_ALLOWED),
            Login("bob", "denied", WRONG_PASSWORD),
            Login("bob", "allowed"),
            Pull("bob", "allowed", "someone/thing", "1", ALLOWLISTED, community.digest, BLOBS),
            Login("bob", "allowed"),
            Pull("bob", "denied", "acme/app", "1", NOT_A_MEMBER),
            Login("bob", "allowed"),
            Pull("bob", "allowed", "someone/thing", "1", NO_POLICY, community.digest, BLOBS),
        ],
    )
    _assert_blobs_are_the_image(records, scripted)


def test_the_refusals(scripted: Scripted) -> None:
    """Every denied decision: pulls of any kind of client, and the failed sign-in."""
    assert_trail(
        project(scripted.audit("--decision", "denied")),
        [
            Pull("bob", "denied", "someone/thing", "1", COMMUNITY_NOT_ALLOWED),
            Pull(None, "denied", "acme/app", "1", SIGN_IN_FIRST),
            Login("bob", "denied", WRONG_PASSWORD),
            Pull("bob", "denied", "acme/app", "1", NOT_A_MEMBER),
        ],
    )


def test_a_repositorys_trail_has_its_pulls_and_its_allowlisting(scripted: Scripted) -> None:
    community = scripted.community
    assert_trail(
        project(scripted.audit("--repository", "someone/thing")),
        [
            Pull("bob", "denied", "someone/thing", "1", COMMUNITY_NOT_ALLOWED),
            Change("org.allowlist.add", "someone/thing", None, {"repository": "someone/thing"}),
            Pull("bob", "allowed", "someone/thing", "1", ALLOWLISTED, community.digest, BLOBS),
            Pull("bob", "allowed", "someone/thing", "1", NO_POLICY, community.digest, BLOBS),
        ],
    )


def test_a_bare_repository_name_means_library(scripted: Scripted) -> None:
    official = scripted.official
    records = project(scripted.audit("--repository", "alpine", "--action", "registry.pull"))
    assert_trail(
        records,
        [
            Pull("bob", "allowed", "library/alpine", "3", OFFICIAL_ALLOWED, official.digest, BLOBS),
            Pull(None, "allowed", "library/alpine", "3", ANONYMOUS_UNBOUND, official.digest, BLOBS),
        ],
    )
    _assert_blobs_are_the_image(records, scripted)


def test_the_table_shows_a_refusal_readably(scripted: Scripted) -> None:
    shown = scripted.gateway.cli("audit", "--decision", "denied")
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["TIME", "ACTOR", "ACTION", "DECISION", "WHAT", "REASON"], (
        shown.describe()
    )
    assert len(lines) == 1 + 4, shown.describe()
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ"
    rows = [
        rf"{when}\s+bob\s+registry\.pull\s+denied\s+someone/thing:1\s+{COMMUNITY_NOT_ALLOWED}$",
        rf"{when}\s+anonymous\s+registry\.pull\s+denied\s+acme/app:1\s+{SIGN_IN_FIRST[:60]}.*$",
        rf"{when}\s+bob\s+auth\.login\s+denied\s+bob\s+{WRONG_PASSWORD}$",
        rf"{when}\s+bob\s+registry\.pull\s+denied\s+acme/app:1\s+{NOT_A_MEMBER[:60]}.*$",
    ]
    for line, row in zip(lines[1:], rows, strict=True):
        assert re.fullmatch(row, line), f"{line!r} does not read as {row!r}\n{shown.describe()}"


def test_output_writes_the_same_json_lines(scripted: Scripted, tmp_path: Path) -> None:
    target = tmp_path / "exports" / "acme.jsonl"
    target.parent.mkdir()
    printed = scripted.gateway.cli("audit", "--json", "--org", ORG)
    written = scripted.gateway.cli("audit", "--org", ORG, "--output", str(target))
    assert written.stdout == "", written.describe()
    lines = target.read_text().splitlines()
    assert f"wrote {len(lines)} events to {target}" in written.stderr, written.describe()
    assert target.read_text() == printed.stdout
    assert len(lines) == 6 + 3 + 5 + 2 * BLOBS, "six changes, three logins, five pulls, blobs"
