"""The token endpoint: ``GET /token`` (Docker token spec) and ``POST /token`` (OAuth2 form).

A request with credentials and no scope is a login check (``docker login``). Anonymous
clients get tokens too; what they may pull is decided on each registry request, so a
policy change applies before any token expires. Enforce sign-in (``admit``) refuses
credentials of a user outside the allowed organizations, so ``docker login`` fails.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from imagegate.audit.events import INCORRECT_CREDENTIALS, AuditSink, login
from imagegate.auth.tokens import IssuedToken, TokenIssuer
from imagegate.core.authorization import Reach, grantable
from imagegate.core.errors import RegistryError, TooManyRequests, Unauthorized
from imagegate.core.inputs import text_problem
from imagegate.core.names import RepositoryName, parse_repository
from imagegate.core.scopes import Scope, TooManyScopes, parse_scopes
from imagegate.core.signin import SignInRefusal
from imagegate.http.middleware import log_with_request
from imagegate.services.credentials import MAX_CREDENTIAL_LENGTH, SignedIn
from imagegate.services.errors import TooManyAttempts

logger = logging.getLogger("imagegate.auth")


class Authenticate(Protocol):
    async def __call__(
        self, username: str, secret: str, *, client: str | None = None
    ) -> SignedIn | None:
        """Who signed in and with what, or None; ``TooManyAttempts`` when throttled."""
        ...


# Whether a repository is public: what a repo:public_read access token may be granted.
IsPublic = Callable[[RepositoryName], Awaitable[bool]]
# Why enforce sign-in turns a signed-in user away, or None to let them in.
Admit = Callable[[str], Awaitable[SignInRefusal | None]]
VIA = "registry"  # where logins here come from, in the audit trail
SHOWN_NAME_LENGTH = 255  # what is logged of a name that cannot be one (the audit keeps 255)


class TokenEndpoint:
    def __init__(
        self,
        issuer: TokenIssuer,
        authenticate: Authenticate,
        service: str,
        admit: Admit | None = None,
        *,
        audit: AuditSink,
        is_public: IsPublic | None = None,
    ) -> None:
        """``is_public``: without it, a ``repo:public_read`` token is granted nothing."""
        self._issuer = issuer
        self._authenticate = authenticate
        self._service = service
        self._admit = admit
        self._audit = audit
        self._is_public = is_public

    async def get(self, request: Request) -> Response:
        credentials = _basic_credentials(request)
        scopes = parse_scopes(request.query_params.getlist("scope"))
        user = await self._login(request, credentials)
        token = self._issue(user, await self._grant(user, scopes))
        body = {
            "token": token.token,
            "access_token": token.token,
            "expires_in": token.expires_in,
            "issued_at": token.issued_at,
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    async def post(self, request: Request) -> Response:
        form = await _read_form(request)
        if form is None:
            return _oauth_error("invalid_request", "the body must be UTF-8 form data")
        if form.get("grant_type", "") != "password":
            # We issue no refresh tokens; an OAuth2 client then falls back to GET /token.
            return _oauth_error(
                "unsupported_grant_type",
                "only grant_type=password is supported; use GET /token for other flows",
            )
        try:
            scopes = parse_scopes([form.get("scope", "")])
        except TooManyScopes as exc:
            return _oauth_error("invalid_scope", exc.message)
        credentials = (form.get("username", ""), form.get("password", ""))
        user = await self._login(request, credentials)
        token = self._issue(user, await self._grant(user, scopes))
        body = {
            "access_token": token.token,
            "token_type": "Bearer",
            "expires_in": token.expires_in,
            "issued_at": token.issued_at,
            "scope": " ".join(str(s) for s in scopes),
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    async def _login(
        self, request: Request, credentials: tuple[str, str] | None
    ) -> SignedIn | None:
        """Who the credentials sign in (``None``: none were sent), or ``Unauthorized``."""
        if credentials is None:
            request.state.user = "anonymous"
            return None
        name, secret = credentials
        if not _could_sign_in(name) or not _could_sign_in(secret):
            # No account has such a name or secret: a failed login, refused before anything
            # else (the throttle keeps nothing of it). The log and the audit trail get what
            # can be shown: the name's start, without NUL (PostgreSQL takes none).
            shown = name[:SHOWN_NAME_LENGTH].replace("\x00", "\ufffd")
            self._note_login(request, shown, "failure", INCORRECT_CREDENTIALS)
            raise Unauthorized(INCORRECT_CREDENTIALS)
        client = request.client.host if request.client else None
        try:
            user = await self._authenticate(name, secret, client=client)
        except TooManyAttempts as exc:
            raise TooManyRequests(exc.message, detail={"retry_after": exc.retry_after}) from None
        if user is None:
            self._note_login(request, name, "failure", INCORRECT_CREDENTIALS)
            raise Unauthorized(INCORRECT_CREDENTIALS)
        refusal = await self._admit(user) if self._admit is not None else None
        if refusal is not None:
            self._note_login(request, user, refusal.kind.value, refusal.reason)
            raise Unauthorized(refusal.message)
        request.state.user = str(user)
        self._note_login(request, user, "success")
        return user

    def _note_login(self, request: Request, user: str, outcome: str, reason: str = "") -> None:
        """Log a credentialed attempt (on the request's line) and record it in the audit
        trail."""
        message = f"login {outcome}{f': {reason}' if reason else ''}"
        fields = {"user": user, "outcome": outcome, "reason": reason}
        log_with_request(request, logger, message, "login", fields)
        signed_in = outcome == "success"
        self._audit.record(
            login(user, signed_in=signed_in, outcome=outcome, reason=reason, via=VIA)
        )

    async def _grant(self, user: SignedIn | None, scopes: list[Scope]) -> list[Scope]:
        """What the registry token carries, in one pass over the scopes asked for: of
        each repository scope, the actions the credential's reach may be granted
        (``grantable``); for a public-read token only where the repository is public
        (nowhere when that cannot be asked). A name that cannot exist gets nothing."""
        reach = user.reach if user is not None else None
        allowed = grantable(reach)
        granted = []
        for scope in scopes:
            actions = scope.actions & allowed
            if scope.type != "repository" or not actions:
                continue
            try:
                repository = parse_repository(scope.name)
            except RegistryError:
                continue
            if reach is Reach.PUBLIC and not await self._public(repository):
                continue
            granted.append(Scope(scope.type, scope.name, actions))
        return granted

    async def _public(self, repository: RepositoryName) -> bool:
        return self._is_public is not None and await self._is_public(repository)

    def _issue(self, user: SignedIn | None, granted: list[Scope]) -> IssuedToken:
        if user is None:
            return self._issuer.issue("", self._service, granted)
        return self._issuer.issue(
            str(user),
            self._service,
            granted,
            public_only=user.reach is Reach.PUBLIC,
            token_uuid=user.token_uuid,
        )


def _could_sign_in(text: str) -> bool:
    """Whether ``text`` could be a name or secret: not longer than any (Basic credentials
    are bounded only by the 64 KiB header limit) and storable text."""
    return len(text) <= MAX_CREDENTIAL_LENGTH and text_problem(text) is None


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    kind, _, encoded = header.partition(" ")
    if kind.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:  # not base64 (binascii.Error), not ASCII text, or not UTF-8
        raise Unauthorized("malformed Basic credentials") from None
    name, sep, secret = decoded.partition(":")
    if not sep:
        raise Unauthorized("malformed Basic credentials")
    return name, secret


def _oauth_error(error: str, description: str) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=400)


async def _read_form(request: Request) -> dict[str, str] | None:
    """The urlencoded form, or ``None`` if it is not UTF-8 (``http.limits.BodyLimit``
    bounds its size)."""
    body = await request.body()
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return None
    return {key: values[-1] for key, values in parsed.items()}
