"""Signing in to the API: ``POST /v2/users/login`` and ``POST /v2/auth/token``.

Both return a bearer JWT in Docker Hub's claim layout (``sub, iss, aud, exp, iat, jti``,
``scope``, and a ``https://hub.docker.com`` object with the user), signed HS256 with a
random key kept in the data dir (docker/cli accepts HS/RS/PS, not ES256; the registry's
ES256 key stays for registry tokens). A JWT minted from an access token carries its
scopes: one without ``repo:write`` or ``repo:admin`` may read the API, never change it.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from starlette.requests import Request
from starlette.responses import Response

from imagegate.audit.context import set_actor
from imagegate.audit.events import AuditSink, signed_in_event
from imagegate.auth.keyfiles import load_or_create_secret
from imagegate.http.api.framework import ApiError, Call, Endpoint, Json, json_response
from imagegate.services import Services
from imagegate.services.accounts import SignedIn

KEY_FILE = "api-signing-key"
ALGORITHM = "HS256"
AUDIENCE = "imagegate-api"
ISSUER = "imagegate"
TTL_SECONDS = 1800
HUB_CLAIM = "https://hub.docker.com"
_USER_NAMESPACE = uuid.UUID("6d1d5f3c-5a0b-4a55-9d53-7c2b8f1f0a51")
_MAX_CREDENTIAL = 1024


def user_uuid(name: str) -> uuid.UUID:
    """A stable UUID per user name (names never change), for Hub's ``id`` fields."""
    return uuid.uuid5(_USER_NAMESPACE, f"user:{name}")


def load_key(directory: Path) -> bytes:
    """The HMAC key the API signs its bearer tokens with, made on first use."""
    return load_or_create_secret(directory / KEY_FILE)


@dataclass(frozen=True)
class Caller:
    username: str
    read_only: bool  # signed in with an access token without a write scope


class ApiTokens:
    def __init__(self, key: bytes, ttl_seconds: int = TTL_SECONDS) -> None:
        self._key = key
        self._ttl = ttl_seconds

    def issue(self, user: SignedIn | str, email: str | None, scopes: tuple[str, ...]) -> str:
        now = int(time.time())
        token_uuid = getattr(user, "token_uuid", None)
        source = f"docker_pat|{token_uuid}" if token_uuid else "imagegate_password"
        claims: Json = {
            "sub": str(user_uuid(str(user))),
            "iss": ISSUER,
            "aud": AUDIENCE,
            "exp": now + self._ttl,
            "iat": now,
            "nbf": now - 5,
            "jti": secrets.token_urlsafe(16),
            "scope": " ".join(scopes),
            HUB_CLAIM: {
                "uuid": str(user_uuid(str(user))),
                "email": email or "",
                "username": str(user),
                "source": source,
                "session_id": secrets.token_hex(16),
            },
            "imagegate_read_only": bool(getattr(user, "read_only", False)),
        }
        return jwt.encode(claims, self._key, ALGORITHM)

    def verify(self, token: str) -> Caller:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub"]},
                leeway=5,
            )
            username = claims[HUB_CLAIM]["username"]
        except (jwt.PyJWTError, KeyError, TypeError):
            raise ApiError(401, "the bearer token is invalid or expired; sign in again") from None
        if not isinstance(username, str):
            raise ApiError(401, "the bearer token is invalid; sign in again")
        return Caller(username, bool(claims.get("imagegate_read_only")))

    def caller(self, request: Request) -> Caller:
        """The signed-in user, who is from now on the actor of this request's changes."""
        kind, _, token = request.headers.get("authorization", "").partition(" ")
        if kind.lower() not in ("bearer", "jwt") or not token.strip():
            raise ApiError(401, "authentication required: send Authorization: Bearer <token>")
        caller = self.verify(token.strip())
        set_actor(caller.username)
        return caller


def _credentials_body(name: str, secret: str) -> Json:
    """The schema of a sign-in body: a name and a secret, both required."""
    credential: Json = {"type": "string", "maxLength": _MAX_CREDENTIAL}
    return {
        "type": "object",
        "required": [name, secret],
        "properties": {name: credential, secret: credential},
    }


_LOGIN_BODY = _credentials_body("username", "password")
_TOKEN_BODY = _credentials_body("identifier", "secret")
_DETAIL: Json = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "login_2fa_token": {"type": "string", "nullable": True},
    },
}


class AuthApi:
    def __init__(self, services: Services, tokens: ApiTokens, audit: AuditSink) -> None:
        self._services = services
        self._tokens = tokens
        self._audit = audit

    async def _sign_in(self, request: Request, name: str, secret: str) -> str | None:
        client = request.client.host if request.client else None
        user = await self._services.accounts.authenticate(name, secret, client=client)
        self._audit.record(signed_in_event(name, user, via="api"))
        if user is None:
            return None
        info = await self._services.accounts.get_user(str(user))
        scopes: tuple[str, ...] = ("openid",)
        token_uuid = getattr(user, "token_uuid", None)
        if token_uuid:
            scopes = (await self._services.accounts.get_token(str(user), token_uuid)).scopes
        return self._tokens.issue(user, info.email, scopes)

    async def login(self, call: Call) -> Response:
        token = await self._sign_in(call.request, call.body["username"], call.body["password"])
        if token is None:
            return json_response(
                {"detail": "Incorrect authentication credentials", "login_2fa_token": None}, 401
            )
        return json_response({"token": token})

    async def token(self, call: Call) -> Response:
        token = await self._sign_in(call.request, call.body["identifier"], call.body["secret"])
        if token is None:
            raise ApiError(401, "incorrect identifier or secret")
        return json_response({"access_token": token})

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint(
                "POST",
                "/v2/users/login",
                self.login,
                "Sign in with a username and a password or access token",
                auth="none",
                body=_LOGIN_BODY,
                responses={
                    200: {
                        "type": "object",
                        "required": ["token"],
                        "properties": {"token": {"type": "string"}},
                    },
                    401: _DETAIL,
                },
                tag="auth",
            ),
            Endpoint(
                "POST",
                "/v2/auth/token",
                self.token,
                "Exchange a username and a password or access token for a bearer token",
                auth="none",
                body=_TOKEN_BODY,
                responses={
                    200: {
                        "type": "object",
                        "required": ["access_token"],
                        "properties": {"access_token": {"type": "string"}},
                    },
                },
                tag="auth",
            ),
        ]
