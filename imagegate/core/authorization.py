"""Who may call what on the management API and the console: one rule for both edges.

Every API endpoint and every console route declares a ``Need``: who may call it
(anyone, a signed-in user, a member or an owner of the organization in its path, a
gateway admin) and whether it changes anything. ``credential_verdict`` and
``membership_verdict`` turn the need and the facts about one caller into a ``Verdict``,
checked in one place before the handler; each edge translates a refusal into its own
answer (the API's Hub-shaped JSON, the console's problem page).

A session reaches as far as the credential it was made with (``Reach``):

- a password, or an access token with ``repo:write`` or ``repo:admin``: everything its
  user may do;
- a ``repo:read`` token: everything its user may read, and no change at all (the same
  rule on the API and the console, so a read-only token cannot mint a write token or
  change settings through either);
- a ``repo:public_read`` token: only what is public. The API and the console manage
  organizations, members and tokens, none of which is public, so such a session gets
  what an anonymous caller gets (as on Docker Hub, where a public-read token cannot
  manage an organization); the console does not sign it in at all.

Access tokens are managed (created, reactivated, revoked, relabelled, deleted) only by a
session signed in with a password (``Need.password``), whatever a token's scope, as on
Docker Hub, where a personal access token cannot manage personal access tokens: else a
leaked ``repo:write`` token could mint itself a successor that never expires and so
outlive its own revocation.

The same reach bounds what ``/token`` puts in a registry token (``grantable``): a
``repo:read`` or ``repo:public_read`` token is granted pull only, and a public-read one
only on public repositories (the token endpoint asks which are).

"Write" means changing state the credential guards (settings, members, teams, tokens,
publisher overrides). Signing in and out change only the caller's own session, so they
are declared ``ANYONE`` reads.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

# Docker Hub's personal access token scopes, from the most to the least powerful.
TOKEN_SCOPES = ("repo:admin", "repo:write", "repo:read", "repo:public_read")
WRITE_SCOPES = frozenset({"repo:admin", "repo:write"})
READ_SCOPES = frozenset({"repo:read"})


class Who(enum.StrEnum):
    """Who may call a route. ``MEMBER`` and ``OWNER`` are of the organization in its path;
    ``ADMIN`` is a gateway admin, who need not belong to any organization."""

    ANYONE = "anonymous"
    USER = "user"
    MEMBER = "member"
    OWNER = "owner"
    ADMIN = "admin"


@dataclass(frozen=True)
class Need:
    """What a route declares: who may call it, whether it writes, and whether only a
    session signed in with a password may (``password``: it manages credentials)."""

    who: Who
    write: bool = False
    password: bool = False

    @property
    def in_org(self) -> bool:
        """The caller's membership of the path's organization is needed to decide."""
        return self.who in (Who.MEMBER, Who.OWNER)

    def __str__(self) -> str:
        text = f"{self.who.value}, {'write' if self.write else 'read'}"
        return f"{text}, password" if self.password else text


ANYONE = Need(Who.ANYONE)


def reads(who: Who) -> Need:
    return Need(who, write=False)


def writes(who: Who) -> Need:
    return Need(who, write=True)


def manages_credentials(who: Who) -> Need:
    """A change to the caller's credentials (access tokens): a password session only."""
    return Need(who, write=True, password=True)


class Reach(enum.IntEnum):
    """How far a session's credential reaches, whatever its user may do."""

    PUBLIC = 0  # repo:public_read: only what anonymous callers get
    READ = 1  # repo:read: read what the user may read
    WRITE = 2  # a password, repo:write or repo:admin: everything the user may

    @property
    def label(self) -> str:
        return {Reach.PUBLIC: "public-read", Reach.READ: "read-only", Reach.WRITE: "write"}[self]


# What ``/token`` may put in a registry token. Each registry request is still decided with
# the database's state at that moment, so a grant never outlives a permission change.
REGISTRY_ACTIONS = frozenset({"pull", "push", "delete", "*"})
_PULL_ONLY = frozenset({"pull"})


def grantable(reach: Reach | None) -> frozenset[str]:
    """The registry actions ``/token`` may grant a credential of ``reach`` (``None``: an
    anonymous client). A write credential and an anonymous client get what they ask
    for (every request is decided anyway; nobody anonymous may push), a read-only or a
    public-read token pull only, whatever its user may do."""
    if reach is None or reach is Reach.WRITE:
        return REGISTRY_ACTIONS
    return _PULL_ONLY


