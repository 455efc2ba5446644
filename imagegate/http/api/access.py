"""Who may call an endpoint: its declared ``Need``, checked here, once, before the handler.

The caller is the bearer token's session, checked against its credential on every
request (``auth.ApiTokens``); the rule is ``core.authorization``'s, the same the console
applies; membership is read from the database each time, so a role change applies at
once. A handler gets the caller and, for member and owner endpoints, their membership.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from imagegate.core.authorization import (
    Caller,
    Need,
    Verdict,
    Who,
    credential_verdict,
    membership_verdict,
    refusal_message,
)
from imagegate.http.api.auth import ApiTokens
from imagegate.http.api.framework import ApiError, Endpoint
from imagegate.services import NotFound, Services
from imagegate.services.orgs import MemberDetail

# The API's status for each refusal: an organization that does not exist is 404, every
# other "not you" 403 (an outsider learns that the organization exists, as on Hub).
_STATUS = {
    Verdict.SIGN_IN: 401,
    Verdict.NO_ORG: 404,
}


@dataclass(frozen=True)
class Admitted:
    caller: Caller | None
    membership: MemberDetail | None


class EndpointAccess:
    def __init__(self, services: Services, tokens: ApiTokens) -> None:
        self._services = services
        self._tokens = tokens

    async def admit(self, endpoint: Endpoint, request: Request) -> Admitted:
        """Who calls, if the endpoint's need lets them; ``ApiError`` otherwise."""
        need = endpoint.need
        if need.who is Who.ANYONE:
            return Admitted(None, None)
        caller = (await self._tokens.caller(request)).caller
        _refuse(credential_verdict(need, caller), need, caller)
        if not need.in_org:
            return Admitted(caller, None)
        org = str(request.path_params[endpoint.org])
        exists, member = await self._membership(org, caller.username)
        role = member.role if member is not None else None
        _refuse(membership_verdict(need, exists, role), need, caller, org)
        return Admitted(caller, member)

    async def _membership(self, org: str, username: str) -> tuple[bool, MemberDetail | None]:
        """Whether ``org`` exists, and ``username``'s membership of it."""
        try:
            await self._services.orgs.get_org(org)
        except NotFound:
            return False, None
        try:
            return True, await self._services.orgs.get_member(org, username)
        except NotFound:
            return True, None


def _refuse(verdict: Verdict, need: Need, caller: Caller, org: str = "") -> None:
    if verdict is not Verdict.ALLOWED:
        message = refusal_message(verdict, need, username=caller.username, org=org)
        raise ApiError(_STATUS.get(verdict, 403), message)
