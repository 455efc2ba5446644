"""Hosted repositories and team permissions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from imagegate.db.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repositories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("visibility", sa.String(10), server_default="private", nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repositories")),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_repositories_org_id_name")),
        sa.CheckConstraint(
            "visibility IN ('private', 'public')", name=op.f("ck_repositories_visibility")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_repositories_org_id_organizations"),
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "team_permissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("repository", sa.String(200), nullable=True),
        sa.Column("permission", sa.String(5), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_permissions")),
        sa.UniqueConstraint(
            "team_id", "repository", name=op.f("uq_team_permissions_team_id_repository")
        ),
        sa.CheckConstraint(
            "permission IN ('read', 'write', 'admin')", name=op.f("ck_team_permissions_permission")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_team_permissions_team_id_teams"),
            ondelete="CASCADE",
        ),
    )
    # One namespace-wide permission per team: the unique constraint above treats NULLs
    # as distinct, so the NULL case needs its own (partial) unique index.
    op.create_index(
        "uq_team_permissions_team_id_namespace",
        "team_permissions",
        ["team_id"],
        unique=True,
        sqlite_where=sa.text("repository IS NULL"),
        postgresql_where=sa.text("repository IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("team_permissions")
    op.drop_table("repositories")
