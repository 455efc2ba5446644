"""Signing in through the console's form is recorded in the audit trail as a login.

A success and a failure (a wrong password; and a name nobody has) by a person at the
browser, each an ``auth.login`` event with ``data.via == "console"``, the browser's
address and user agent. The events are read from the gateway's database through the
product's audit service; the recorder writes in batches, so the test polls until they
are there (or a deadline passes). A user of this module's own keeps other console tests'
sign-ins out of the comparison.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from imagegate.audit.events import AuditEvent
from imagegate.db import Database
from imagegate.services.audit import AuditQuery, AuditService
from tests.console.conftest import sign_in
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e

USER, PASSWORD = "lena", "lena-Pa55word"
STRANGER = "no-such-person"
DEADLINE_SECONDS = 30.0


@pytest.fixture(scope="module")
def lena(gateway: Gateway) -> str:
    gateway.add_user(USER, PASSWORD)
    return USER


def _logins(gateway: Gateway, actor: str) -> list[AuditEvent]:
    url = gateway.database_url or f"sqlite:///{gateway.data_dir / 'imagegate.db'}"

    async def run() -> list[AuditEvent]:
        database = Database(url)
        try:
            return await AuditService(database).query(AuditQuery(user=actor, action="auth.login"))
        finally:
            await database.dispose()

    # In a thread of its own: Playwright's sync API owns this thread's event loop.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def _wait_for_logins(gateway: Gateway, actor: str, count: int) -> list[AuditEvent]:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while len(events := _logins(gateway, actor)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return events


def _fields(event: AuditEvent) -> dict[str, Any]:
    return {
        "action": event.action,
        "actor": event.actor,
        "decision": event.decision,
        "outcome": event.outcome,
        "reason": event.reason,
        "via": event.data.get("via"),
    }


def _fail_sign_in(page: Page, user: str, password: str) -> None:
    page.goto("/console/sign-in")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password or access token").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Incorrect username, password or access token.")


def test_console_sign_ins_are_recorded_as_logins(page: Page, gateway: Gateway, lena: str) -> None:
    _fail_sign_in(page, lena, "not-her-password")
    sign_in(page, lena, PASSWORD)
    user_agent = page.evaluate("navigator.userAgent")

    events = _wait_for_logins(gateway, lena, 2)
    failure = {
        "action": "auth.login",
        "actor": lena,
        "decision": "denied",
        "outcome": "failure",
        "reason": "incorrect username or password",
        "via": "console",
    }
    success = {**failure, "decision": "allowed", "outcome": "success", "reason": ""}
    assert [_fields(event) for event in events] == [failure, success]
    for event in events:
        assert event.client_ip == "127.0.0.1", event
        assert event.user_agent == user_agent, event
        assert event.repository is None and event.account is None, event


def test_a_failed_sign_in_with_an_unknown_name_records_the_name_given(
    page: Page, gateway: Gateway
) -> None:
    _fail_sign_in(page, STRANGER, "anything-at-all")
    events = _wait_for_logins(gateway, STRANGER, 1)
    assert [_fields(event) for event in events] == [
        {
            "action": "auth.login",
            "actor": STRANGER,
            "decision": "denied",
            "outcome": "failure",
            "reason": "incorrect username or password",
            "via": "console",
        }
    ]
