"""An organization's own settings, changed one way: the row locked, the change audited.

Image access toggles (``access``), the mirrored upstream namespace (``access``) and the
storage quota (``quotas``) are columns of the organization's row. Each change locks the
row, reads what it replaces, and writes only what differs, with its audit record in the
same transaction; so two owners changing different settings at once both get their
change, and each record's ``before`` is what that change replaced.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import InstrumentedAttribute

from imagegate.db.models import Organization
from imagegate.services.audit_changes import record
from imagegate.services.errors import NotFound

Columns = Mapping[str, InstrumentedAttribute[Any]]  # a setting's name -> its column


async def change_settings(
    conn: AsyncConnection,
    org: str,
    columns: Columns,
    changes: Mapping[str, Any],
    *,
    action: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """Apply ``changes`` (setting name -> value) to ``org``'s ``columns`` and record
    ``action`` with every setting of ``columns`` before and after; the settings now."""
    row = (
        await conn.execute(
            select(*columns.values()).where(Organization.name == org).with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound(f"organization {org!r} does not exist")
    before = dict(zip(columns, row, strict=True))
    after = {**before, **changes}
    if after != before:
        await conn.execute(
            update(Organization)
            .where(Organization.name == org)
            .values(**{columns[name].key: value for name, value in changes.items()}, updated_at=now)
        )
        await record(conn, action, account=org, name=org, before=before, after=after)
    return after
