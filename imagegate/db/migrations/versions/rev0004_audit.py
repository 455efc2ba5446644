"""The audit trail and webhook delivery cursors.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from imagegate.db.models import AUDIT_ID, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", AUDIT_ID, autoincrement=True, nullable=False),
        sa.Column("timestamp", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("account", sa.String(255), nullable=True),
        sa.Column("orgs", sa.Text(), server_default="", nullable=False),
        sa.Column("name", sa.String(255), server_default="", nullable=False),
        sa.Column("repository", sa.String(255), nullable=True),
        sa.Column("reference", sa.String(255), nullable=True),
        sa.Column("digest", sa.String(160), nullable=True),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("client_ip", sa.String(45), nullable=True),
        sa.Column("user_agent", sa.String(255), nullable=True),
        sa.Column("data", sa.Text(), server_default="{}", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_timestamp"), "audit_events", ["timestamp"])
    for column in ("account", "actor", "repository"):
        index = f"ix_audit_events_{column}_timestamp"
        op.create_index(index, "audit_events", [column, "timestamp"])
    op.create_table(
        "audit_webhook_cursors",
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("last_event_id", AUDIT_ID, server_default="0", nullable=False),
        sa.Column("leased_until", UTCDateTime(), nullable=True),
        sa.Column("leased_by", sa.String(64), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("endpoint", name=op.f("pk_audit_webhook_cursors")),
    )


def downgrade() -> None:
    op.drop_table("audit_webhook_cursors")
    for column in ("repository", "actor", "account"):
        op.drop_index(f"ix_audit_events_{column}_timestamp", table_name="audit_events")
    op.drop_index(op.f("ix_audit_events_timestamp"), table_name="audit_events")
    op.drop_table("audit_events")
