"""Authorization of registry requests: the token's scope, then the access decision.

Every repository-scoped request passes through here: the bearer token must grant the
action on the repository (else 401 with the scope to ask for), then the access service
decides with the database's current state (else 401, 403 or 405 with its message). Each
decision is logged as one structured line.
"""

from __future__ import annotations

import logging
from typing import Protocol

from starlette.requests import Request

from imagegate.core.errors import Denied, Unauthorized, Unsupported
from imagegate.core.names import RepositoryName, parse_repository
from imagegate.core.permissions import Permission
from imagegate.core.policy import Decision, Outcome
from imagegate.http.identity import Identity, RegistryAuthenticator

logger = logging.getLogger("imagegate.access")


class AccessDecider(Protocol):
    async def decide_pull(self, username: str | None, repository: RepositoryName) -> Decision:
        """The image access decision for one pull request."""
        ...

    async def decide_write(
        self, username: str | None, repository: RepositoryName, needed: Permission, action: str
    ) -> Decision:
        """May ``username`` push to (or delete from) ``repository``?"""
        ...


class Authorizer:
    def __init__(self, auth: RegistryAuthenticator, access: AccessDecider) -> None:
        self.auth = auth
        self._access = access

    async def pull(self, request: Request, raw_name: str, kind: str, ref: str) -> Decision:
        repository = parse_repository(raw_name)
        identity = self.auth.require(request, repository, raw_name, ("pull",), "pull")
        decision = await self._access.decide_pull(identity.username, repository)
        _log(request, identity, decision, kind, ref)
        _raise_refusal(decision, f"repository:{raw_name}:pull")
        return decision

    def holds_push_token(self, request: Request, raw_name: str) -> bool:
        """Whether the request carries a token to push to ``raw_name`` (a pushing client)."""
        try:
            identity = self.auth.identify(request)
        except Unauthorized:
            return False
        return self.auth.grants(identity, parse_repository(raw_name), "push")

    async def may_pull(self, identity: Identity, raw_name: str) -> bool:
        """Whether ``identity`` may read ``raw_name`` (for a cross-repository mount)."""
        repository = parse_repository(raw_name)
        if not self.auth.grants(identity, repository, "pull"):
            return False
        decision = await self._access.decide_pull(identity.username, repository)
        return decision.allowed

    async def write(
        self, request: Request, raw_name: str, kind: str, ref: str, needed: Permission
    ) -> tuple[Identity, Decision]:
        """Authorize a push (``needed`` write) or a delete (``needed`` admin)."""
        repository = parse_repository(raw_name)
        if needed >= Permission.ADMIN:
            action, token_actions, scope = "delete from", ("delete", "*"), "delete"
        else:
            action, token_actions, scope = "push to", ("push", "*"), "pull,push"
        identity = self.auth.require(request, repository, raw_name, token_actions, scope)
        decision = await self._access.decide_write(identity.username, repository, needed, action)
        _log(request, identity, decision, kind, ref)
        _raise_refusal(decision, f"repository:{raw_name}:{scope}")
        return identity, decision


def _raise_refusal(decision: Decision, scope: str) -> None:
    detail = {"repository": decision.repository.full, "org": decision.org}
    if decision.outcome is Outcome.ALLOWED:
        return
    if decision.outcome in (Outcome.UNAUTHENTICATED, Outcome.SIGN_IN_REQUIRED):
        raise Unauthorized(decision.message, scope=scope)
    if decision.outcome is Outcome.READ_ONLY:
        raise Unsupported(decision.message, detail=detail)
    raise Denied(decision.message, detail=detail)


def _log(request: Request, identity: Identity, decision: Decision, kind: str, ref: str) -> None:
    logger.info(
        "access %s",
        decision.outcome.value,
        extra={
            "event": "access",
            "user": identity.display,
            "repository": decision.repository.full,
            "request": kind,
            "reference": ref,
            "category": decision.category.value,
            "decision": "allowed" if decision.allowed else "denied",
            "outcome": decision.outcome.value,
            "org": decision.org,
            "reason": decision.reason,
            "client": request.client.host if request.client else None,
        },
    )
