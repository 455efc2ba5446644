"""Server-side sessions for the API and the console, and each user's password version.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from imagegate.db.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, never a batch copy (see 0003): a copy of users would cascade.
    op.add_column(
        "users", sa.Column("password_version", sa.Integer(), server_default="0", nullable=False)
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("password_version", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_sessions_secret_hash")),
        sa.CheckConstraint("length(secret_hash) = 64", name=op.f("ck_sessions_secret_hash_length")),
        sa.CheckConstraint(
            "(token_id IS NULL) <> (password_version IS NULL)",
            name=op.f("ck_sessions_one_credential"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["access_tokens.id"],
            name=op.f("fk_sessions_token_id_access_tokens"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(op.f("ix_sessions_user_id"), "sessions", ["user_id"])
    op.create_index(op.f("ix_sessions_token_id"), "sessions", ["token_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sessions_token_id"), table_name="sessions")
    op.drop_index(op.f("ix_sessions_user_id"), table_name="sessions")
    op.drop_table("sessions")
    # On SQLite, run with foreign keys off: a batch copy of users would cascade.
    with op.batch_alter_table("users") as batch:
        batch.drop_column("password_version")
