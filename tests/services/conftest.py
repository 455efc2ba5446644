"""Services on a fresh database of each backend, with cheap password hashing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest

from imagegate.auth.passwords import PasswordHasher
from imagegate.db import Database
from imagegate.services import (
    AccessService,
    AccountService,
    AllowlistService,
    AuditService,
    OrganizationService,
    PublisherService,
    QuotaService,
    RepositoryService,
    Services,
    SessionService,
    SignInService,
)
from tests.db.fixtures import database, database_url

__all__ = ["database", "database_url"]

MakeServices = Callable[..., Services]  # (hub_api_url="", *, timeout, monotonic)


@pytest.fixture
async def make_services(database: Database) -> AsyncIterator[MakeServices]:
    """Build a ``Services`` on the test database, its publisher lookups as configured."""
    built: list[Services] = []

    def make(
        hub_api_url: str = "",
        *,
        timeout: float = 3.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> Services:
        publishers = PublisherService(database, hub_api_url, timeout, monotonic=monotonic)
        signin = SignInService(database, None)  # sign-in not enforced
        accounts = AccountService(database, hasher=PasswordHasher.fast_for_tests())
        services = Services(
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
        built.append(services)
        return services

    yield make
    for services in built:
        await services.publishers.close()


@pytest.fixture
def services(make_services: MakeServices) -> Services:
    return make_services()
