"""The upstream namespace an organization mirrors into its own (issue 9, hole 9).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from imagegate.db.models import UPSTREAM_NAMESPACE_LENGTH

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (nullable: every organization starts mirroring nothing), never a
    # batch copy, which on SQLite would cascade into the tables referencing organizations.
    op.add_column(
        "organizations",
        sa.Column("upstream_namespace", sa.String(UPSTREAM_NAMESPACE_LENGTH), nullable=True),
    )


def downgrade() -> None:
    # On SQLite, run with foreign keys off: a batch copy of organizations would cascade.
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("upstream_namespace")
