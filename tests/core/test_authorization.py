"""The authorization rule of the API and the console, as a table of needs and callers."""

from __future__ import annotations

import pytest

from imagegate.core.authorization import (
    ANYONE,
    Caller,
    Need,
    Reach,
    Verdict,
    Who,
    credential_verdict,
    grantable,
    manages_credentials,
    membership_verdict,
    reach_of,
    reads,
    refusal_message,
    writes,
)

V = Verdict
USER = Caller("ursula", Reach.WRITE, admin=False, password=True)
WRITER = Caller("ursula", Reach.WRITE, admin=True)  # a repo:write token, even an admin's
READER = Caller("ursula", Reach.READ, admin=False)
PUBLIC = Caller("ursula", Reach.PUBLIC, admin=True)  # even an admin's public-read token
ADMIN = Caller("root", Reach.WRITE, admin=True, password=True)
ADMIN_READER = Caller("root", Reach.READ, admin=True)
TOKENS = manages_credentials(Who.USER)


@pytest.mark.parametrize(
    ("scopes", "reach"),
    [
        (None, Reach.WRITE),  # a password
        (["repo:admin"], Reach.WRITE),
        (["repo:write"], Reach.WRITE),
        (["repo:read", "repo:write"], Reach.WRITE),
        (["repo:read"], Reach.READ),
        (["repo:public_read", "repo:read"], Reach.READ),
        (["repo:public_read"], Reach.PUBLIC),
        ([], Reach.PUBLIC),  # no known scope reaches nothing private
        (["repo:everything"], Reach.PUBLIC),
    ],
)
def test_the_reach_of_a_credential(scopes: list[str] | None, reach: Reach) -> None:
    assert reach_of(scopes) is reach


@pytest.mark.parametrize(
    ("reach", "actions"),
    [
        (None, {"pull", "push", "delete", "*"}),  # anonymous: each request decides
        (Reach.WRITE, {"pull", "push", "delete", "*"}),
        (Reach.READ, {"pull"}),
        (Reach.PUBLIC, {"pull"}),  # and only on public repositories: the endpoint asks
    ],
)
def test_what_a_registry_token_may_grant_a_reach(reach: Reach | None, actions: set[str]) -> None:
    assert grantable(reach) == actions


@pytest.mark.parametrize(
    ("need", "caller", "verdict"),
    [
        (ANYONE, None, V.ALLOWED),
        (ANYONE, PUBLIC, V.ALLOWED),
        (reads(Who.USER), None, V.SIGN_IN),
        (reads(Who.USER), PUBLIC, V.PUBLIC_ONLY),
        (reads(Who.USER), READER, V.ALLOWED),
        (writes(Who.USER), READER, V.READ_ONLY),
        (writes(Who.USER), USER, V.ALLOWED),
        (reads(Who.MEMBER), READER, V.ALLOWED),  # membership is decided next
        (writes(Who.OWNER), READER, V.READ_ONLY),
        (writes(Who.OWNER), PUBLIC, V.PUBLIC_ONLY),
        (writes(Who.OWNER), None, V.SIGN_IN),
        (reads(Who.ADMIN), USER, V.NOT_ADMIN),
        (reads(Who.ADMIN), ADMIN_READER, V.ALLOWED),
        (writes(Who.ADMIN), ADMIN_READER, V.READ_ONLY),
        (writes(Who.ADMIN), ADMIN, V.ALLOWED),
        (reads(Who.ADMIN), PUBLIC, V.PUBLIC_ONLY),
        (writes(Who.ADMIN), WRITER, V.ALLOWED),
        # Access tokens are managed with a password only, whatever the token's scope.
        (TOKENS, USER, V.ALLOWED),
        (TOKENS, WRITER, V.TOKEN_SESSION),
        (TOKENS, READER, V.TOKEN_SESSION),  # not READ_ONLY: no token would do
        (TOKENS, PUBLIC, V.PUBLIC_ONLY),
        (TOKENS, None, V.SIGN_IN),
    ],
)
def test_the_credential_verdict(need: Need, caller: Caller | None, verdict: Verdict) -> None:
    assert credential_verdict(need, caller) is verdict


@pytest.mark.parametrize(
    ("need", "exists", "role", "verdict"),
    [
        (reads(Who.USER), False, None, V.ALLOWED),  # no organization involved
        (reads(Who.MEMBER), False, None, V.NO_ORG),
        (reads(Who.MEMBER), True, None, V.NOT_MEMBER),
        (reads(Who.MEMBER), True, "member", V.ALLOWED),
        (writes(Who.MEMBER), True, "member", V.ALLOWED),
        (reads(Who.OWNER), True, "member", V.NOT_OWNER),
        (writes(Who.OWNER), True, "member", V.NOT_OWNER),
        (writes(Who.OWNER), True, "owner", V.ALLOWED),
        (writes(Who.OWNER), False, None, V.NO_ORG),
    ],
)
def test_the_membership_verdict(
    need: Need, exists: bool, role: str | None, verdict: Verdict
) -> None:
    assert membership_verdict(need, exists, role) is verdict


@pytest.mark.parametrize(
    ("verdict", "need", "words"),
    [
        (V.READ_ONLY, writes(Who.OWNER), "read-only access token (scope repo:read)"),
        (V.PUBLIC_ONLY, reads(Who.USER), "public-read access token (scope repo:public_read)"),
        (V.TOKEN_SESSION, TOKENS, "sign in with your password to manage tokens"),
        (V.NOT_MEMBER, reads(Who.MEMBER), "ursula is not a member of organization acme"),
        (V.NOT_OWNER, writes(Who.OWNER), "only owners of organization acme can change this"),
        (V.NOT_OWNER, reads(Who.OWNER), "only owners of organization acme can read this"),
        (V.NOT_ADMIN, writes(Who.ADMIN), "only gateway admins can change this"),
        (V.NO_ORG, reads(Who.MEMBER), "organization 'acme' not found"),
    ],
)
def test_every_refusal_says_why(verdict: Verdict, need: Need, words: str) -> None:
    assert words in refusal_message(verdict, need, username="ursula", org="acme")


def test_a_need_reads_as_declared() -> None:
    assert str(writes(Who.OWNER)) == "owner, write"
    assert str(TOKENS) == "user, write, password"
    assert str(ANYONE) == "anonymous, read"
    assert reads(Who.MEMBER).in_org and not reads(Who.ADMIN).in_org
