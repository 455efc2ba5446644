"""Signing in to the API: ``POST /v2/users/login`` and ``POST /v2/auth/token``.

Both return a bearer JWT in Docker Hub's claim layout (``sub, iss, aud, exp, iat, jti``,
``scope``, and a ``https://hub.docker.com`` object with the user), signed HS256 with a
random key kept in the data dir (docker/cli accepts HS/RS/PS, not ES256; the registry's
ES256 key stays for registry tokens).

The JWT's ``jti`` is the secret of a server-side session (``services.sessions``), and
every request checks that session against the credential it was made with: revoking
the access token, changing the password or enforce sign-in turning the user away locks
the very next request out, long before the JWT's own expiry. What a session may do
(read, write, nothing beyond the public) is its credential's ``Reach``.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
import uuid
from pathlib import Path

import jwt
from starlette.requests import Request
from starlette.responses import Response

from imagegate.audit.context import set_actor
from imagegate.audit.events import AuditSink
from imagegate.auth.keyfiles import load_or_create_secret
from imagegate.core.authorization import ANYONE
from imagegate.http.api.framework import ApiError, Call, Endpoint, Json, json_response
from imagegate.services import Services
from imagegate.services.credentials import MAX_CREDENTIAL_LENGTH
from imagegate.services.sessions import SessionService, SessionUser, SignIn

KEY_FILE = "api-signing-key"
ALGORITHM = "HS256"
AUDIENCE = "imagegate-api"
ISSUER = "imagegate"
TTL_SECONDS = 1800
HUB_CLAIM = "https://hub.docker.com"
_USER_NAMESPACE = uuid.UUID("6d1d5f3c-5a0b-4a55-9d53-7c2b8f1f0a51")
VIA = "api"  # where logins here come from, in the audit trail


def user_uuid(name: str) -> uuid.UUID:
    """A stable UUID per user name (names never change), for Hub's ``id`` fields."""
    return uuid.uuid5(_USER_NAMESPACE, f"user:{name}")


def load_key(directory: Path) -> bytes:
    """The HMAC key the API signs its bearer tokens with, made on first use."""
    return load_or_create_secret(directory / KEY_FILE)


class ApiTokens:
    """Bearer JWTs: each names one server-side session, checked on every request."""

    def __init__(self, key: bytes, sessions: SessionService) -> None:
        self._key = key
        self._sessions = sessions
        self.lifetime = dt.timedelta(seconds=TTL_SECONDS)

    def issue(self, user: SessionUser, secret: str, email: str | None) -> str:
        """The JWT of the session ``secret`` signs in; it expires with the session."""
        now = int(time.time())
        token_uuid = user.token_uuid
        source = f"docker_pat|{token_uuid}" if token_uuid else "imagegate_password"
        claims: Json = {
            "sub": str(user_uuid(user.username)),
            "iss": ISSUER,
            "aud": AUDIENCE,
            "exp": int(user.expires_at.timestamp()),
            "iat": now,
            "nbf": now - 5,
            "jti": secret,
            "scope": " ".join(user.scopes if user.scopes is not None else ("openid",)),
            HUB_CLAIM: {
                "uuid": str(user_uuid(user.username)),
                "email": email or "",
                "username": user.username,
                "source": source,
                "session_id": secrets.token_hex(16),
            },
        }
        return jwt.encode(claims, self._key, ALGORITHM)

    def session_secret(self, token: str) -> str:
        """The session a JWT names, if we signed it and it has not expired."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "jti"]},
                leeway=5,
            )
        except jwt.PyJWTError:
            raise ApiError(401, "the bearer token is invalid or expired; sign in again") from None
        secret = claims["jti"]
        if not isinstance(secret, str):
            raise ApiError(401, "the bearer token is invalid; sign in again")
        return secret

    async def caller(self, request: Request) -> SessionUser:
        """The signed-in user, who is from now on the actor of this request's changes."""
        kind, _, token = request.headers.get("authorization", "").partition(" ")
        if kind.lower() not in ("bearer", "jwt") or not token.strip():
            raise ApiError(401, "authentication required: send Authorization: Bearer <token>")
        checked = await self._sessions.check(self.session_secret(token.strip()))
        if checked.user is None:
            assert checked.ended is not None
            raise ApiError(401, f"{checked.ended.message}; sign in again")
        if checked.refusal is not None:
            raise ApiError(401, checked.refusal.message)
        set_actor(checked.user.username)
        return checked.user


def _credentials_body(name: str, secret: str) -> Json:
    """The schema of a sign-in body: a name and a secret, both required."""
    credential: Json = {"type": "string", "maxLength": MAX_CREDENTIAL_LENGTH}
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

    async def _sign_in(self, request: Request, name: str, secret: str) -> tuple[SignIn, str]:
        """The sign-in, and its JWT when it made a session."""
        client = request.client.host if request.client else None
        signed_in = await self._services.sessions.sign_in(
            name, secret, lifetime=self._tokens.lifetime, client=client
        )
        self._audit.record(signed_in.audit_event(name, via=VIA))
        if signed_in.user is None:
            return signed_in, ""
        info = await self._services.accounts.get_user(signed_in.user.username)
        return signed_in, self._tokens.issue(signed_in.user, signed_in.secret, info.email)

    async def login(self, call: Call) -> Response:
        signed_in, token = await self._sign_in(
            call.request, call.body["username"], call.body["password"]
        )
        if not token:
            detail = "Incorrect authentication credentials"
            if signed_in.refusal is not None:
                detail = signed_in.refusal.message  # Docker's words, as docker login shows
            return json_response({"detail": detail, "login_2fa_token": None}, 401)
        return json_response({"token": token})

    async def token(self, call: Call) -> Response:
        signed_in, token = await self._sign_in(
            call.request, call.body["identifier"], call.body["secret"]
        )
        if not token:
            if signed_in.refusal is not None:
                raise ApiError(401, signed_in.refusal.message)
            raise ApiError(401, "incorrect identifier or secret")
        return json_response({"access_token": token})

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint(
                "POST",
                "/v2/users/login",
                self.login,
                "Sign in with a username and a password or access token",
                need=ANYONE,
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
                need=ANYONE,
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
