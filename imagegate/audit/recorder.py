"""The audit trail's writer: events are buffered in memory and written in batches.

``record`` is what the request path calls: it only appends to a bounded buffer, so a
pull never waits on the database. A background task writes the buffer in arrival order,
one multi-row INSERT per batch. Nothing is lost silently:

- a full buffer drops the new event, counts it and says so in the log (at most one line
  a second, with the number dropped since the previous line);
- a failed write leaves the batch at the head of the buffer, is logged and counted, and
  is retried with a doubling backoff until the database takes it;
- an event the database can never take (a value too long for its column on PostgreSQL)
  is written alone, and only that one is dropped, counted and logged, so it cannot hold
  up every event behind it.

A successful login is written with the user's organizations, looked up for the whole
batch in the writing transaction (never on the request path), so an organization's
trail shows its members signing in.

The counters are the ``/metrics`` endpoint's audit metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import bindparam, insert
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from imagegate.audit.events import ALLOWED, LOGIN, AuditEvent
from imagegate.db import Database
from imagegate.db.models import AuditRecord, User
from imagegate.db.queries import MEMBER_ORGANIZATIONS
from imagegate.metrics import Metrics

logger = logging.getLogger("imagegate.audit")

DROP_WARNING_INTERVAL = 1.0  # seconds between two "buffer full" lines
_UNWRITABLE = (DataError, IntegrityError)  # the rows themselves, not the database
_WRITE_ERRORS = (SQLAlchemyError, OSError, TimeoutError)
Row = dict[str, Any]


# The organizations of the users who signed in (one query for a batch).
_ORGS_OF = MEMBER_ORGANIZATIONS.where(User.name.in_(bindparam("users", expanding=True)))


def _signed_in(event: AuditEvent) -> bool:
    """A successful login whose organizations are still to be filled in."""
    return event.action == LOGIN and event.decision == ALLOWED and not event.orgs


async def _with_login_orgs(conn: AsyncConnection, batch: Sequence[AuditEvent]) -> list[Row]:
    """The batch's rows, each successful login's with its user's organizations."""
    users = {event.actor for event in batch if _signed_in(event) and event.actor}
    orgs: dict[str, list[str]] = {}
    if users:
        found = await conn.execute(_ORGS_OF, {"users": sorted(users)})
        for user, org in found:
            orgs.setdefault(user, []).append(org)
    rows = []
    for event in batch:
        if _signed_in(event) and event.actor in orgs:
            event = replace(event, orgs=tuple(sorted(orgs[event.actor])))
        rows.append(event.to_row())
    return rows


# How long closing keeps trying to write what is buffered (the database may be down).
CLOSE_TIMEOUT_SECONDS = 30.0


