"""The Image Access Management decision: a pure function of who, what and the policies.

Rules (REFERENCE.md section 1, issue 2):

- An organization's namespace is readable only by its members.
- A signed-in user is bound by the policy of every organization they belong to that has
  image access enabled, except organizations where they are an owner; a pull must pass
  all of them. Anonymous pulls are bound by no organization's policy.
- For organization X's policy, an image in X's namespace is an organization image
  (always allowed); everywhere else it is official (``library``), verified publisher,
  sponsored OSS (treated as community) or community. A name another organization
  mirrors from the upstream is judged as the upstream name it is (``judged_name``).
- A repository on X's allowlist passes X's policy whatever its category (Hub's
  repository allowlist); it grants nothing else: another organization's policy still
  applies, and an organization's private namespace stays private.
- An organization's namespace holds its hosted repositories and nothing else, unless its
  owners mirror an upstream namespace of theirs into it: then ``X/app`` that is not
  hosted is the upstream's ``NAME/app``. Everywhere else a name is the upstream's own.
- Who may not read a name in an organization's namespace learns nothing about it: a
  private repository and a name that does not exist are refused alike.
- A token restricted to public repositories (Hub's ``repo:public_read``) reaches only
  names outside organization namespaces and public hosted repositories.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from imagegate.core.categories import Category, PublisherStatus
from imagegate.core.names import RepositoryName
from imagegate.core.permissions import HostedRepository, Permission, Visibility
from imagegate.core.signin import (
    NOT_ENFORCED,
    Refusal,
    SignInRefusal,
    SignInRequirement,
    sign_in_refusal,
    unenforceable_message,
)


@dataclass(frozen=True)
class ImageAccessSettings:
    """One organization's settings; the defaults are what enabling starts from.

    ``allowlist`` holds canonical repository names (``library/nginx``) the policy lets
    through whatever their category. A caller deciding one pull may pass only the
    entries that matter to it (the requested repository, if listed).
    """

    enabled: bool = False
    allow_official: bool = True
    allow_verified_publishers: bool = True
    allow_community: bool = False
    allowlist: frozenset[str] = frozenset()

    def allows(self, category: Category) -> bool:
        if not self.enabled or category is Category.ORGANIZATION:
            return True
        if category is Category.OFFICIAL:
            return self.allow_official
        if category is Category.VERIFIED_PUBLISHER:
            return self.allow_verified_publishers
        return self.allow_community  # community, and sponsored OSS counts as community


@dataclass(frozen=True)
class Membership:
    org: str
    is_owner: bool
    settings: ImageAccessSettings


@dataclass(frozen=True)
class Requester:
    """Who asks: ``username`` is ``None`` for an anonymous client. ``public_only``: signed
    in with an access token that may pull public repositories only (``repo:public_read``)."""

    username: str | None
    memberships: Sequence[Membership] = ()
    public_only: bool = False

    @property
    def is_anonymous(self) -> bool:
        return self.username is None

    @property
    def orgs(self) -> tuple[str, ...]:
        return tuple(m.org for m in self.memberships)

    def membership(self, org: str) -> Membership | None:
        return next((m for m in self.memberships if m.org == org), None)


class Outcome(enum.StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"  # image access policy
    NOT_MEMBER = "not_member"  # an organization's private namespace or repository
    FORBIDDEN = "forbidden"  # a member without the permission the action needs
    UNAUTHENTICATED = "unauthenticated"  # sign in first
    READ_ONLY = "read_only"  # a proxied namespace: nothing can be written there
    PUBLIC_ONLY = "public_only"  # the access token may pull public repositories only
    # Enforce sign-in (registry.json), checked before everything else:
    SIGN_IN_REQUIRED = "sign_in_required"  # anonymous, and sign-in is enforced (401)
    NOT_IN_ALLOWED_ORGS = "not_in_allowed_orgs"  # signed in, in none of the allowed orgs
    SIGN_IN_UNENFORCEABLE = "sign_in_unenforceable"  # invalid registry.json: fail closed


_SIGN_IN_OUTCOMES = {
    Refusal.SIGN_IN_REQUIRED: Outcome.SIGN_IN_REQUIRED,
    Refusal.NOT_ALLOWED_ORG: Outcome.NOT_IN_ALLOWED_ORGS,
    Refusal.UNENFORCEABLE: Outcome.SIGN_IN_UNENFORCEABLE,
}


@dataclass(frozen=True)
class Location:
    """Where a name's content lives: the hosted repository ``name`` (``hosted``), or what
    the cache holds for the upstream repository ``name``."""

    name: RepositoryName
    hosted: bool


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    repository: RepositoryName
    category: Category  # for the requester: organization when it is one of their orgs
    reason: str  # why, for logs and the audit trail
    org: str | None = None  # the organization whose rule decided a refusal
    hosted: HostedRepository | None = None  # set when the repository is stored here
    orgs: tuple[str, ...] = ()  # the requester's organizations, for the audit trail
    # Where an allowed name that is not hosted here is pulled from (``upstream_name``);
    # None for a hosted repository, and for a name in an organization's namespace that
    # the organization does not mirror from the upstream: such a name is unknown.
    upstream: RepositoryName | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOWED

    @property
    def location(self) -> Location | None:
        """Where the allowed name's content lives; None for a refusal, and for a name in
        an organization's namespace that is neither hosted nor mirrored: it holds
        nothing, whatever the cache kept under that name before."""
        if not self.allowed:
            return None
        if self.hosted is not None:
            return Location(self.repository, hosted=True)
        if self.upstream is not None:
            return Location(self.upstream, hosted=False)
        return None

    @property
    def message(self) -> str:
        """The text a registry client shows for a refusal."""
        repo = self.repository.full
        if self.outcome is Outcome.DENIED:
            blocked = f"{repo} blocked for organization {self.org}"
            return f"image access restricted: {blocked}: {self.reason}"
        if self.outcome in (Outcome.NOT_MEMBER, Outcome.FORBIDDEN, Outcome.PUBLIC_ONLY):
            return f"requested access to the resource is denied: {self.reason}"
        if self.outcome is Outcome.UNAUTHENTICATED:
            return f"authentication required: {self.reason}"
        if self.outcome is Outcome.SIGN_IN_UNENFORCEABLE:
            return unenforceable_message()  # the file's problem is for the logs only
        # The sign-in refusals' reasons are the client's text: Docker Desktop's own words
        # for a user outside the allowed organizations.
        return self.reason


def upstream_name(
    repository: RepositoryName, namespace_org: str | None, mirror: str | None
) -> RepositoryName | None:
    """The upstream repository a name that is not hosted here is pulled from.

    Outside organization namespaces, the name itself. In organization X's namespace, the
    same path under the upstream namespace X's owners mirror (``mirror``), or None: that
    X's namespace has a same-named counterpart upstream makes it no image of X's.
    """
    if namespace_org is None:
        return repository
    return None if mirror is None else RepositoryName(mirror, repository.path)


def judged_name(
    repository: RepositoryName,
    namespace_org: str | None,
    hosted: HostedRepository | None,
    mirror: str | None,
) -> RepositoryName:
    """The name whose category every other organization's policy judges: the upstream
    name a mirrored name is pulled from, else the name itself.

    ``B/x`` that organization B mirrors from the upstream's ``M/x`` is ``M/x``'s image
    to everyone but B (whose own image it is): official when ``M`` is ``library``, else
    as ``M``'s publisher badge says. Hub's badge for ``B`` says nothing of what B's
    owners chose to mirror, so it must not let a community image pass as verified.
    """
    if hosted is not None:
        return repository
    return upstream_name(repository, namespace_org, mirror) or repository


def is_public(namespace_org: str | None, hosted: HostedRepository | None) -> bool:
    """Whether a ``repo:public_read`` token may reach the name: an upstream image outside
    every organization's namespace, or a hosted repository made public."""
    if namespace_org is None:
        return True
    return hosted is not None and hosted.visibility is Visibility.PUBLIC


