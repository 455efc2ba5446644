"""The schema: accounts, tokens, organizations, teams, publisher overrides, repositories.

Constraints live in the database, not only in code, so that two admin commands racing
each other cannot break an invariant:

- ``account_names`` holds every user and organization name once; users and
  organizations reference it, so one name can never be both (one namespace, as on Hub).
- team names are unique per organization, a user is in a team at most once, and
  deleting an organization or user removes what hangs off it.
- image access settings are columns of ``organizations`` with the defaults Docker Hub
  starts from, so enabling the policy needs no second row.
- an organization's repository allowlist holds each canonical ``namespace/path`` once.
- a hosted repository exists once per organization (created by its first push, so two
  concurrent first pushes cannot make two), and a team holds at most one permission per
  repository and one for the whole namespace (``repository`` NULL; a partial unique
  index, because a plain unique constraint treats every NULL as distinct).
- a session (an API bearer token or a console sign-in) belongs to one user and is tied
  to the credential it was made with: the password version then current, or the access
  token (deleting the token or the user deletes its sessions).
- an organization's storage usage is the sum of its ``org_blobs`` (each digest once),
  and a push that would take it past the quota is refused in the same statement that
  adds to it, so concurrent pushes cannot overshoot.
- the audit trail is append-only and references nothing, so deleting a user or an
  organization never rewrites history; webhook cursors say how far each receiver got.
- ``generation`` is one row counting the changes recorded in the audit trail (each in
  the transaction that makes it): what caches of decisions and sign-ins check against.

The migrations in ``migrations/versions`` create exactly this; a test compares them.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import DateTime, TypeDecorator

from imagegate.core.names import MAX_UPSTREAM_NAMESPACE_LENGTH

ACCOUNT_KINDS = ("user", "organization")
PUBLISHER_STATUSES = ("verified_publisher", "sponsored_oss", "community")
VISIBILITIES = ("private", "public")
PERMISSIONS = ("read", "write", "admin")
# A repository's path inside its namespace; the whole name is capped at 200 characters.
REPOSITORY_PATH_LENGTH = 200
# An upstream namespace an organization mirrors: one repository name component.
UPSTREAM_NAMESPACE_LENGTH = MAX_UPSTREAM_NAMESPACE_LENGTH
# What a token created before scopes existed may do: everything its user may.
DEFAULT_TOKEN_SCOPES = "repo:write"

# Deterministic constraint names, so later migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so we store naive UTC
    in one fixed text format (which also makes ``<`` comparisons in SQL correct) and
    attach UTC again on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class AccountName(Base):
    """Every user and organization name, once: they share Docker Hub's namespace."""

    __tablename__ = "account_names"
    __table_args__ = (CheckConstraint(f"kind IN {ACCOUNT_KINDS!r}", name="kind"),)

    name: Mapped[str] = mapped_column(String(30), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(
        String(30), ForeignKey("account_names.name", ondelete="CASCADE"), unique=True
    )
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # A gateway admin: manages gateway-wide state (publisher overrides), not organizations.
    is_admin: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # Raised by every password change: a session made with an older password has ended.
    password_version: Mapped[int] = mapped_column(Integer, server_default="0")


class AccessToken(Base):
    """A personal access token; only the SHA-256 of its secret is kept.

    ``uuid`` is its public identifier (Hub's API addresses tokens by UUID); ``scopes`` is
    the space-separated list as the user gave it (Hub's ``repo:read``, ``repo:write``...).
    """

    __tablename__ = "access_tokens"
    __table_args__ = (CheckConstraint("length(token_hash) = 64", name="token_hash_length"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Nullable only in the schema (see migration 0003); every token has one.
    uuid: Mapped[str | None] = mapped_column(String(36), unique=True, index=True)
    scopes: Mapped[str] = mapped_column(String(255), server_default=DEFAULT_TOKEN_SCOPES)
    creator_ip: Mapped[str] = mapped_column(String(45), server_default="")
    creator_ua: Mapped[str] = mapped_column(String(255), server_default="")
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(255), server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(Boolean, server_default=true())


class Session(Base):
    """A signed-in session of the API (its bearer token's ``jti``) or the console (its
    cookie); only the SHA-256 of its secret is kept.

    ``token_id`` is the access token it was made with, ``password_version`` the user's
    password version when it was made with a password: exactly one of them is set.
    """

    __tablename__ = "sessions"
    __table_args__ = (
        CheckConstraint("length(secret_hash) = 64", name="secret_hash_length"),
        CheckConstraint("(token_id IS NULL) <> (password_version IS NULL)", name="one_credential"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_id: Mapped[int | None] = mapped_column(
        ForeignKey("access_tokens.id", ondelete="CASCADE"), index=True
    )
    password_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Organization(Base):
    """An organization and its Image Access Management settings (Hub's defaults)."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(
        String(30), ForeignKey("account_names.name", ondelete="CASCADE"), unique=True
    )
    image_access_enabled: Mapped[bool] = mapped_column(Boolean, server_default=false())
    allow_official: Mapped[bool] = mapped_column(Boolean, server_default=true())
    allow_verified_publishers: Mapped[bool] = mapped_column(Boolean, server_default=true())
    allow_community: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # The upstream namespace the owners mirror into the organization's namespace (``acme/x``
    # not hosted here is the upstream's ``<this>/x``); NULL: only hosted repositories.
    upstream_namespace: Mapped[str | None] = mapped_column(String(UPSTREAM_NAMESPACE_LENGTH))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # Bytes its hosted repositories may hold (NULL: no limit), and the sum of
    # ``org_blobs.size``, kept with every change to it so no push needs a SUM.
    storage_quota: Mapped[int | None] = mapped_column(BigInteger)
    storage_used: Mapped[int] = mapped_column(BigInteger, server_default="0")


class Team(Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(50))
    description: Mapped[str] = mapped_column(String(255), server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    # The primary key serves lookups by team; this index serves "which orgs is X in?",
    # the query behind every policy decision.
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class PublisherOverride(Base):
    """An admin's word on a namespace's publisher status; it beats Docker Hub's badge."""

    __tablename__ = "publisher_overrides"
    __table_args__ = (CheckConstraint(f"status IN {PUBLISHER_STATUSES!r}", name="status"),)

    namespace: Mapped[str] = mapped_column(String(255), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Repository(Base):
    """A hosted repository of an organization: ``name`` is the path inside its namespace."""

    __tablename__ = "repositories"
    __table_args__ = (
        UniqueConstraint("org_id", "name"),
        CheckConstraint(f"visibility IN {VISIBILITIES!r}", name="visibility"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(REPOSITORY_PATH_LENGTH))
    visibility: Mapped[str] = mapped_column(String(10), server_default="private")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class TeamPermission(Base):
    """A team's permission on one repository (by name, so it can precede the first push)
    or, with ``repository`` NULL, on every repository of the organization."""

    __tablename__ = "team_permissions"
    __table_args__ = (
        UniqueConstraint("team_id", "repository"),
        Index(
            "uq_team_permissions_team_id_namespace",
            "team_id",
            unique=True,
            sqlite_where=text("repository IS NULL"),
            postgresql_where=text("repository IS NULL"),
        ),
        CheckConstraint(f"permission IN {PERMISSIONS!r}", name="permission"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    repository: Mapped[str | None] = mapped_column(String(REPOSITORY_PATH_LENGTH))
    permission: Mapped[str] = mapped_column(String(5))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AllowlistEntry(Base):
    """A repository every member of the organization may pull, whatever its category.

    ``repository`` is the canonical full name (``library/nginx``, never ``nginx``).
    """

    __tablename__ = "image_access_allowlist"

    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    repository: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class OrgBlob(Base):
    """A blob or manifest some hosted repository of the organization holds, counted once
    per organization for its storage usage (``organizations.storage_used``).

    ``counted_at`` lets a recount (``imagegate gc``) keep what pushes added after it looked.
    """

    __tablename__ = "org_blobs"

    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    digest: Mapped[str] = mapped_column(String(160), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    counted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Generation(Base):
    """One row (``id`` 1): how many changes to what sign-ins and decisions read were ever
    committed (``db.generation``)."""

    __tablename__ = "generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger, server_default="0")


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
AUDIT_ID = BigInteger().with_variant(Integer, "sqlite")


class AuditRecord(Base):
    """One audit event: a pull or write decision, a login, or a change, in arrival order.

    ``account`` is the organization the event belongs to (Hub's audit-log account): the
    changed organization, or for a registry decision the organization whose rule refused
    it or whose namespace it is. ``orgs`` lists the requester's organizations at decision
    time as ``,a,b,`` so one ``LIKE '%,a,%'`` finds every event of a member of ``a``.
    ``data`` is a JSON object: details such as ``before`` and ``after`` of a change.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_account_timestamp", "account", "timestamp"),
        Index("ix_audit_events_actor_timestamp", "actor", "timestamp"),
        Index("ix_audit_events_repository_timestamp", "repository", "timestamp"),
    )

    id: Mapped[int] = mapped_column(AUDIT_ID, primary_key=True, autoincrement=True)
    timestamp: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    action: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(255))  # None: anonymous
    account: Mapped[str | None] = mapped_column(String(255))
    orgs: Mapped[str] = mapped_column(Text, server_default="")
    name: Mapped[str] = mapped_column(String(255), server_default="")
    repository: Mapped[str | None] = mapped_column(String(255))
    reference: Mapped[str | None] = mapped_column(String(255))
    digest: Mapped[str | None] = mapped_column(String(160))
    category: Mapped[str | None] = mapped_column(String(32))
    decision: Mapped[str | None] = mapped_column(String(16))  # allowed | denied
    outcome: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    client_ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    data: Mapped[str] = mapped_column(Text, server_default="{}")


class WebhookCursor(Base):
    """How far one webhook receiver got: the last audit event id it acknowledged.

    ``leased_until``/``leased_by`` let one gateway process deliver at a time when several
    share the database.
    """

    __tablename__ = "audit_webhook_cursors"

    endpoint: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the URL
    last_event_id: Mapped[int] = mapped_column(AUDIT_ID, server_default="0")
    leased_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    leased_by: Mapped[str] = mapped_column(String(64), server_default="")
