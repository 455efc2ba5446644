"""Orchestration over the database, one concept per module.

``accounts`` (users, passwords, access tokens, signing in; ``credentials`` what a
sign-in yields and what may be shown of a token), ``orgs`` (organizations, teams,
members), ``repositories`` (hosted repositories and team permissions on them),
``sessions`` (signed-in sessions of the API and the console, each tied to its
credential), ``access`` (image access settings and the pull and write decisions),
``allowlist`` (each organization's repository allowlist), ``publishers`` (publisher
status: overrides and Docker Hub's badges) and ``quotas`` (organizations' storage quotas
and usage). Every method is one transaction, so a failed command leaves nothing
half-written. What sign-ins and decisions read is remembered per process only until the
next change (``current_cache``, checked against the generation every change bumps:
``db.generation``), so a change applies to the very next request of every process;
``credential_cache`` is that memory for credentials that signed in. ``throttle`` keeps
limits on sign-in attempts in memory.

``open_services`` builds them all on one ``Database`` (migrating it first); the
composition root and the CLI use it and nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from imagegate.auth.passwords import PasswordHasher
from imagegate.config import Settings
from imagegate.db import Database
from imagegate.db.database import sqlite_path
from imagegate.db.generation import FileSignal, GenerationSignal
from imagegate.services.access import AccessService
from imagegate.services.accounts import AccountService
from imagegate.services.allowlist import AllowlistService
from imagegate.services.audit import AuditService
from imagegate.services.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    ServiceError,
    TooManyAttempts,
)
from imagegate.services.orgs import OrganizationService
from imagegate.services.publishers import PublisherService
from imagegate.services.quotas import QuotaService
from imagegate.services.repositories import RepositoryService
from imagegate.services.sessions import SessionService
from imagegate.services.signin import SignInService

# In the data directory: the generation's signal when the database is PostgreSQL.
GENERATION_FILE = "db-generation"

__all__ = [
    "AccessService",
    "AccountService",
    "AllowlistService",
    "AlreadyExists",
    "AuditService",
    "InvalidInput",
    "NotFound",
    "OrganizationService",
    "PublisherService",
    "QuotaService",
    "RepositoryService",
    "ServiceError",
    "Services",
    "SessionService",
    "SignInService",
    "TooManyAttempts",
    "close_services",
    "open_services",
    "running_services",
]


@dataclass(frozen=True)
class Services:
    """Every service, sharing one database; built by ``open_services``."""

    database: Database
    accounts: AccountService
    orgs: OrganizationService
    repositories: RepositoryService
    access: AccessService
    publishers: PublisherService
    allowlist: AllowlistService
    signin: SignInService  # the instance ``access`` consults: one cache of registry.json
    audit: AuditService
    sessions: SessionService
    quotas: QuotaService


async def open_services(
    settings: Settings, *, password_hasher: PasswordHasher | None = None
) -> Services:
    """Connect to the configured database, migrate it, and build every service.

    Raises ``ConfigError`` for an unusable database URL and ``DatabaseError`` when the
    database cannot be reached or migrated. ``password_hasher`` is for tests.
    """
    database = Database(settings.effective_database_url, signal=_signal(settings))
    try:
        await database.migrate()
    except BaseException:
        await database.dispose()
        raise
    publishers = PublisherService(database, settings.hub_api_url)
    signin = _signin(database, settings)
    accounts = AccountService(database, hasher=password_hasher)
    return Services(
        database=database,
        accounts=accounts,
        orgs=OrganizationService(database),
        repositories=RepositoryService(database),
        access=AccessService(database, publishers, signin=signin),
        publishers=publishers,
        allowlist=AllowlistService(database),
        signin=signin,
        audit=AuditService(database),
        sessions=SessionService(database, accounts, signin),
        quotas=QuotaService(database),
    )


def _signal(settings: Settings) -> GenerationSignal | None:
    """Where changes are published to every process using the database on this machine:
    beside a SQLite database (``Database``'s default), in the data directory for
    PostgreSQL. (Several machines need another signal: ``db.generation``.)"""
    if sqlite_path(settings.effective_database_url) is not None:
        return None
    return FileSignal(settings.data_dir / GENERATION_FILE)


def _signin(database: Database, settings: Settings) -> SignInService:
    # The data directory's registry.json may be created or removed at any time; an
    # explicitly configured one must exist (a missing one fails closed).
    return SignInService(
        database, settings.registry_json_path, missing_ok=settings.registry_json_optional
    )


async def close_services(services: Services) -> None:
    """Close the Hub client session and every database connection."""
    try:
        await services.publishers.close()
    finally:
        await services.database.dispose()


@asynccontextmanager
async def running_services(
    settings: Settings, *, password_hasher: PasswordHasher | None = None
) -> AsyncIterator[Services]:
    """``open_services`` and ``close_services`` around a block."""
    services = await open_services(settings, password_hasher=password_hasher)
    try:
        yield services
    finally:
        await close_services(services)
