"""Enforce sign-in in the pull and write decisions: refused first, public images included."""

from __future__ import annotations

import pytest

from imagegate.core.categories import Category, PublisherStatus
from imagegate.core.names import parse_repository
from imagegate.core.permissions import HostedRepository, Permission, Visibility
from imagegate.core.policy import (
    Decision,
    ImageAccessSettings,
    Membership,
    Outcome,
    Requester,
    decide_pull,
    decide_write,
)
from imagegate.core.signin import (
    NOT_ENFORCED,
    Refusal,
    SignInRequirement,
    sign_in_refusal,
)

DOCKER_TEXT = (
    "You must be a member of the [acme globex] organization. Log in with a different "
    "account, or contact your organization owner to add your account."
)
SIGN_IN_TEXT = (
    "sign-in required: this registry only serves members of the [acme globex] "
    "organization; log in with your account (docker login / podman login)"
)
MISCONFIGURED_TEXT = (
    "sign-in enforcement is misconfigured on this registry (its registry.json is "
    "invalid), so every request is refused; ask your administrator to run "
    "'imagegate enforce-sign-in check'"
)

ALLOWED = SignInRequirement(("acme", "globex"), source="/etc/registry.json")
INVALID = SignInRequirement(problem="the key 'allowedOrgs' is missing", source="/etc/registry.json")
OPEN = ImageAccessSettings()
RESTRICTIVE = ImageAccessSettings(enabled=True, allow_official=False)

ANONYMOUS = Requester(None)
OUTSIDER = Requester("dave", (Membership("initech", False, OPEN),))
LONER = Requester("erin")
MEMBER = Requester("bob", (Membership("acme", False, OPEN),))
GLOBEX_MEMBER = Requester("gina", (Membership("globex", False, OPEN),))
OWNER = Requester("alice", (Membership("acme", True, RESTRICTIVE),))
RESTRICTED_MEMBER = Requester("carol", (Membership("acme", False, RESTRICTIVE),))

PUBLIC_HOSTED = HostedRepository(Visibility.PUBLIC, Permission.NONE)


def pull(
    requester: Requester,
    name: str = "library/alpine",
    sign_in: SignInRequirement = ALLOWED,
    namespace_org: str | None = None,
    hosted: HostedRepository | None = None,
) -> Decision:
    repository = parse_repository(name)
    return decide_pull(
        requester,
        repository,
        PublisherStatus.COMMUNITY,
        namespace_org,
        hosted,
        sign_in=sign_in,
    )


def write(requester: Requester, sign_in: SignInRequirement, permission: Permission) -> Decision:
    repository = parse_repository("acme/app")
    return decide_write(
        requester, repository, "acme", permission, Permission.WRITE, "push to", sign_in=sign_in
    )


# -- anonymous ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "namespace_org", "hosted"),
    [
        ("library/alpine", None, None),  # an official image
        ("someone/tool", None, None),  # community
        ("acme/app", "acme", PUBLIC_HOSTED),  # a public repository hosted here
    ],
)
def test_anonymous_must_sign_in_whatever_the_image(
    name: str, namespace_org: str | None, hosted: HostedRepository | None
) -> None:
    decision = pull(ANONYMOUS, name, namespace_org=namespace_org, hosted=hosted)
    assert decision.outcome is Outcome.SIGN_IN_REQUIRED
    assert decision.message == SIGN_IN_TEXT
    assert not decision.allowed


def test_anonymous_pulls_as_before_when_sign_in_is_not_enforced() -> None:
    decision = pull(ANONYMOUS, sign_in=NOT_ENFORCED)
    assert decision.allowed
    assert decide_pull(
        ANONYMOUS, parse_repository("library/alpine"), PublisherStatus.COMMUNITY, None
    ).allowed  # the default is not enforced


# -- signed in, outside the allowed organizations ----------------------------------------


@pytest.mark.parametrize("requester", [OUTSIDER, LONER], ids=["other-org", "no-org"])
def test_a_user_outside_the_allowed_orgs_gets_dockers_message(requester: Requester) -> None:
    decision = pull(requester)
    assert decision.outcome is Outcome.NOT_IN_ALLOWED_ORGS
    assert decision.message == DOCKER_TEXT


def test_a_public_hosted_repository_is_no_exception() -> None:
    decision = pull(OUTSIDER, "acme/app", namespace_org="acme", hosted=PUBLIC_HOSTED)
    assert decision.outcome is Outcome.NOT_IN_ALLOWED_ORGS