def base_category(repository: RepositoryName, publisher: PublisherStatus) -> Category:
    """The category for anyone who is not a member of the namespace's organization."""
    if repository.is_official:
        return Category.OFFICIAL
    return Category(publisher.value)


def category_for(
    org: str, repository: RepositoryName, judged: RepositoryName, publisher: PublisherStatus
) -> Category:
    """The category of ``repository`` under organization ``org``'s policy: ``org``'s own
    image in its namespace, else that of ``judged`` (``judged_name``), whose
    namespace's publisher status is ``publisher``."""
    if repository.namespace == org:
        return Category.ORGANIZATION
    return base_category(judged, publisher)


def _not_allowed_reason(
    category: Category, repository: RepositoryName, judged: RepositoryName
) -> str:
    if category is Category.SPONSORED_OSS:
        reason = "Sponsored OSS images count as community images, which are not allowed"
    else:
        reason = f"{category.label} are not allowed"
    if judged != repository:  # a member of the mirroring organization learns why
        return f"{repository.full} is mirrored from the upstream's {judged.full}; {reason}"
    return reason


def sign_in_check(requirement: SignInRequirement, requester: Requester) -> SignInRefusal | None:
    """Enforce sign-in's verdict on ``requester``: ``None`` when it lets them through."""
    return sign_in_refusal(requirement, requester.username, {m.org for m in requester.memberships})


