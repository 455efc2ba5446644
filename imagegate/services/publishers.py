"""Publisher status of a namespace: verified publisher, sponsored OSS or community.

An admin's override (stored, so it applies to the next request of every process) wins;
each process remembers the overrides it read until the next change (``CurrentCache``).
Otherwise Docker Hub is asked through its undocumented ``GET /v2/orgs/{namespace}/``,
whose ``badge`` is ``verified_publisher``, ``open_source`` or empty. Because that API is
undocumented and remote, answers are cached in memory (an hour; a failure for a minute,
so Hub is not hammered while it is down), concurrent lookups of one namespace share one
request, and anything unknown counts as community: the policy fails closed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import delete, select

from imagegate.auth.cache import digest_key
from imagegate.core.categories import PublisherStatus
from imagegate.core.errors import NameInvalid
from imagegate.core.names import OFFICIAL_NAMESPACE, parse_repository
from imagegate.db import Database
from imagegate.db.models import PublisherOverride
from imagegate.db.statements import insert_or_replace
from imagegate.services.audit_changes import record
from imagegate.services.common import Clock, utcnow
from imagegate.services.current_cache import CurrentCache
from imagegate.services.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

_BADGES = {
    "verified_publisher": PublisherStatus.VERIFIED_PUBLISHER,
    "open_source": PublisherStatus.SPONSORED_OSS,
}
_MAX_CACHED_NAMESPACES = 10_000
# Overrides read, by namespace (a namespace is at most 255 characters).
_OVERRIDES_BUDGET_BYTES = 2 * 1024 * 1024
_OVERRIDES_TTL_SECONDS = 600.0
_OVERRIDE_BYTES = 256


@dataclass(frozen=True)
class PublisherOverrideInfo:
    namespace: str
    status: PublisherStatus
    updated_at: dt.datetime


@dataclass(frozen=True)
class _Cached:
    status: PublisherStatus
    expires_at: float


def check_namespace(namespace: str) -> str:
    """A namespace is one repository-name component; ``library`` needs no override."""
    if namespace == OFFICIAL_NAMESPACE:
        raise InvalidInput(
            f"{OFFICIAL_NAMESPACE!r} holds the Docker Official Images; "
            "its status is fixed and cannot be overridden"
        )
    try:
        valid = "/" not in namespace and parse_repository(f"{namespace}/x").namespace == namespace
    except NameInvalid:
        valid = False
    if not valid:
        raise InvalidInput(
            f"invalid namespace {namespace!r}: use lowercase letters, digits and "
            "separators ('.', '_', '__', '-'), as in the first part of a repository name"
        )
    return namespace


def badge_status(body: Any) -> PublisherStatus:
    """Map Hub's answer to a status; anything unexpected is community."""
    badge = body.get("badge") if isinstance(body, dict) else None
    if not isinstance(badge, str):
        return PublisherStatus.COMMUNITY
    return _BADGES.get(badge, PublisherStatus.COMMUNITY)


