"""Organization storage quotas: the quota, the usage, and what it counts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from imagegate.db.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (see 0003). Usage starts at 0: what was pushed before is counted
    # by the next ``imagegate gc``, or when a quota is set (``imagegate org set``).
    op.add_column("organizations", sa.Column("storage_quota", sa.BigInteger(), nullable=True))
    op.add_column(
        "organizations",
        sa.Column("storage_used", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.create_table(
        "org_blobs",
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(160), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("counted_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_org_blobs_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "digest", name=op.f("pk_org_blobs")),
    )


def downgrade() -> None:
    # On SQLite, run with foreign keys off: a batch copy of organizations would cascade.
    op.drop_table("org_blobs")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("storage_used")
        batch.drop_column("storage_quota")