def _sign_in_decision(
    requirement: SignInRequirement,
    requester: Requester,
    repository: RepositoryName,
    category: Category,
    namespace_org: str | None,
) -> Decision | None:
    refusal = sign_in_check(requirement, requester)
    if refusal is None:
        return None
    outcome = _SIGN_IN_OUTCOMES[refusal.kind]
    # The namespace's organization, if any: its owners see who was turned away from it.
    return Decision(outcome, repository, category, refusal.reason, namespace_org)


def decide_pull(
    requester: Requester,
    repository: RepositoryName,
    publisher: PublisherStatus,
    namespace_org: str | None,
    hosted: HostedRepository | None = None,
    *,
    sign_in: SignInRequirement = NOT_ENFORCED,
    mirror: str | None = None,
) -> Decision:
    """Decide whether ``requester`` may pull from ``repository``.

    ``namespace_org`` is the local organization that owns the repository's namespace,
    if any; ``publisher`` is the publisher status (community when unknown) of the
    namespace of ``judged_name(repository, namespace_org, hosted, mirror)``;
    ``hosted`` is set when the repository is stored here (pushed by the organization):
    then its visibility and the requester's permission decide who may read it, where the
    rest of an organization's namespace is for its members only. ``mirror`` is the
    upstream namespace the organization mirrors, if any (see ``upstream_name``).
    ``sign_in`` is what registry.json enforces; it is checked first.
    """
    own = requester.membership(namespace_org) if namespace_org is not None else None
    judged = judged_name(repository, namespace_org, hosted, mirror)
    category = Category.ORGANIZATION if own is not None else base_category(judged, publisher)

    refused = _sign_in_decision(sign_in, requester, repository, category, namespace_org)
    if refused is not None:
        return refused
    if namespace_org is not None and own is None and (hosted is None or not hosted.readable):
        return _refuse_outsider(requester, repository, category, namespace_org)
    if namespace_org is not None and hosted is not None and not hosted.readable:
        what = f"{repository.full} is a private repository of organization {namespace_org}"
        reason = f"{what}, and no team of {requester.username} has read permission on it"
        return Decision(Outcome.FORBIDDEN, repository, category, reason, namespace_org)
    if requester.public_only and not is_public(namespace_org, hosted):
        return _refuse_public_only(repository, category, namespace_org, hosted)

    bound = sorted(
        (m for m in requester.memberships if m.settings.enabled and not m.is_owner),
        key=lambda m: m.org,
    )
    allowlisted = []
    for membership in bound:
        org_category = category_for(membership.org, repository, judged, publisher)
        if not membership.settings.allows(org_category):
            if repository.full in membership.settings.allowlist:
                allowlisted.append(membership.org)
                continue
            return Decision(
                Outcome.DENIED,
                repository,
                org_category,
                _not_allowed_reason(org_category, repository, judged),
                membership.org,
                hosted,
            )

    if requester.is_anonymous:
        reason = "anonymous pulls are bound by no organization's policy"
    elif allowlisted:
        reason = f"{repository.full} is on the allowlist of " + ", ".join(allowlisted)
    elif bound:
        reason = f"{category.label} are allowed by " + ", ".join(m.org for m in bound)
    elif any(m.settings.enabled for m in requester.memberships):
        reason = "owners may pull every image"
    else:
        reason = "no image access policy applies"
    upstream = None if hosted is not None else upstream_name(repository, namespace_org, mirror)
    return Decision(Outcome.ALLOWED, repository, category, reason, hosted=hosted, upstream=upstream)


