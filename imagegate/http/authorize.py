"""Authorization of registry requests: the token's scope, then the access decision.

Every repository-scoped request passes through here: the bearer token must grant the
action on the repository (else 401 with the scope to ask for), then the access service
decides with the database's current state (else 401, 403 or 405 with its message). A
push or delete with a token issued for an access token also checks that the access token
still signs in (``TokenLive``): a revoked one stops writing at once, while its pulls
last until the registry token expires (SECURITY.md says why). Each
decision is logged as one structured line and recorded in the audit trail: a refusal at
once, before it is raised; an allowance when the response starts, so the event carries
the digest the response names (a manifest pulled by tag).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.requests import Request

from imagegate.audit.context import current_origin, set_actor
from imagegate.audit.events import ALLOWED, DELETE, DENIED, PULL, PUSH, AuditEvent, AuditSink
from imagegate.core.categories import Category
from imagegate.core.digests import is_digest
from imagegate.core.errors import Denied, RegistryError, Unauthorized, Unsupported
from imagegate.core.names import RepositoryName, parse_repository
from imagegate.core.permissions import Permission
from imagegate.core.policy import Decision, Location, Outcome
from imagegate.http.identity import Identity, RegistryAuthenticator, insufficient_scope
from imagegate.http.middleware import log_with_request, record_with_response

logger = logging.getLogger("imagegate.access")
MAX_REFERENCE_LENGTH = 255


class AccessDecider(Protocol):
    async def decide_pull(
        self, username: str | None, repository: RepositoryName, *, public_only: bool = False
    ) -> Decision:
        """The image access decision for one pull request (``public_only``: the token may
        pull public repositories only)."""
        ...

    async def decide_write(
        self, username: str | None, repository: RepositoryName, needed: Permission, action: str
    ) -> Decision:
        """May ``username`` push to (or delete from) ``repository``?"""
        ...


# Whether the user's access token (by uuid) still signs in: active and not expired.
TokenLive = Callable[[str, str], Awaitable[bool]]
REVOKED = (
    "the access token this registry token was issued for was deactivated, deleted or has "
    "expired; log in again"
)


class Authorizer:
    def __init__(
        self,
        auth: RegistryAuthenticator,
        access: AccessDecider,
        audit: AuditSink,
        *,
        token_live: TokenLive,
    ) -> None:
        self.auth = auth
        self._access = access
        self._audit = audit
        self._token_live = token_live

    async def pull(self, request: Request, raw_name: str, kind: str, ref: str) -> Decision:
        repository = parse_repository(raw_name)
        scope = f"repository:{raw_name}:pull"
        identity = self.auth.identify(request, scope)
        # A token restricted to public repositories (the claim says so, whatever it
        # grants) is decided with that restriction; when /token granted it nothing here,
        # the decision's refusal says why, where a bare 401 would not.
        public_only = identity.claims.public_only
        granted = self.auth.grants(identity, repository, "pull")
        if not granted and not public_only:
            raise insufficient_scope(repository, "pull", scope)
        decision = await self._access.decide_pull(
            identity.username, repository, public_only=public_only
        )
        if decision.allowed and not granted:  # public now, not when the token was issued
            raise insufficient_scope(repository, "pull", scope)
        _log(request, identity, decision, kind, ref)
        self._record(request, _event(request, PULL, identity, decision, kind, ref))
        _raise_refusal(decision, scope)
        return decision

    def holds_push_token(self, request: Request, raw_name: str) -> bool:
        """Whether the request carries a token to push to ``raw_name`` (a pushing client)."""
        try:
            identity = self.auth.identify(request)
        except Unauthorized:
            return False
        return self.auth.grants(identity, parse_repository(raw_name), "push")

    async def mount_source(
        self, request: Request, identity: Identity, raw_name: str, digest: str
    ) -> Location | None:
        """Where the content of ``raw_name`` (the source of a cross-repository mount of
        ``digest``) lives, if ``identity`` may read it: its pull decision's ``location``,
        decided like any pull, logged and recorded. None: refused, or a name that holds
        nothing."""
        repository = parse_repository(raw_name)
        if not self.auth.grants(identity, repository, "pull"):
            return None
        decision = await self._access.decide_pull(
            identity.username, repository, public_only=identity.claims.public_only
        )
        _log(request, identity, decision, "mount", digest)
        self._audit.record(_event(request, PULL, identity, decision, "mount", digest))
        return decision.location

    async def write(
        self,
        request: Request,
        raw_name: str,
        kind: str,
        ref: str,
        needed: Permission,
        *,
        mount_from: str | None = None,
    ) -> tuple[Identity, Decision]:
        """Authorize a push (``needed`` write) or a delete (``needed`` admin).

        ``mount_from``: the source of a cross-repository mount. Its pull scope joins the
        challenge, so a client that asks for what the challenge names gets a token that
        mounts (201) rather than one that only uploads.
        """
        repository = parse_repository(raw_name)
        if needed >= Permission.ADMIN:
            action, token_actions, scope = "delete from", ("delete", "*"), "delete"
        else:
            action, token_actions, scope = "push to", ("push", "*"), "pull,push"
        also = _pull_scope(mount_from) if mount_from else ""
        identity = self.auth.require(request, repository, raw_name, token_actions, scope, also)
        bound = identity.claims.token_uuid
        if bound is not None and not await self._token_live(identity.username or "", bound):
            raise Unauthorized(REVOKED)
        decision = await self._access.decide_write(identity.username, repository, needed, action)
        _log(request, identity, decision, kind, ref)
        verb = DELETE if needed >= Permission.ADMIN else PUSH
        self._record(request, _event(request, verb, identity, decision, kind, ref))
        _raise_refusal(decision, " ".join(filter(None, (f"repository:{raw_name}:{scope}", also))))
        return identity, decision

    def _record(self, request: Request, event: AuditEvent) -> None:
        # Whatever this request changes (a first push creates the repository) is the
        # requester's doing.
        set_actor(event.actor)
        if event.decision == ALLOWED:
            record_with_response(request, event, self._audit)
        else:
            self._audit.record(event)


def _pull_scope(raw_name: str) -> str:
    """``repository:NAME:pull``, or "" for a name that cannot exist (which must never
    reach a header: only a valid name is known to hold no quote or separator)."""
    try:
        parse_repository(raw_name)
    except RegistryError:
        return ""
    return f"repository:{raw_name}:pull"


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
    # A mount also decides a write to its target: each joins the request's line.
    log_with_request(
        request,
        logger,
        f"access {decision.outcome.value}",
        "mount_source" if kind == "mount" else "access",
        {
            "user": identity.display,
            "repository": decision.repository.full,
            "request": kind,
            "reference": ref,
            "category": decision.category.value,
            "decision": "allowed" if decision.allowed else "denied",
            "outcome": decision.outcome.value,
            "org": decision.org,
            "reason": decision.reason,
        },
    )


def _event(
    request: Request, action: str, identity: Identity, decision: Decision, kind: str, ref: str
) -> AuditEvent:
    origin = current_origin()
    repository = decision.repository
    # The organization the event belongs to: the one whose rule refused it, else the
    # one whose namespace it is (a member's organization images, a hosted repository).
    account = decision.org
    if account is None and (decision.category is Category.ORGANIZATION or decision.hosted):
        account = repository.namespace
    ref = ref[:MAX_REFERENCE_LENGTH]  # as the client sent it: keep buffered events small
    data = {"request": kind, "method": request.method}
    if kind == "upload":  # an upload's id is no image reference
        data["upload"], ref = ref, ""
    return AuditEvent(
        action,
        actor=identity.username,
        account=account,
        orgs=decision.orgs,
        name=repository.full,
        repository=repository.full,
        reference=ref or None,
        digest=ref if is_digest(ref) else None,
        category=decision.category.value,
        decision=ALLOWED if decision.allowed else DENIED,
        outcome=decision.outcome.value,
        reason=decision.reason,
        client_ip=origin.client_ip,
        user_agent=origin.user_agent,
        data=data,
    )