def test_membership_is_matched_case_sensitively() -> None:
    # Docker Desktop matches exactly; an upper-case file is rejected by the parser, and
    # the decision itself never lowercases.
    requirement = SignInRequirement(("Acme",), source="f")
    assert pull(MEMBER, sign_in=requirement).outcome is Outcome.NOT_IN_ALLOWED_ORGS


# -- members: the image access policy as before ------------------------------------------


@pytest.mark.parametrize("requester", [MEMBER, GLOBEX_MEMBER], ids=["acme", "globex"])
def test_a_member_of_any_allowed_org_pulls(requester: Requester) -> None:
    assert pull(requester).allowed


def test_a_member_is_still_bound_by_the_image_access_policy() -> None:
    decision = pull(RESTRICTED_MEMBER)
    assert decision.outcome is Outcome.DENIED
    assert decision.message == (
        "image access restricted: library/alpine blocked for organization acme: "
        "Docker Official Images are not allowed"
    )


def test_an_owner_bypasses_the_policy_as_before() -> None:
    assert pull(OWNER).allowed


# -- an invalid file refuses everybody -----------------------------------------------------


@pytest.mark.parametrize(
    "requester",
    [ANONYMOUS, OUTSIDER, MEMBER, OWNER],
    ids=["anonymous", "outsider", "member", "owner"],
)
def test_an_invalid_file_refuses_everybody(requester: Requester) -> None:
    decision = pull(requester, sign_in=INVALID)
    assert decision.outcome is Outcome.SIGN_IN_UNENFORCEABLE
    assert decision.message == MISCONFIGURED_TEXT
    # The exact problem is kept for the logs, never shown to the client.
    assert decision.reason == "/etc/registry.json: the key 'allowedOrgs' is missing"
    assert "allowedOrgs" not in decision.message


# -- writes ----------------------------------------------------------------------------------


def test_writes_are_refused_first_too() -> None:
    assert write(ANONYMOUS, ALLOWED, Permission.NONE).outcome is Outcome.SIGN_IN_REQUIRED
    assert write(OUTSIDER, ALLOWED, Permission.NONE).message == DOCKER_TEXT
    assert write(OWNER, INVALID, Permission.ADMIN).outcome is Outcome.SIGN_IN_UNENFORCEABLE
    # A member writes under the usual permission rules.
    assert write(OWNER, ALLOWED, Permission.ADMIN).allowed
    assert write(MEMBER, ALLOWED, Permission.READ).outcome is Outcome.FORBIDDEN


def test_a_write_to_a_proxied_namespace_is_refused_for_sign_in_before_read_only() -> None:
    decision = decide_write(
        OUTSIDER,
        parse_repository("library/alpine"),
        None,
        Permission.NONE,
        Permission.WRITE,
        "push to",
        sign_in=ALLOWED,
    )
    assert decision.outcome is Outcome.NOT_IN_ALLOWED_ORGS
    assert decision.category is Category.COMMUNITY


# -- the refusal itself, for requests that name no repository -----------------------------


def test_sign_in_refusal_kinds() -> None:
    assert sign_in_refusal(NOT_ENFORCED, None, ()) is None
    assert sign_in_refusal(ALLOWED, "bob", {"acme"}) is None
    assert sign_in_refusal(ALLOWED, "gina", {"globex", "other"}) is None
    anonymous = sign_in_refusal(ALLOWED, None, ())
    assert anonymous is not None and anonymous.kind is Refusal.SIGN_IN_REQUIRED
    outsider = sign_in_refusal(ALLOWED, "dave", {"initech"})
    assert outsider is not None and outsider.kind is Refusal.NOT_ALLOWED_ORG
    assert outsider.message == DOCKER_TEXT
    broken = sign_in_refusal(INVALID, "bob", {"acme"})
    assert broken is not None and broken.kind is Refusal.UNENFORCEABLE
    assert broken.message == MISCONFIGURED_TEXT


def test_outcomes_of_sign_in_are_named_for_the_audit_trail() -> None:
    assert Outcome.SIGN_IN_REQUIRED.value == "sign_in_required"
    assert Outcome.NOT_IN_ALLOWED_ORGS.value == "not_in_allowed_orgs"
    assert Outcome.SIGN_IN_UNENFORCEABLE.value == "sign_in_unenforceable"


@pytest.mark.parametrize("requester", [ANONYMOUS, OUTSIDER, LONER])
def test_a_refusal_from_an_organizations_namespace_names_it(requester: Requester) -> None:
    # Its owners see, in their audit trail, who was turned away from their images.
    assert pull(requester, "acme/app", namespace_org="acme").org == "acme"
    assert pull(requester, "library/alpine").org is None
    assert pull(requester, "acme/app", INVALID, namespace_org="acme").org == "acme"
