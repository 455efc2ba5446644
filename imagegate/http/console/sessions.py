"""Console cookies: signed, carrying the CSRF token and, once signed in, a session's secret.

A cookie is ``base64url(json) "." base64url(HMAC-SHA256(key, json))``. The key is
random, created once in the keys directory (mode 0600, atomically, like the registry
token's signing key), so cookies survive restarts and every worker of one data dir
accepts them.

Who is signed in is not in the cookie: it holds the secret of a server-side session
(``services.sessions``), checked against its credential on every request, so revoking
the access token, changing the password or signing out ends it on every gateway
process at once, whatever happens to the cookie.

Every visitor gets a cookie, signed in or not: the sign-in form needs a CSRF token too
(otherwise another site could sign a browser in to an account of its choosing). Signing
in issues a new cookie with a new token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from imagegate.auth.keyfiles import load_or_create_secret

KEY_FILE = "console-session-key"
COOKIE_NAME = "imagegate_console"
COOKIE_PATH = "/console"
SESSION_SECONDS = 8 * 3600


def load_or_create_key(directory: Path) -> bytes:
    """The session key in ``directory``, made on first use."""
    return load_or_create_secret(directory / KEY_FILE)


@dataclass(frozen=True)
class Session:
    """The server-side session's secret (``None``: not signed in), the form token, and
    when the cookie ends."""

    secret: str | None
    csrf_token: str
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    """Signs sessions into cookie values and reads them back."""

    def __init__(self, key: bytes, *, lifetime: int = SESSION_SECONDS) -> None:
        self._key = key
        self.lifetime = lifetime

    def new(
        self, secret: str | None, *, now: float | None = None, expires_at: int | None = None
    ) -> Session:
        """A cookie with a new CSRF token, for the session ``secret`` (``None``: anonymous)."""
        if expires_at is None:
            expires_at = int(now if now is not None else time.time()) + self.lifetime
        return Session(secret, secrets.token_urlsafe(32), expires_at)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def encode(self, session: Session) -> str:
        payload = json.dumps(
            {"s": session.secret, "c": session.csrf_token, "e": session.expires_at},
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode(self, value: str, *, now: float | None = None) -> Session | None:
        """The session in a cookie value; ``None`` if forged, malformed or expired."""
        body, dot, mac = value.partition(".")
        if not dot or len(value) > 4096:
            return None
        try:
            payload = _unb64(body)
            given = _unb64(mac)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(given, self._mac(payload)):
            return None
        try:
            data = json.loads(payload)
            secret, csrf, expires = data["s"], data["c"], data["e"]
        except (ValueError, KeyError, TypeError):
            return None
        if not (secret is None or isinstance(secret, str)):
            return None
        if not isinstance(csrf, str) or not isinstance(expires, int):
            return None
        if expires <= (now if now is not None else time.time()):
            return None
        return Session(secret, csrf, expires)


class SessionCookies:
    """Reads the session of a request and writes one onto a response."""

    def __init__(self, codec: SessionCodec, public_url: str) -> None:
        self.codec = codec
        self._always_secure = public_url.startswith("https://")

    def read(self, request: Request) -> Session | None:
        value = request.cookies.get(COOKIE_NAME)
        return self.codec.decode(value) if value else None

    def write(self, request: Request, response: Response, session: Session) -> None:
        response.set_cookie(
            COOKIE_NAME,
            self.codec.encode(session),
            max_age=max(0, session.expires_at - int(time.time())),
            path=COOKIE_PATH,
            secure=self._always_secure or request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )

    def clear(self, request: Request, response: Response) -> None:
        response.delete_cookie(
            COOKIE_NAME,
            path=COOKIE_PATH,
            secure=self._always_secure or request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )
