"""Answering the upstream's authentication challenges.

Docker Hub (and a distribution registry with ``auth.token``) answers ``401`` with
``WWW-Authenticate: Bearer realm=...,service=...,scope=...``: we fetch a token from the
realm for that service and scope (with the configured account as Basic auth, if any),
cache it per scope until shortly before it expires, and retry once. A registry with
``auth.htpasswd`` asks for ``Basic``: then we send the configured account with every
request from then on.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from imagegate.core.errors import UpstreamError
from imagegate.core.inputs import load_json
from imagegate.upstream.errors import UpstreamUnreachable, upstream_message

logger = logging.getLogger("imagegate.upstream.auth")

_PARAM_RE = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')
_QUOTED_PAIR_RE = re.compile(r"\\(.)")  # RFC 9110: a backslash stands for the next character
MAX_CACHED_TOKENS = 1024
DEFAULT_EXPIRES_IN = 60  # the token spec's default when the server says nothing


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lowercase: "bearer" or "basic"
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """``Bearer realm="r",service="s",scope="a:b:pull,push"`` -> a Challenge."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {
        match.group(1).lower(): (
            _QUOTED_PAIR_RE.sub(r"\1", match.group(2))
            if match.group(2) is not None
            else match.group(3)
        )
        for match in _PARAM_RE.finditer(rest)
    }
    return Challenge(scheme.lower(), params)


def basic_authorization(credentials: tuple[str, str]) -> str:
    user, password = credentials
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class UpstreamAuth:
    """The ``Authorization`` to send upstream for a scope, and how to earn a new one."""

    def __init__(
        self,
        upstream: str,
        credentials: tuple[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._upstream = upstream
        self._credentials = credentials
        self._clock = clock
        self._uses_basic = False
        self._tokens: dict[str, tuple[str, float]] = {}  # scope -> (authorization, expires)
        self._locks: dict[str, asyncio.Lock] = {}

    def authorization(self, scope: str | None) -> str | None:
        """What to send before any challenge: a cached token, or Basic once it was asked."""
        if self._uses_basic and self._credentials is not None:
            return basic_authorization(self._credentials)
        cached = self._tokens.get(scope or "")
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        return None

    async def answer(
        self,
        session: aiohttp.ClientSession,
        header: str | None,
        scope: str | None,
        refused: str | None = None,
    ) -> str | None:
        """The ``Authorization`` to retry with after a 401, or None if we have no answer.

        ``refused`` is what the 401 answered: a cached token the upstream no longer takes is
        replaced, not sent again.
        """
        challenge = parse_challenge(header or "")
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            self._uses_basic = True
            return None if self._credentials is None else basic_authorization(self._credentials)
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            return None
        key = scope or ""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # concurrent requests for one scope fetch one token
            cached = self._tokens.get(key)
            if cached is not None and cached[1] > self._clock() and cached[0] != refused:
                return cached[0]  # another request fetched it while we waited
            token, expires_in = await self._fetch_token(session, challenge, scope)
            authorization = f"Bearer {token}"
            self._remember(key, authorization, expires_in)
            return authorization

    def _remember(self, key: str, authorization: str, expires_in: int) -> None:
        now = self._clock()
        if len(self._tokens) >= MAX_CACHED_TOKENS:
            self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
        margin = min(30.0, expires_in / 4)
        self._tokens[key] = (authorization, now + expires_in - margin)

    async def _fetch_token(
        self, session: aiohttp.ClientSession, challenge: Challenge, scope: str | None
    ) -> tuple[str, int]:
        realm = challenge.params["realm"]
        query = {"service": challenge.params.get("service", "")}
        wanted = challenge.params.get("scope") or scope
        if wanted:
            query["scope"] = wanted
        query = {name: value for name, value in query.items() if value}
        headers = (
            {"Authorization": basic_authorization(self._credentials)} if self._credentials else {}
        )
        logger.debug(
            "upstream token request",
            extra={"upstream": self._upstream, "realm": realm, "scope": wanted},
        )
        try:
            # Redirects are not followed: the credentials are for the realm only.
            async with session.get(
                realm, params=query, headers=headers, allow_redirects=False
            ) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise UpstreamUnreachable(
                f"upstream token service {realm} is unreachable: {exc or type(exc).__name__}",
                {"upstream": self._upstream},
            ) from exc
        if status != 200:
            _, message = upstream_message(body)
            who = (
                f"the configured account {self._credentials[0]!r}"
                if self._credentials
                else "an anonymous client"
            )
            raise UpstreamError(
                f"upstream token service {realm} refused {who} (HTTP {status})"
                + (f": {message}" if message else ""),
                {"upstream": self._upstream, "status": status},
            )
        return _token_from(realm, body)


def _token_from(realm: str, body: bytes) -> tuple[str, int]:
    try:
        parsed: Any = load_json(body)
        token = parsed.get("token") or parsed.get("access_token")
        expires_in = int(parsed.get("expires_in") or DEFAULT_EXPIRES_IN)
    except (ValueError, AttributeError, TypeError) as exc:
        raise UpstreamError(f"upstream token service {realm} sent an unreadable answer") from exc
    if not isinstance(token, str) or not token:
        raise UpstreamError(f"upstream token service {realm} sent no token")
    return token, max(expires_in, 1)
