"""Repository allowlists for image access, gateway admins, team descriptions, and
access-token UUIDs, scopes and creator details for the management API.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

from imagegate.db.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_access_allowlist",
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "repository", name=op.f("pk_image_access_allowlist")),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_image_access_allowlist_org_id_organizations"),
            ondelete="CASCADE",
        ),
    )
    # Plain ADD COLUMNs, never a batch copy: on SQLite a batch copy drops the old table,
    # and with foreign keys on that cascades into team_members and access_tokens.
    op.add_column(
        "users", sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column(
        "teams", sa.Column("description", sa.String(255), server_default="", nullable=False)
    )
    op.add_column("access_tokens", sa.Column("uuid", sa.String(36), nullable=True))
    op.add_column(
        "access_tokens",
        sa.Column("scopes", sa.String(255), server_default="repo:write", nullable=False),
    )
    op.add_column(
        "access_tokens",
        sa.Column("creator_ip", sa.String(45), server_default="", nullable=False),
    )
    op.add_column(
        "access_tokens",
        sa.Column("creator_ua", sa.String(255), server_default="", nullable=False),
    )
    # Tokens minted before the API get a random UUID each. The column stays nullable in
    # the schema (SQLite cannot add NOT NULL to an existing column without a copy); the
    # service always sets it.
    tokens = sa.table("access_tokens", sa.column("id", sa.Integer), sa.column("uuid", sa.String))
    connection = op.get_bind()
    for (token_id,) in connection.execute(sa.select(tokens.c.id)).all():
        connection.execute(
            tokens.update().where(tokens.c.id == token_id).values(uuid=str(uuid.uuid4()))
        )
    op.create_index(op.f("ix_access_tokens_uuid"), "access_tokens", ["uuid"], unique=True)


def downgrade() -> None:
    # On SQLite, run with foreign keys off: a batch copy of users would cascade.
    op.drop_index(op.f("ix_access_tokens_uuid"), table_name="access_tokens")
    with op.batch_alter_table("access_tokens") as batch:
        batch.drop_column("creator_ua")
        batch.drop_column("creator_ip")
        batch.drop_column("scopes")
        batch.drop_column("uuid")
    with op.batch_alter_table("teams") as batch:
        batch.drop_column("description")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("is_admin")
    op.drop_table("image_access_allowlist")