def _refuse_outsider(
    requester: Requester, repository: RepositoryName, category: Category, org: str
) -> Decision:
    """The refusal for whoever may not read a name in ``org``'s namespace: the same
    whether it is a private repository or nothing at all (as Docker Hub answers)."""
    what = f"{repository.full} does not exist or is private to organization {org}"
    if requester.is_anonymous:
        reason = f"{what}; sign in as a member who may read it"
        return Decision(Outcome.UNAUTHENTICATED, repository, category, reason, org)
    reason = f"{what}, and {requester.username} is not a member of {org}"
    return Decision(Outcome.NOT_MEMBER, repository, category, reason, org)


def _refuse_public_only(
    repository: RepositoryName,
    category: Category,
    org: str | None,
    hosted: HostedRepository | None,
) -> Decision:
    where = (
        f"a private repository of organization {org}"
        if hosted is not None
        else f"in the namespace of organization {org}, which is not public"
    )
    reason = (
        f"the access token can pull public repositories only (scope repo:public_read), "
        f"and {repository.full} is {where}; use a token with scope repo:read"
    )
    return Decision(Outcome.PUBLIC_ONLY, repository, category, reason, org)


def decide_write(
    requester: Requester,
    repository: RepositoryName,
    namespace_org: str | None,
    permission: Permission,
    needed: Permission,
    action: str,
    *,
    sign_in: SignInRequirement = NOT_ENFORCED,
) -> Decision:
    """May ``requester`` write to ``repository`` with a permission of at least ``needed``?

    ``action`` names the write for messages: "push to", "delete from". ``sign_in`` is
    what registry.json enforces; it is checked first.

    Only organization namespaces hold repositories of their own; every other namespace
    is proxied from the upstream and read-only.
    """
    written = Category.ORGANIZATION if namespace_org is not None else Category.COMMUNITY
    refused = _sign_in_decision(sign_in, requester, repository, written, namespace_org)
    if refused is not None:
        return refused
    if namespace_org is None:
        return Decision(
            Outcome.READ_ONLY,
            repository,
            Category.COMMUNITY,
            f"cannot {action} {repository.full}: namespace {repository.namespace} is served "
            "from the upstream registry and is read-only; use a namespace of an organization "
            "you belong to",
        )
    category = Category.ORGANIZATION
    if requester.is_anonymous:
        reason = f"sign in to {action.split()[0]} {repository.full}"
        return Decision(Outcome.UNAUTHENTICATED, repository, category, reason, namespace_org)
    if permission >= needed:
        reason = f"{requester.username} has {permission.label} permission"
        return Decision(Outcome.ALLOWED, repository, category, reason)
    if requester.membership(namespace_org) is None:
        reason = (
            f"cannot {action} {repository.full}: {requester.username} is not a member "
            f"of organization {namespace_org}"
        )
        return Decision(Outcome.NOT_MEMBER, repository, category, reason, namespace_org)
    has = "no" if permission is Permission.NONE else f"only {permission.label}"
    reason = (
        f"cannot {action} {repository.full}: {requester.username} has {has} permission "
        f"on it, and this needs {needed.label}; ask an owner of {namespace_org}"
    )
    return Decision(Outcome.FORBIDDEN, repository, category, reason, namespace_org)
