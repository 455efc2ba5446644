"""Audit events delivered to webhook receivers as CNCF distribution notifications.

The envelope is what distribution's registry POSTs to its notification endpoints
(``{"events": [...]}`` as ``application/vnd.docker.distribution.events.v1+json``), so
receivers written for it work unchanged. Pulls, pushes and deletes map to its ``pull``,
``push`` and ``delete`` actions; logins and changes keep our action names. What
distribution has no field for (decision, reason, before and after...) is under the
``imagegate`` key of each event.

Delivery is an outbox read from the database, not an in-memory queue: events written by
any process (the CLI, another gateway) are delivered, and nothing is lost on a restart.
Each receiver has a cursor row (the last event id it acknowledged with a 2xx). Events
go out in id order, a batch per request; a failed batch is retried, with exponential
backoff, until accepted: never skipped, never reordered. Delivery is at least once (a
process dying between the 2xx and the cursor update resends the batch): receivers can
deduplicate on the event ``id``. A receiver seen for the first time starts at the newest
event, so configuring one does not replay the whole history at it.

Gateways sharing a database take turns through a lease on the cursor row: one delivers
to a receiver at a time and renews the lease while it does; when it stops, another takes
over once the lease has run out (at once if it closed cleanly).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import socket
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError

from imagegate.audit.events import DELETE, PULL, PUSH, AuditEvent, utcnow
from imagegate.core.digests import is_digest
from imagegate.db import Database
from imagegate.db.models import AuditRecord, WebhookCursor
from imagegate.db.statements import insert_unless_present
from imagegate.metrics import Metrics

log = logging.getLogger(__name__)

EVENTS_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
EXTENSION_KEY = "imagegate"
_DISTRIBUTION_ACTIONS = {PULL: "pull", PUSH: "push", DELETE: "delete"}
# AuditEvent fields already carried by distribution's own fields.
_MAPPED = frozenset(
    {"id", "timestamp", "actor", "repository", "digest", "client_ip", "user_agent", "data"}
)


# --- The envelope (pure) ---------------------------------------------------------------


def _present(values: Mapping[str, Any]) -> dict[str, Any]:
    """Without empty values: distribution omits them (``omitempty``)."""
    return {key: value for key, value in values.items() if value not in (None, "", {}, [])}


def _target(event: AuditEvent, registry_url: str) -> dict[str, Any]:
    reference = event.reference or ""
    digest = event.digest or (reference if is_digest(reference) else "")
    size = event.data.get("size")
    url = ""
    if registry_url and event.repository and digest:
        url = f"{registry_url}/v2/{event.repository}/manifests/{digest}"
    return _present(
        {
            "mediaType": event.data.get("media_type"),
            "digest": digest,
            "size": size,
            "length": size,  # distribution sends both, for older receivers
            "repository": event.repository,
            "url": url,
            "tag": "" if is_digest(reference) else reference,
        }
    )


def _extension(event: AuditEvent) -> dict[str, Any]:
    fields = event.to_json()
    # data (before, after and the like) first: it cannot shadow a field of the event.
    return {**event.data, **_present({k: v for k, v in fields.items() if k not in _MAPPED})}


def distribution_event(
    event: AuditEvent, *, instance_id: str, source_addr: str = "", registry_url: str = ""
) -> dict[str, Any]:
    """The stored event as one event of a distribution notification envelope.

    ``registry_url`` (the gateway's public URL, if known) gives the target its ``url``.
    """
    if event.id is None:
        raise ValueError("only a stored audit event (with an id) can be sent")
    request = _present(
        {
            "id": event.data.get("request_id"),
            "addr": event.client_ip,
            "host": urlsplit(registry_url).netloc,
            "method": event.data.get("method"),
            "useragent": event.user_agent,
        }
    )
    return {
        "id": str(event.id),
        "timestamp": event.time_text,
        "action": _DISTRIBUTION_ACTIONS.get(event.action, event.action),
        "target": _target(event, registry_url),
        "request": request,
        "actor": _present({"name": event.actor}),
        "source": _present({"addr": source_addr, "instanceID": instance_id}),
        EXTENSION_KEY: _extension(event),
    }


def envelope(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {"events": list(events)}


def endpoint_key(url: str) -> str:
    """The cursor row's key: the URL hashed, so no credentials in it are stored."""
    return hashlib.sha256(url.encode()).hexdigest()


def redacted(url: str) -> str:
    """The URL for logs: no user info and no query, either may hold a secret."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def deliverable(events: Sequence[AuditEvent], cursor: int, *, accept_gap: bool) -> list[AuditEvent]:
    """The events after ``cursor`` that may be sent now: those before the first gap in ids.

    On PostgreSQL an id is taken when a row is inserted, not when it commits, so a hole
    may be a transaction still running whose event must not be overtaken. It may also be
    a rolled-back or pruned event that will never come: with ``accept_gap`` (the hole has
    lasted long enough) the first hole is stepped over.
    """
    expected = cursor + 1
    ready: list[AuditEvent] = []
    for event in events:
        assert event.id is not None
        if event.id != expected and (ready or not accept_gap):
            break
        ready.append(event)
        expected = event.id + 1
    return ready


# --- Delivery ----------------------------------------------------------------------------


class DeliveryError(Exception):
    """The receiver did not accept a batch; the message says how."""


@dataclass
class EndpointStats:
    """Counters for one receiver, like the metrics distribution keeps per endpoint."""

    url: str  # redacted
    delivered: int = 0  # events acknowledged with a 2xx
    failures: int = 0  # attempts that failed (status, connection error or timeout)
    last_error: str = ""
    cursor: int = 0
    skipped: int = 0  # ids never seen within gap_grace (rolled back, pruned, or late)


class WebhookDispatcher:
    """Sends every new audit event to each receiver, in order, until it accepts them."""

    def __init__(
        self,
        db: Database,
        urls: Sequence[str],
        authorization: str = "",
        *,
        poll_interval: float = 1.0,
        batch: int = 100,
        backoff_initial: float = 0.5,
        backoff_max: float = 60.0,
        timeout: float = 10.0,
        lease: float = 30.0,
        gap_grace: float = 30.0,
        instance_id: str | None = None,
        source_addr: str | None = None,
        registry_url: str = "",
        metrics: Metrics | None = None,
    ) -> None:
        if lease <= 2 * timeout:
            # The lease is renewed before each request; it must outlive the longest one.
            raise ValueError("the lease must be longer than twice the request timeout")
        if authorization and any(urlsplit(url).username for url in urls):
            # aiohttp would refuse every request: two sets of credentials.
            raise ValueError(
                "a webhook URL has credentials in it and an Authorization header is set too"
            )
        self._db = db
        self._headers = {"Content-Type": EVENTS_MEDIA_TYPE}
        if authorization:
            self._headers["Authorization"] = authorization
        self.poll_interval = poll_interval
        self.batch = batch
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.lease = lease
        self.gap_grace = gap_grace
        self.instance_id = instance_id or uuid.uuid4().hex
        self.source_addr = socket.gethostname() if source_addr is None else source_addr
        self.registry_url = registry_url
        self.metrics = metrics or Metrics()
        self._endpoints = [_Endpoint(self, url) for url in dict.fromkeys(urls)]
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def stats(self) -> list[EndpointStats]:
        return [endpoint.stats for endpoint in self._endpoints]

    @property
    def failures(self) -> int:
        return sum(endpoint.stats.failures for endpoint in self._endpoints)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        # One task per receiver: a slow or dead one holds up no other.
        self._tasks = [
            asyncio.create_task(endpoint.run(), name=f"webhook {endpoint.stats.url}")
            for endpoint in self._endpoints
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for endpoint in self._endpoints:
            await endpoint.release()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, url: str, body: bytes) -> None:
        assert self._session is not None, "start() first"
        try:
            async with self._session.post(
                url, data=body, headers=self._headers, allow_redirects=False
            ) as response:
                if not 200 <= response.status < 300:
                    raise DeliveryError(f"answered {response.status} {response.reason or ''}")
        except TimeoutError:
            raise DeliveryError(f"no answer within {self.timeout:g} s") from None
        except aiohttp.ClientError as exc:
            # aiohttp's message may quote the URL, credentials and all.
            message = str(exc).replace(url, redacted(url))
            raise DeliveryError(f"{type(exc).__name__}: {message}") from None


class _Endpoint:
    """One receiver's delivery loop and its cursor row."""

    def __init__(self, dispatcher: WebhookDispatcher, url: str) -> None:
        self._dispatcher = dispatcher
        self._url = url
        self._key = endpoint_key(url)
        self.stats = EndpointStats(redacted(url))
        self._leased_until = 0.0  # monotonic; when our lease needs renewing by
        self._gap: tuple[int, float] | None = None  # (cursor, monotonic first seen)
        self._advancing: asyncio.Future[None] | None = None

    async def run(self) -> None:
        settings = self._dispatcher
        backoff = settings.backoff_initial
        while True:
            try:
                sent = await self._deliver_next()
            except DeliveryError as exc:
                self.stats.failures += 1
                settings.metrics.webhook_failures.inc()
                self.stats.last_error = str(exc)
                log.warning(
                    "webhook %s: delivery failed (failure %d), retrying in %g s: %s",
                    self.stats.url,
                    self.stats.failures,
                    backoff,
                    exc,
                    extra={"webhook": self.stats.url, "failures": self.stats.failures},
                )
            except (SQLAlchemyError, OSError) as exc:
                # The database is down or busy: the batch stays where it is; try again.
                log.warning(
                    "webhook %s: cannot read or move the cursor, retrying in %g s: %s",
                    self.stats.url,
                    backoff,
                    exc,
                    extra={"webhook": self.stats.url},
                )
            except Exception:
                # A bug must not end delivery for good: say so loudly and keep trying.
                log.exception("webhook %s: unexpected error", self.stats.url)
            else:
                backoff = settings.backoff_initial
                if not sent:  # nothing to send, or another gateway holds the lease
                    await self._pause(settings.poll_interval)
                continue
            await self._pause(backoff)
            backoff = min(backoff * 2, settings.backoff_max)

    async def _deliver_next(self) -> bool:
        """Send the next batch; whether there was one (and this process may send it)."""
        cursor = await self._claim()
        if cursor is None:
            return False
        events = await self._pending(cursor)
        ready = deliverable(events, cursor, accept_gap=self._gap_expired(cursor, events))
        if not ready:
            return False
        if ready[0].id != cursor + 1:
            # Not silent: a transaction slower than gap_grace would be skipped here.
            missing = (ready[0].id or 0) - 1 - cursor
            self.stats.skipped += missing
            self._dispatcher.metrics.webhook_events_skipped.inc(missing)
            log.warning(
                "webhook %s: skipping events %d to %d, not in the database after %g s "
                "(rolled back or pruned)",
                self.stats.url,
                cursor + 1,
                cursor + missing,
                self._dispatcher.gap_grace,
                extra={"webhook": self.stats.url, "skipped": missing},
            )
        settings = self._dispatcher
        body = json.dumps(
            envelope(
                distribution_event(
                    event,
                    instance_id=settings.instance_id,
                    source_addr=settings.source_addr,
                    registry_url=settings.registry_url,
                )
                for event in ready
            ),
            default=str,
        ).encode()
        await settings._post(self._url, body)
        last = ready[-1].id
        assert last is not None
        # Accepted: record it even if close() cancels us now, or the batch is sent twice.
        self._advancing = asyncio.ensure_future(self._advance(last))
        await asyncio.shield(self._advancing)
        self.stats.delivered += len(ready)
        self._dispatcher.metrics.webhook_events_delivered.inc(len(ready))
        return True

    def _gap_expired(self, cursor: int, events: Sequence[AuditEvent]) -> bool:
        if not events or events[0].id == cursor + 1:
            self._gap = None
            return False
        if self._gap is None or self._gap[0] != cursor:
            self._gap = (cursor, time.monotonic())
        return time.monotonic() - self._gap[1] >= self._dispatcher.gap_grace

    async def _claim(self) -> int | None:
        """Take or renew the lease when due; the cursor, or ``None`` if another holds it."""
        db = self._dispatcher._db
        table = WebhookCursor
        async with db.read() as conn:
            row = (
                await conn.execute(
                    select(table.last_event_id, table.leased_by, table.leased_until).where(
                        table.endpoint == self._key
                    )
                )
            ).first()
        now = utcnow()
        ours = row is not None and row.leased_by == self._dispatcher.instance_id
        if ours and time.monotonic() < self._leased_until and row is not None:
            return int(row.last_event_id)
        if row is not None and not ours and row.leased_until and row.leased_until > now:
            return None
        lease = self._dispatcher.lease
        async with db.write() as conn:
            if row is None:
                # New receiver: start at the newest event rather than replay history.
                newest = select(func.coalesce(func.max(AuditRecord.id), 0)).scalar_subquery()
                await conn.execute(
                    insert_unless_present(
                        conn,
                        table,
                        {"endpoint": self._key, "last_event_id": newest},
                        [table.endpoint],
                    )
                )
            claimed = await conn.execute(
                update(table)
                .where(
                    table.endpoint == self._key,
                    (table.leased_by == self._dispatcher.instance_id)
                    | table.leased_until.is_(None)
                    | (table.leased_until < now),
                )
                .values(
                    leased_by=self._dispatcher.instance_id,
                    leased_until=now + dt.timedelta(seconds=lease),
                )
                .returning(table.last_event_id)
            )
            cursor = claimed.scalar()
        if cursor is None:
            self._leased_until = 0.0
            return None
        # Renew once a third of the lease is used, well before it runs out.
        self._leased_until = time.monotonic() + lease / 3
        self.stats.cursor = int(cursor)
        return int(cursor)

    async def _pending(self, cursor: int) -> list[AuditEvent]:
        async with self._dispatcher._db.read() as conn:
            rows = await conn.execute(
                select(AuditRecord)
                .where(AuditRecord.id > cursor)
                .order_by(AuditRecord.id)
                .limit(self._dispatcher.batch)
            )
            return [AuditEvent.from_row(dict(row)) for row in rows.mappings()]

    async def _advance(self, last_id: int) -> None:
        async with self._dispatcher._db.write() as conn:
            moved = await conn.execute(
                update(WebhookCursor)
                .where(
                    WebhookCursor.endpoint == self._key,
                    WebhookCursor.leased_by == self._dispatcher.instance_id,
                )
                .values(last_event_id=last_id)
            )
        if moved.rowcount == 0:
            # Our lease ran out and another gateway took over: it resends from its cursor.
            self._leased_until = 0.0
            log.warning("webhook %s: lost the delivery lease to another gateway", self.stats.url)
            return
        self.stats.cursor = last_id

    async def _pause(self, seconds: float) -> None:
        """Sleep, renewing a held lease meanwhile so a long backoff keeps our turn."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, self._dispatcher.lease / 3))
            if self._leased_until and time.monotonic() >= self._leased_until:
                try:
                    await self._claim()
                except (SQLAlchemyError, OSError) as exc:
                    log.warning("webhook %s: cannot renew lease: %s", self.stats.url, exc)

    async def release(self) -> None:
        """Finish recording a delivery, then give the lease up for another gateway."""
        if self._advancing is not None:
            await asyncio.gather(self._advancing, return_exceptions=True)
        if not self._leased_until:
            return
        try:
            async with self._dispatcher._db.write() as conn:
                await conn.execute(
                    update(WebhookCursor)
                    .where(
                        WebhookCursor.endpoint == self._key,
                        WebhookCursor.leased_by == self._dispatcher.instance_id,
                    )
                    .values(leased_until=None)
                )
        except (SQLAlchemyError, OSError) as exc:
            log.warning("webhook %s: cannot release lease: %s", self.stats.url, exc)
        self._leased_until = 0.0
