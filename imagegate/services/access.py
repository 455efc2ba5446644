"""Image Access Management settings (and the upstream namespace an organization mirrors),
and the decisions for a pull, a push or a delete.

``decide_pull`` and ``decide_write`` gather what the pure ``core.policy`` functions need,
in one snapshot, remembered per process until anything changes (``CurrentCache``
checks the generation on every call, so a change made by the CLI, the API or another
worker applies to the very next request); the decision itself runs on every call. The
facts are the requester's memberships with each organization's
settings, the organization owning the repository's namespace with the repository's
visibility when it is hosted here and the upstream namespace it mirrors, and the grants
of the requester's teams on it. Only
when some policy actually binds the requester is a publisher status looked up as well:
that of the namespace the content comes from (``core.policy.judged_name``: the
upstream's for a name its organization mirrors).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import and_, bindparam, or_, select

from imagegate.auth.cache import digest_key
from imagegate.core.categories import PublisherStatus
from imagegate.core.names import RepositoryName, validate_upstream_namespace
from imagegate.core.permissions import (
    HostedRepository,
    Permission,
    Visibility,
    effective_permission,
)
from imagegate.core.policy import (
    Decision,
    ImageAccessSettings,
    Membership,
    Requester,
    judged_name,
    sign_in_check,
)
from imagegate.core.policy import decide_pull as decide
from imagegate.core.policy import decide_write as decide_writing
from imagegate.core.policy import is_public as public_repository
from imagegate.core.signin import NOT_ENFORCED
from imagegate.db import Database
from imagegate.db.models import (
    AllowlistEntry,
    Organization,
    Repository,
    Team,
    TeamMember,
    TeamPermission,
    User,
)
from imagegate.services.common import Clock, utcnow
from imagegate.services.current_cache import CurrentCache
from imagegate.services.errors import InvalidInput, NotFound
from imagegate.services.org_settings import change_settings
from imagegate.services.orgs import OWNERS_TEAM
from imagegate.services.publishers import PublisherService
from imagegate.services.signin import SignInService

# ImageAccessSettings field -> organizations column, in the dataclass's field order.
_COLUMNS = {
    "enabled": Organization.image_access_enabled,
    "allow_official": Organization.allow_official,
    "allow_verified_publishers": Organization.allow_verified_publishers,
    "allow_community": Organization.allow_community,
}


# The facts of a decision, by requester and repository: a few hundred bytes each.
FACTS_BUDGET_BYTES = 16 * 1024 * 1024
# A bound on anything that changes them without going through the services.
FACTS_TTL_SECONDS = 600.0
_FACTS_BYTES = 1024  # one entry besides its memberships and names
_MEMBERSHIP_BYTES = 512

Facts = tuple[Requester, str | None, Visibility | None, Permission, str | None]
"""The requester, the namespace's organization, the repository's visibility (``None``:
not hosted), the requester's permission on it and the upstream namespace the
organization mirrors."""

# Built once: the database compiles each once and reuses it on every decision.
_MEMBERSHIPS = (
    select(Organization.name, Team.name.label("team"), *_COLUMNS.values())
    .select_from(TeamMember)
    .join(User, TeamMember.user_id == User.id)
    .join(Team, TeamMember.team_id == Team.id)
    .join(Organization, Team.org_id == Organization.id)
    .where(User.name == bindparam("username"))
    .order_by(Organization.name)
)
_NAMESPACE_ORG = select(Organization.name).where(Organization.name == bindparam("namespace"))
# The namespace's organization, with the repository's visibility when it is hosted and
# the upstream namespace the organization mirrors, if any.
_NAMESPACE_REPOSITORY = (
    select(Organization.name, Repository.visibility, Organization.upstream_namespace)
    .outerjoin(
        Repository,
        and_(Repository.org_id == Organization.id, Repository.name == bindparam("path")),
    )
    .where(Organization.name == bindparam("namespace"))
)
# The requester's organizations that allowlist the repository (its canonical full name).
_ALLOWLISTED = (
    select(Organization.name)
    .select_from(AllowlistEntry)
    .join(Organization, AllowlistEntry.org_id == Organization.id)
    .where(
        AllowlistEntry.repository == bindparam("repository"),
        Organization.id.in_(
            select(Team.org_id)
            .join(TeamMember, TeamMember.team_id == Team.id)
            .join(User, TeamMember.user_id == User.id)
            .where(User.name == bindparam("username"))
        ),
    )
)
# What the requester's teams were given on the repository or its whole namespace.
_GRANTS = (
    select(TeamPermission.permission)
    .join(Team, TeamPermission.team_id == Team.id)
    .join(TeamMember, TeamMember.team_id == Team.id)
    .join(User, TeamMember.user_id == User.id)
    .join(Organization, Team.org_id == Organization.id)
    .where(
        User.name == bindparam("username"),
        Organization.name == bindparam("namespace"),
        or_(TeamPermission.repository == bindparam("path"), TeamPermission.repository.is_(None)),
    )
)


def settings_document(settings: ImageAccessSettings) -> dict[str, Any]:
    """Docker Hub's JSON for ``/v2/orgs/{org}/settings``: ``restricted_images`` is Hub's
    object; ``allow_community_images`` is imagegate's (Hub has no community toggle
    there). The API answers with it; ``image-access show --json`` prints it."""
    return {
        "restricted_images": {
            "enabled": settings.enabled,
            "allow_official_images": settings.allow_official,
            "allow_verified_publishers": settings.allow_verified_publishers,
        },
        "allow_community_images": settings.allow_community,
    }


def _settings(row: Sequence[Any]) -> ImageAccessSettings:
    enabled, official, verified, community = (bool(value) for value in row)
    return ImageAccessSettings(enabled, official, verified, community)


def _requester(
    username: str,
    rows: Iterable[Sequence[Any]],
    allowlisted: Iterable[Sequence[Any]] = (),
    repository: str = "",
) -> Requester:
    """The requester from ``_MEMBERSHIPS`` rows: one per (organization, team).

    ``allowlisted`` rows (``_ALLOWLISTED``) name the organizations whose allowlist holds
    ``repository``; their settings carry that one entry, all the decision needs.
    """
    listing = {str(row[0]) for row in allowlisted}
    memberships: dict[str, Membership] = {}
    for org, team, *columns in rows:
        known = memberships.get(org)
        is_owner = team == OWNERS_TEAM or (known is not None and known.is_owner)
        settings = _settings(columns)
        if org in listing:
            settings = replace(settings, allowlist=frozenset({repository}))
        memberships[org] = Membership(org, is_owner, settings)
    return Requester(username, tuple(memberships.values()))


def _namespace_org(rows: Sequence[Sequence[Any]]) -> str | None:
    return str(rows[0][0]) if rows else None


def needs_publisher_status(
    requester: Requester,
    repository: RepositoryName,
    namespace_org: str | None,
    hosted: HostedRepository | None = None,
    judged: RepositoryName | None = None,
) -> bool:
    """Whether the decision can depend on the publisher status of ``judged``'s namespace
    (``judged_name``; default ``repository``).

    It cannot for ``library`` (official by name), for an organization's namespace the
    requester is not a member of (refused anyway, unless it is a hosted repository they
    may read: a public one is a community or verified publisher image to them), nor when
    no enabled policy binds the requester outside that organization. Skipping the lookup
    keeps unrestricted pulls from ever waiting on Docker Hub.
    """
    if (judged or repository).is_official:
        return False
    outsider = namespace_org is not None and requester.membership(namespace_org) is None
    if outsider and (hosted is None or not hosted.readable):
        return False
    return any(
        m.settings.enabled and not m.is_owner and m.org != repository.namespace
        for m in requester.memberships
    )


class AccessService:
    def __init__(
        self,
        db: Database,
        publishers: PublisherService,
        *,
        signin: SignInService | None = None,
        clock: Clock = utcnow,
    ) -> None:
        """``signin``: enforce sign-in (registry.json); not enforced when omitted."""
        self._db = db
        self._publishers = publishers
        self.signin = signin or SignInService(db, None)
        self._clock = clock
        self._facts_read: CurrentCache[Facts] = CurrentCache(
            db.signal, FACTS_BUDGET_BYTES, FACTS_TTL_SECONDS
        )

    async def get_settings(self, org: str) -> ImageAccessSettings:
        async with self._db.read() as conn:
            row = (
                await conn.execute(select(*_COLUMNS.values()).where(Organization.name == org))
            ).first()
        if row is None:
            raise NotFound(f"organization {org!r} does not exist")
        return _settings(row)

    async def set_settings(
        self,
        org: str,
        *,
        enabled: bool | None = None,
        allow_official: bool | None = None,
        allow_verified_publishers: bool | None = None,
        allow_community: bool | None = None,
    ) -> ImageAccessSettings:
        """Change only the given settings, and record the change; returns the settings now
        in force.

        Two owners changing different toggles at the same moment both get their change
        (``org_settings.change_settings``).
        """
        given = {
            "enabled": enabled,
            "allow_official": allow_official,
            "allow_verified_publishers": allow_verified_publishers,
            "allow_community": allow_community,
        }
        changes = {name: value for name, value in given.items() if value is not None}
        if not changes:
            return await self.get_settings(org)
        async with self._db.write() as conn:
            after = await change_settings(
                conn, org, _COLUMNS, changes, action="org.settings.update", now=self._clock()
            )
        return _settings([after[name] for name in _COLUMNS])

    async def upstream_namespace(self, org: str) -> str | None:
        """The upstream namespace ``org`` mirrors into its own, if any."""
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(Organization.upstream_namespace).where(Organization.name == org)
                )
            ).first()
        if row is None:
            raise NotFound(f"organization {org!r} does not exist")
        return row[0]

    async def set_upstream_namespace(self, org: str, namespace: str | None) -> str | None:
        """Mirror the upstream ``namespace`` into ``org``'s (``None``: stop), and record the
        change; returns what is now in force.

        Until set, a name in ``org``'s namespace that is not hosted here is unknown; once
        set, ``org/x`` is pulled from the upstream's ``namespace/x``, as ``org``'s own image.
        """
        if namespace is not None:
            try:
                validate_upstream_namespace(namespace)
            except ValueError as exc:
                raise InvalidInput(str(exc)) from None
        async with self._db.write() as conn:
            await change_settings(
                conn,
                org,
                {"upstream_namespace": Organization.upstream_namespace},
                {"upstream_namespace": namespace},
                action="org.upstream_namespace.update",
                now=self._clock(),
            )
        return namespace

    async def requester(self, username: str | None) -> Requester:
        """Who asks, with every organization they belong to and its settings now."""
        if username is None:
            return Requester(None)
        [rows] = await self._db.snapshot((_MEMBERSHIPS, {"username": username}))
        return _requester(username, rows)

    async def namespace_org(self, namespace: str) -> str | None:
        """The local organization whose namespace this is, if any."""
        [rows] = await self._db.snapshot((_NAMESPACE_ORG, {"namespace": namespace}))
        return _namespace_org(rows)

    async def decide_pull(
        self,
        username: str | None,
        repository: RepositoryName,
        *,
        public_only: bool = False,
        only_org: str | None = None,
    ) -> Decision:
        """May ``username`` (``None``: anonymous) pull from ``repository``?

        Everything is as current as the database, read in one snapshot; a hosted repository's
        visibility and the requester's permission on it decide who may read it.
        Enforce sign-in is checked against the memberships in that same snapshot.
        ``public_only``: the request carries a ``repo:public_read`` token.

        ``only_org`` asks what organization ``only_org``'s own rules say (the console's
        "try a pull", shown to that organization): its membership and policy alone,
        never another organization's membership, settings or namespace, nor the
        gateway-wide sign-in rule.
        """
        sign_in = NOT_ENFORCED if only_org is not None else await self.signin.requirement()
        facts = await self._facts(username, repository, allowlist=True)
        requester, namespace_org, visibility, permission, mirror = facts
        if only_org is not None:
            requester = replace(
                requester, memberships=[m for m in requester.memberships if m.org == only_org]
            )
            if namespace_org not in (None, only_org):
                # Another organization's namespace: who may read it is not ours to tell.
                namespace_org, visibility, mirror = None, None, None
        if public_only:
            requester = replace(requester, public_only=True)
        hosted = None
        if namespace_org is not None and visibility is not None:
            hosted = HostedRepository(visibility, permission)
        publisher = PublisherStatus.COMMUNITY  # not consulted unless a policy binds
        judged = judged_name(repository, namespace_org, hosted, mirror)
        if sign_in_check(sign_in, requester) is None and needs_publisher_status(
            requester, repository, namespace_org, hosted, judged
        ):
            # Content stored here is not Hub's: its namespace's badge on Docker Hub (which may
            # be anyone's) says nothing about it; only an admin's override does.
            publisher = await self._publishers.status(judged.namespace, ask_hub=hosted is None)
        decision = decide(
            requester, repository, publisher, namespace_org, hosted, sign_in=sign_in, mirror=mirror
        )
        return replace(decision, orgs=requester.orgs)

    async def is_public(self, repository: RepositoryName) -> bool:
        """Whether a ``repo:public_read`` token may be granted a pull of ``repository``."""
        _, namespace_org, visibility, _, _ = await self._facts(None, repository)
        hosted = None if visibility is None else HostedRepository(visibility, Permission.NONE)
        return public_repository(namespace_org, hosted)

    async def decide_write(
        self, username: str | None, repository: RepositoryName, needed: Permission, action: str
    ) -> Decision:
        """May ``username`` write to ``repository`` with at least ``needed`` permission?

        ``action`` names the write in messages: "push to", "delete from". Only
        organization namespaces can be written; everything else is proxied, read-only.
        """
        sign_in = await self.signin.requirement()
        requester, namespace_org, _, permission, _ = await self._facts(username, repository)
        decision = decide_writing(
            requester, repository, namespace_org, permission, needed, action, sign_in=sign_in
        )
        return replace(decision, orgs=requester.orgs)

    async def _facts(
        self, username: str | None, repository: RepositoryName, *, allowlist: bool = False
    ) -> Facts:
        """``Facts`` as of the last change; with ``allowlist``, the requester's
        organizations' allowlist entries for the repository too."""
        key = digest_key(username or "", repository.full, "allowlist" if allowlist else "")
        size = _FACTS_BYTES + 2 * (len(username or "") + len(repository.full))

        def cost(facts: Facts) -> int:
            return size + _MEMBERSHIP_BYTES * len(facts[0].memberships)

        return await self._facts_read.get(
            key, lambda: self._read_facts(username, repository, allowlist), cost
        )

    async def _read_facts(
        self, username: str | None, repository: RepositoryName, allowlist: bool
    ) -> Facts:
        """``_facts`` from the database, in one snapshot."""
        where = {"namespace": repository.namespace, "path": repository.path}
        if username is None:
            [repository_rows] = await self._db.snapshot((_NAMESPACE_REPOSITORY, where))
            namespace_org, visibility, mirror = _namespace_repository(repository_rows)
            return Requester(None), namespace_org, visibility, Permission.NONE, mirror
        who = {"username": username, **where}
        queries = [
            (_MEMBERSHIPS, {"username": username}),
            (_NAMESPACE_REPOSITORY, where),
            (_GRANTS, who),
        ]
        if allowlist:
            listed = {"username": username, "repository": repository.full}
            queries.append((_ALLOWLISTED, listed))
        member_rows, repository_rows, grant_rows, *allowlisted = await self._db.snapshot(*queries)
        requester = _requester(
            username, member_rows, allowlisted[0] if allowlisted else (), repository.full
        )
        namespace_org, visibility, mirror = _namespace_repository(repository_rows)
        membership = requester.membership(namespace_org) if namespace_org is not None else None
        permission = Permission.NONE
        if membership is not None:  # only members are in the organization's teams
            grants = (Permission.parse(row[0]) for row in grant_rows)
            permission = effective_permission(membership.is_owner, grants)
        return requester, namespace_org, visibility, permission, mirror


def _namespace_repository(
    rows: Sequence[Sequence[Any]],
) -> tuple[str | None, Visibility | None, str | None]:
    """(organization, visibility when hosted, mirrored upstream namespace) of a name."""
    if not rows:
        return None, None, None
    org, visibility, mirror = rows[0]
    return str(org), None if visibility is None else Visibility(visibility), mirror