class PublisherService:
    """Overrides in the database, Hub's badges in a per-process cache."""

    def __init__(
        self,
        db: Database,
        hub_api_url: str,
        timeout: float = 3.0,
        *,
        answer_ttl: float = 3600.0,
        failure_ttl: float = 60.0,
        clock: Clock = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._hub_api_url = hub_api_url.rstrip("/")
        self._timeout = timeout
        self._answer_ttl = answer_ttl
        self._failure_ttl = failure_ttl
        self._clock = clock
        self._monotonic = monotonic
        self._session: aiohttp.ClientSession | None = None
        self._cache: dict[str, _Cached] = {}
        self._overrides: CurrentCache[str | None] = CurrentCache(
            db.signal, _OVERRIDES_BUDGET_BYTES, _OVERRIDES_TTL_SECONDS
        )
        self._inflight: dict[str, asyncio.Task[PublisherStatus]] = {}

    async def set_override(self, namespace: str, status: PublisherStatus) -> None:
        check_namespace(namespace)
        values = {"namespace": namespace, "status": status.value, "updated_at": self._clock()}
        async with self._db.write() as conn:
            old = await conn.scalar(
                select(PublisherOverride.status)
                .where(PublisherOverride.namespace == namespace)
                .with_for_update()
            )
            await conn.execute(
                insert_or_replace(conn, PublisherOverride, values, [PublisherOverride.namespace])
            )
            if old != status.value:
                await record(
                    conn,
                    "publisher.override.set",
                    account=None,
                    name=namespace,
                    before=None if old is None else {"status": old},
                    after={"status": status.value},
                )

    async def remove_override(self, namespace: str) -> None:
        async with self._db.write() as conn:
            removed = await conn.execute(
                delete(PublisherOverride)
                .where(PublisherOverride.namespace == namespace)
                .returning(PublisherOverride.status)
            )
            old = removed.scalar()
            if old is None:
                raise NotFound(f"namespace {namespace!r} has no publisher override")
            await record(
                conn,
                "publisher.override.remove",
                account=None,
                name=namespace,
                before={"status": old},
                after=None,
            )

    async def list_overrides(self) -> list[PublisherOverrideInfo]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(
                    PublisherOverride.namespace,
                    PublisherOverride.status,
                    PublisherOverride.updated_at,
                ).order_by(PublisherOverride.namespace)
            )
            return [
                PublisherOverrideInfo(r.namespace, PublisherStatus(r.status), r.updated_at)
                for r in rows
            ]

    async def status(self, namespace: str, *, ask_hub: bool = True) -> PublisherStatus:
        """The namespace's status: override, else Hub's badge (unless not ``ask_hub``),
        else community.

        ``library`` is official, which is not a publisher status; the policy decides
        that from the name. We answer community for it and never send it to Hub.
        """
        if namespace == OFFICIAL_NAMESPACE:
            return PublisherStatus.COMMUNITY
        override = await self._overrides.get(
            digest_key(namespace),
            lambda: self._override(namespace),
            lambda _: _OVERRIDE_BYTES + 2 * len(namespace),
        )
        if override is not None:
            return PublisherStatus(override)
        if not self._hub_api_url or not ask_hub:
            return PublisherStatus.COMMUNITY
        return await self._hub_status(namespace)

    async def _override(self, namespace: str) -> str | None:
        async with self._db.read() as conn:
            found = await conn.scalar(
                select(PublisherOverride.status).where(PublisherOverride.namespace == namespace)
            )
        return None if found is None else str(found)

    async def _hub_status(self, namespace: str) -> PublisherStatus:
        cached = self._cache.get(namespace)
        if cached is not None and cached.expires_at > self._monotonic():
            return cached.status
        task = self._inflight.get(namespace)
        if task is None:
            task = asyncio.create_task(self._lookup(namespace))
            self._inflight[namespace] = task
            task.add_done_callback(lambda done: self._forget(namespace, done))
        # Shielded: one caller giving up must not cancel the lookup others wait for.
        return await asyncio.shield(task)

    def _forget(self, namespace: str, task: asyncio.Task[PublisherStatus]) -> None:
        if self._inflight.get(namespace) is task:
            del self._inflight[namespace]

    async def _lookup(self, namespace: str) -> PublisherStatus:
        status, ttl = await self._ask_hub(namespace)
        if len(self._cache) >= _MAX_CACHED_NAMESPACES:
            self._cache.pop(next(iter(self._cache)))  # the oldest entry
        self._cache[namespace] = _Cached(status, self._monotonic() + ttl)
        return status

    async def _ask_hub(self, namespace: str) -> tuple[PublisherStatus, float]:
        # Imported here, not at the top: every admin command builds this service and
        # none asks Hub, and aiohttp adds a quarter second to each command's start.
        import aiohttp

        url = f"{self._hub_api_url}/v2/orgs/{quote(namespace, safe='')}/"
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                headers={"Accept": "application/json"},
            )
        try:
            async with self._session.get(url) as response:
                if response.status == 404:
                    log.info("publisher lookup: %s is not an organization on Hub", namespace)
                    return PublisherStatus.COMMUNITY, self._answer_ttl
                if response.status != 200:
                    log.warning(
                        "publisher lookup for %s: Hub answered HTTP %d; treating it as community",
                        namespace,
                        response.status,
                    )
                    return PublisherStatus.COMMUNITY, self._failure_ttl
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning(
                "publisher lookup for %s failed (%s); treating it as community",
                namespace,
                exc.__class__.__name__ if not str(exc) else exc,
            )
            return PublisherStatus.COMMUNITY, self._failure_ttl
        return badge_status(body), self._answer_ttl

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None
