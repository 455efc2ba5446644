"""Recording a change in the audit trail, inside the transaction that makes it.

A change and its audit record commit or roll back together: a failed command leaves no
record, and a recorded change cannot be lost to a crash between two transactions. (Pull
decisions are batched elsewhere; changes are rare, so one more INSERT costs nothing.)
Callers return before recording when nothing changed, and read ``before`` in the same
transaction, after locking what they change.

Recording is also the one place a change bumps the generation (``db.generation``) that
caches of sign-ins and decisions check against, in that same transaction: every change
to what they read is recorded, and nothing else is (pull decisions go through the
``AuditRecorder``, never here), so whatever the audit trail shows as changed reaches
every process's caches before the command returns.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from imagegate.audit.events import AuditEvent, change
from imagegate.db.generation import bump
from imagegate.db.models import AuditRecord


async def record_change(conn: AsyncConnection, event: AuditEvent) -> None:
    """Insert ``event`` in ``conn``'s transaction, and count the change."""
    await conn.execute(insert(AuditRecord).values(**event.to_row()))
    await bump(conn)


async def record(
    conn: AsyncConnection,
    action: str,
    *,
    account: str | None,
    name: str,
    before: Any,
    after: Any,
    **data: Any,
) -> None:
    """Record ``action`` by whoever acts now (``audit.context``), with before and after."""
    event = change(action, account=account, name=name, before=before, after=after, **data)
    await record_change(conn, event)
