"""Who may call what: members read an organization, owners change it, admins the gateway.

Checks read the database on every request, so a role change applies at once. A caller
signed in with a read-only access token may read but never change anything.
"""

from __future__ import annotations

from imagegate.http.api.auth import Caller
from imagegate.http.api.framework import ApiError
from imagegate.services import NotFound, Services
from imagegate.services.orgs import MemberDetail


async def member_of(services: Services, org: str, caller: Caller) -> MemberDetail:
    """The caller's membership of ``org``: 404 if there is no such org, 403 if they are
    not in it."""
    await services.orgs.get_org(org)  # NotFound -> 404
    try:
        return await services.orgs.get_member(org, caller.username)
    except NotFound:
        raise ApiError(
            403, f"permission denied: {caller.username} is not a member of organization {org}"
        ) from None


def writable(caller: Caller) -> None:
    if caller.read_only:
        raise ApiError(
            403,
            "permission denied: this token was issued from a read-only access token "
            "(scope repo:read); sign in with a password or a repo:write token to change things",
        )


async def owner_of(services: Services, org: str, caller: Caller) -> MemberDetail:
    writable(caller)
    member = await member_of(services, org, caller)
    if member.role != "owner":
        raise ApiError(403, f"permission denied: only owners of organization {org} can change this")
    return member


async def gateway_admin(services: Services, caller: Caller, *, write: bool) -> None:
    if write:
        writable(caller)
    if not (await services.accounts.get_user(caller.username)).is_admin:
        raise ApiError(403, "permission denied: only gateway admins manage publisher overrides")