def reach_of(scopes: Iterable[str] | None) -> Reach:
    """The reach of a credential: ``None`` is a password, else an access token's scopes
    (the most powerful one counts; a token without a known scope reaches nothing)."""
    if scopes is None:
        return Reach.WRITE
    given = set(scopes)
    if given & WRITE_SCOPES:
        return Reach.WRITE
    if given & READ_SCOPES:
        return Reach.READ
    return Reach.PUBLIC


@dataclass(frozen=True)
class Caller:
    """What the rule needs to know about a signed-in caller, besides membership.

    ``password``: the session was signed in with the user's password, not an access
    token (unknown counts as a token: it fails closed)."""

    username: str
    reach: Reach
    admin: bool
    password: bool = False


class Verdict(enum.StrEnum):
    ALLOWED = "allowed"
    SIGN_IN = "sign_in"  # anonymous, where a user is needed
    PUBLIC_ONLY = "public_only"  # a public-read session, where a user is needed
    TOKEN_SESSION = "token_session"  # an access token's session, where a password is needed
    READ_ONLY = "read_only"  # a read-only session, where a route writes
    NO_ORG = "no_org"  # the organization in the path does not exist
    NOT_MEMBER = "not_member"
    NOT_OWNER = "not_owner"
    NOT_ADMIN = "not_admin"


def credential_verdict(need: Need, caller: Caller | None) -> Verdict:
    """Everything but membership: ``ALLOWED`` here still needs ``membership_verdict``
    when ``need.in_org``."""
    if need.who is Who.ANYONE:
        return Verdict.ALLOWED
    if caller is None:
        return Verdict.SIGN_IN
    if caller.reach is Reach.PUBLIC:
        return Verdict.PUBLIC_ONLY
    if need.password and not caller.password:  # before READ_ONLY: no token scope will do
        return Verdict.TOKEN_SESSION
    if need.write and caller.reach is not Reach.WRITE:
        return Verdict.READ_ONLY
    if need.who is Who.ADMIN and not caller.admin:
        return Verdict.NOT_ADMIN
    return Verdict.ALLOWED


def membership_verdict(need: Need, org_exists: bool, role: str | None) -> Verdict:
    """``role``: the caller's role in the path's organization (``owner``, ``member``),
    ``None`` when they are not in it."""
    if not need.in_org:
        return Verdict.ALLOWED
    if not org_exists:
        return Verdict.NO_ORG
    if role is None:
        return Verdict.NOT_MEMBER
    if need.who is Who.OWNER and role != "owner":
        return Verdict.NOT_OWNER
    return Verdict.ALLOWED


def refusal_message(verdict: Verdict, need: Need, *, username: str = "", org: str = "") -> str:
    """What a refused caller is told (``org``: the organization in the path)."""
    what = "change" if need.write else "read"
    if verdict is Verdict.SIGN_IN:
        return "authentication required: sign in first"
    if verdict is Verdict.NO_ORG:
        return f"organization {org!r} not found"
    if verdict is Verdict.NOT_MEMBER:
        return f"permission denied: {username} is not a member of organization {org}"
    if verdict is Verdict.NOT_OWNER:
        return f"permission denied: only owners of organization {org} can {what} this"
    if verdict is Verdict.NOT_ADMIN:
        return f"permission denied: only gateway admins can {what} this"
    return credential_message(verdict)


def credential_message(verdict: Verdict) -> str:
    """Why a session's credential cannot do this, and what to sign in with instead."""
    if verdict is Verdict.PUBLIC_ONLY:
        return (
            "permission denied: this session was signed in with a public-read access token "
            "(scope repo:public_read), which reaches public repositories only; sign in with "
            "a password or a repo:read or repo:write token"
        )
    if verdict is Verdict.TOKEN_SESSION:
        return (
            "permission denied: this session was signed in with an access token, and an "
            "access token cannot create, change or delete access tokens, whatever its "
            "scope; sign in with your password to manage tokens"
        )
    if verdict is Verdict.READ_ONLY:
        return (
            "permission denied: this session was signed in with a read-only access token "
            "(scope repo:read), which may read but never change anything; sign in with a "
            "password or a repo:write token to change things"
        )
    raise ValueError(f"{verdict} is not about the credential")