class AuditRecorder:
    """Batches audit events into the ``audit_events`` table off the request path.

    ``start()`` the writer inside the running event loop and ``await close()`` it on
    shutdown (it writes what is left). ``retry_initial``/``retry_max`` bound the backoff
    between attempts while the database is unavailable; ``close_timeout`` is how long
    shutdown waits for it.
    """

    def __init__(
        self,
        db: Database,
        *,
        capacity: int = 10000,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        retry_initial: float = 0.1,
        retry_max: float = 5.0,
        close_timeout: float = CLOSE_TIMEOUT_SECONDS,
        metrics: Metrics | None = None,
    ) -> None:
        if capacity < 1 or batch_size < 1:
            raise ValueError("capacity and batch_size must be at least 1")
        self._db = db
        self._metrics = metrics or Metrics()
        self.capacity = capacity
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.close_timeout = close_timeout
        # Events stay here until their batch is committed, so a failed write loses none.
        self._buffer: deque[AuditEvent] = deque()
        self._wake = asyncio.Event()
        self._writing = asyncio.Lock()  # one batch at a time, so none is written twice
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.written = 0
        self.dropped = 0
        self.write_failures = 0
        self._appended = 0  # events ever buffered; with _removed, what flush() waits for
        self._removed = 0  # events ever taken off the buffer (written or unwritable)
        self._unreported_drops = 0
        self._last_drop_warning = float("-inf")

    @property
    def buffered(self) -> int:
        """Events recorded and not yet written (including a batch being written)."""
        return len(self._buffer)

    def record(self, event: AuditEvent) -> None:
        """Queue ``event`` for writing; never waits, never touches the database."""
        if self._closed:  # a request still running as the process exits: say it is lost
            self._dropped(1)
            logger.error(
                "audit: a %s event arrived after shutdown and is lost",
                event.action,
                extra={"event": "audit_lost", "audit": event.to_json()},
            )
            return
        if len(self._buffer) >= self.capacity:
            self._dropped(1)
            self._unreported_drops += 1
            self._report_drops()
            return
        self._buffer.append(event)
        self._appended += 1
        self._metrics.audit_events_buffered.inc()
        if len(self._buffer) >= self.batch_size:
            self._wake.set()

    def start(self) -> None:
        """Start the background writer (in the running event loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="imagegate-audit-writer")

    async def flush(self) -> None:
        """Write every event recorded so far, retrying while the database is unavailable."""
        await self._drain(self._appended)

    async def close(self) -> None:
        """Stop the writer and write what is left, giving up after ``close_timeout`` s.

        Events still unwritten then (the database stayed down) are counted as dropped
        and logged as an error: the process is going away and cannot keep them.
        """
        self._closed = True
        if self._task is not None:
            # Holding the write lock, the writer is between writes: cancelling it cannot
            # interrupt a commit and leave a batch both written and still buffered.
            async with self._writing:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            async with asyncio.timeout(self.close_timeout):
                await self.flush()
        except TimeoutError:
            lost = len(self._buffer)
            self._buffer.clear()
            self._removed += lost
            self._metrics.audit_events_buffered.dec(lost)
            self._dropped(lost)
            logger.error(
                "audit: %d events could not be written before shutdown and are lost",
                lost,
                extra={"event": "audit_lost", "lost": lost},
            )
        self._report_drops(force=True)

    async def _run(self) -> None:
        while True:
            if len(self._buffer) < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.flush_interval):
                        await self._wake.wait()
            self._wake.clear()
            self._report_drops()
            await self._drain(self._appended)

    async def _drain(self, until: int) -> None:
        """Write batches until the first ``until`` events ever recorded are gone."""
        delay = self.retry_initial
        while self._removed < until:
            if await self._write_batch():
                delay = self.retry_initial
            else:
                self._report_drops()  # the buffer fills while the database is down
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)

    async def _write_batch(self) -> bool:
        """Write the batch at the head of the buffer; False if the database failed."""
        async with self._writing:
            batch = list(itertools.islice(self._buffer, self.batch_size))
            try:
                try:
                    await self._insert(batch)
                except _UNWRITABLE:
                    await self._insert_singly(batch)
                    return True
            except Exception as exc:  # the writer must outlive any failure, and retry
                self._failed(exc, len(batch))
                return False
            self._written(len(batch))
            return True

    async def _insert(self, batch: Sequence[AuditEvent]) -> None:
        if batch:
            async with self._db.write() as conn:
                rows = await _with_login_orgs(conn, batch)
                await conn.execute(insert(AuditRecord), rows)

    async def _insert_singly(self, batch: Sequence[AuditEvent]) -> None:
        """Write each event alone, so only those the database refuses are dropped."""
        for event in batch:
            try:
                await self._insert([event])
            except _UNWRITABLE as exc:
                self._buffer.popleft()
                self._removed += 1
                self._metrics.audit_events_buffered.dec()
                self._dropped(1)
                logger.error(
                    "audit: the database refuses a %s event, dropped: %s",
                    event.action,
                    exc,
                    extra={"event": "audit_unwritable", "audit": event.to_json()},
                )
            else:
                self._written(1)

    def _written(self, count: int) -> None:
        for _ in range(count):
            self._buffer.popleft()
        self._removed += count
        self.written += count
        self._metrics.audit_events_buffered.dec(count)
        self._metrics.audit_events_written.inc(count)

    def _dropped(self, count: int) -> None:
        self.dropped += count
        self._metrics.audit_events_dropped.inc(count)

    def _failed(self, exc: Exception, batch: int) -> None:
        self.write_failures += 1
        self._metrics.audit_write_failures.inc()
        logger.error(
            "audit: writing %d events failed, %d buffered, will retry: %s",
            batch,
            len(self._buffer),
            exc,
            # A database error is expected while it is down; anything else is a bug.
            exc_info=not isinstance(exc, _WRITE_ERRORS),
            extra={
                "event": "audit_write_failed",
                "batch": batch,
                "buffered": len(self._buffer),
                "failures": self.write_failures,
            },
        )

    def _report_drops(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self._unreported_drops:
            return
        if not force and now - self._last_drop_warning < DROP_WARNING_INTERVAL:
            return
        logger.warning(
            "audit: buffer full (%d events), dropped %d events",
            self.capacity,
            self._unreported_drops,
            extra={
                "event": "audit_dropped",
                "dropped": self._unreported_drops,
                "dropped_total": self.dropped,
            },
        )
        self._unreported_drops = 0
        self._last_drop_warning = now
