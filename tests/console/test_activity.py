"""The Activity page: an owner reads the audit trail, filters it and reads its charts.

The events are written straight into the gateway's database with known timestamps (a
few hours back, placed inside their hourly buckets), so the table, the bars' titles and
the ranking are exact. They belong to an organization of this module's own, ``globex``,
so the pulls other console tests make through ``acme`` never reach these numbers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import insert

from imagegate.audit.events import LOGIN, PULL, AuditEvent
from imagegate.db import Database
from imagegate.db.models import AuditRecord
from imagegate.http.console.charts import TIMELINES
from tests.console.conftest import screenshot, sign_in
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e

ORG = "globex"
OWNER, MEMBER = "olga", "mike"
PASSWORDS = {OWNER: "olga-Pa55word", MEMBER: "mike-Pa55word"}
SCREENSHOT = Path("/tmp/imagegate-activity.png")
HOUR = dt.timedelta(hours=1)
NOW = dt.datetime.now(dt.UTC)
TOP_OF_HOUR = NOW.replace(minute=0, second=0, microsecond=0)
RESTRICTED = "community images are restricted in globex"
LOGINS = 51  # one more than a page of events


def _pull(
    hours_ago: int,
    minute: int,
    actor: str | None,
    image: str,
    decision: str,
    *,
    account: str = ORG,
    orgs: tuple[str, ...] = (ORG,),
    reason: str = "",
) -> AuditEvent:
    """A pull decision, ``minute`` minutes into the hour ``hours_ago`` hours back."""
    repository, _, reference = image.partition(":")
    return AuditEvent(
        PULL,
        timestamp=TOP_OF_HOUR - hours_ago * HOUR + dt.timedelta(minutes=minute),
        actor=actor,
        account=account,
        orgs=orgs if actor else (),
        name=repository,
        repository=repository,
        reference=reference,
        decision=decision,
        reason=reason or ("allowed" if decision == "allowed" else RESTRICTED),
        client_ip="192.0.2.7" if actor else "198.51.100.9",
        user_agent="skopeo/1.13",
        data={"request": "manifest"},
    )


EVENTS = [
    *[_pull(2, 10 + i, MEMBER, "library/alpine:3", "allowed") for i in range(3)],
    *[_pull(2, 20 + i, MEMBER, "someone/thing:1", "denied") for i in range(2)],
    _pull(5, 15, None, "globex/private:1", "denied", reason="sign in to pull globex/private"),
    _pull(5, 25, OWNER, "someone/thing:latest", "allowed"),
    _pull(9, 5, MEMBER, "other/tool:2", "denied"),
    # Outside the last 24 hours, inside the last 7 days: other/tool then ranks first.
    *[_pull(30, 5 + i, MEMBER, "other/tool:2", "denied") for i in range(5)],
    # Another organization's refusal of a globex member: not globex's to show.
    _pull(3, 0, MEMBER, "initech/secret:1", "denied", account="initech", orgs=(ORG, "initech")),
    *[
        AuditEvent(
            LOGIN,
            timestamp=TOP_OF_HOUR - 20 * HOUR + dt.timedelta(seconds=i),
            actor=MEMBER,
            orgs=(ORG,),
            name=MEMBER,
            decision="allowed",
            client_ip="192.0.2.7",
        )
        for i in range(LOGINS)
    ],
]
# What the 24-hour chart must say, bucket by bucket (allowed, denied).
EXPECTED_BARS = {2: (3, 2), 5: (1, 1), 9: (0, 1)}


def _insert(url: str, events: Sequence[AuditEvent]) -> None:
    async def run() -> None:
        database = Database(url)
        try:
            async with database.write() as conn:
                await conn.execute(insert(AuditRecord).values([e.to_row() for e in events]))
        finally:
            await database.dispose()

    # In a thread of its own: Playwright's sync API owns this thread's event loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture(scope="module")
def seeded(gateway: Gateway) -> None:
    for user, password in PASSWORDS.items():
        gateway.add_user(user, password)
    gateway.add_org(ORG, owner=OWNER)
    gateway.add_member(ORG, MEMBER)
    url = gateway.database_url or f"sqlite:///{gateway.data_dir / 'imagegate.db'}"
    _insert(url, EVENTS)


def _bucket_name(hours_ago: int) -> str:
    return TIMELINES["24h"].bucket_name(TOP_OF_HOUR - hours_ago * HOUR)


def _titles(page: Page, chart: str) -> list[str]:
    return page.locator(f"#{chart} title").all_text_contents()


def _column(table: Locator, name: str) -> list[str]:
    headers = [h.strip() for h in table.locator("thead th").all_text_contents()]
    index = headers.index(name) + 1
    return [c.strip() for c in table.locator(f"tbody td:nth-child({index})").all_inner_texts()]


def _events(page: Page) -> Locator:
    return page.get_by_role("region", name="Events").get_by_role("table")


def _open_activity(page: Page) -> None:
    sign_in(page, OWNER, PASSWORDS[OWNER])
    page.get_by_role("link", name=ORG, exact=True).click()
    page.get_by_role("navigation", name="Organization").get_by_role("link", name="Activity").click()
    page.wait_for_url(f"**/console/orgs/{ORG}/activity")


def test_an_owner_sees_the_trail_the_pulls_over_time_and_the_most_denied(
    page: Page, seeded: None
) -> None:
    _open_activity(page)
    expect(page.get_by_role("link", name="Activity")).to_have_attribute("aria-current", "page")

    table = _events(page)
    refusals = table.get_by_role("row", name=f"{MEMBER} Pull ✕ Denied someone/thing:1 {RESTRICTED}")
    expect(refusals).to_have_count(2)
    anonymous = table.get_by_role("row").filter(has_text="globex/private:1")
    expect(anonymous).to_contain_text("anonymous")
    expect(anonymous).to_contain_text("sign in to pull globex/private")
    expect(anonymous).to_contain_text("198.51.100.9")
    expect(table).not_to_contain_text("initech/secret")
    times = _column(table, "Time (UTC)")
    assert times == sorted(times, reverse=True), "newest first"

    titles = _titles(page, "pull-chart")
    assert len(titles) == 24
    for hours_ago, (allowed, denied) in EXPECTED_BARS.items():
        assert f"{_bucket_name(hours_ago)}: {allowed} allowed, {denied} denied" in titles
    assert sum(1 for t in titles if not t.endswith(": 0 allowed, 0 denied")) == 3
    expect(page.get_by_role("region", name="Pulls over time")).to_contain_text(
        "4 allowed and 4 denied pulls"
    )
    expect(page.locator("#pull-chart")).to_have_attribute(
        "aria-label", "Pulls over time: 4 allowed and 4 denied pulls"
    )

    ranking = _titles(page, "denied-chart")
    assert ranking[0] == "someone/thing: 2 denied pulls"
    assert sorted(ranking[1:]) == ["globex/private: 1 denied pull", "other/tool: 1 denied pull"]

    screenshot(page, "activity")
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_filters_narrow_the_table_and_keep_their_values(page: Page, seeded: None) -> None:
    _open_activity(page)
    page.get_by_label("Decision").select_option("denied")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"decision=denied"))
    expect(page.get_by_label("Decision")).to_have_value("denied")
    decisions = _column(_events(page), "Decision")
    assert decisions and set(decisions) == {"✕ Denied"}
    assert sorted(_column(_events(page), "Repository or subject")) == [
        "globex/private:1",
        "other/tool:2",
        "someone/thing:1",
        "someone/thing:1",
    ]
    # The charts still show both decisions: they are about pulls, not about this filter.
    expect(page.locator("#pull-chart")).to_have_attribute(
        "aria-label", "Pulls over time: 4 allowed and 4 denied pulls"
    )

    page.get_by_label("Decision").select_option("")
    page.get_by_label("User").fill(OWNER)
    page.get_by_label("Action").select_option("registry")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"user=olga"))
    expect(page.get_by_label("User")).to_have_value(OWNER)
    expect(page.get_by_label("Action")).to_have_value("registry")
    assert _column(_events(page), "Who") == [OWNER]
    assert _column(_events(page), "Repository or subject") == ["someone/thing:latest"]
    titles = _titles(page, "pull-chart")
    assert f"{_bucket_name(5)}: 1 allowed, 0 denied" in titles

    page.get_by_label("User").fill("")
    page.get_by_label("Repository").fill("alpine")  # as docker spells it: library/alpine
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"repository=alpine"))
    assert _column(_events(page), "Repository or subject") == ["library/alpine:3"] * 3
    assert f"{_bucket_name(2)}: 3 allowed, 0 denied" in _titles(page, "pull-chart")
    expect(page.locator("#no-denials")).to_be_visible()


def test_a_wider_window_and_a_ranked_bar_lead_to_the_refusals(page: Page, seeded: None) -> None:
    _open_activity(page)
    page.get_by_label("Time window").select_option("7d")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"since=7d"))
    expect(page.get_by_label("Time window")).to_have_value("7d")
    assert _titles(page, "denied-chart")[0] == "other/tool: 6 denied pulls"
    assert len(_titles(page, "pull-chart")) == 28

    page.get_by_role("listitem", name="other/tool: 6 denied pulls").click()
    page.wait_for_url(re.compile(r"repository=other%2Ftool"))
    expect(page.get_by_label("Repository")).to_have_value("other/tool")
    expect(page.get_by_label("Decision")).to_have_value("denied")
    expect(page.get_by_label("Time window")).to_have_value("7d")
    assert _column(_events(page), "Repository or subject") == ["other/tool:2"] * 6


def test_events_come_in_pages_of_fifty(page: Page, seeded: None) -> None:
    sign_in(page, OWNER, PASSWORDS[OWNER])
    page.goto(f"/console/orgs/{ORG}/activity?action=auth")
    assert len(_column(_events(page), "Who")) == 50
    expect(page.get_by_role("region", name="Events")).to_contain_text("1 to 50, newest first")
    page.get_by_role("link", name="Older").click()
    expect(page.get_by_role("region", name="Events")).to_contain_text("51 to ")
    assert _column(_events(page), "Action")[-1] == "Login"
    expect(page.get_by_label("Action")).to_have_value("auth")
    page.get_by_role("link", name="Newer").click()
    assert len(_column(_events(page), "Who")) == 50


def test_bad_filters_are_explained_not_obeyed(page: Page, seeded: None) -> None:
    sign_in(page, OWNER, PASSWORDS[OWNER])
    response = page.goto(f"/console/orgs/{ORG}/activity?repository=Not+A+Name&decision=maybe")
    assert response is not None and response.status == 400
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Decision is allowed or denied.")
    expect(alert).to_contain_text("Bad repository name")
    expect(page.get_by_label("Repository")).to_have_value("")
    expect(page.locator("#pull-chart")).to_be_visible()


def test_a_member_is_refused_and_is_not_shown_the_link(page: Page, seeded: None) -> None:
    sign_in(page, MEMBER, PASSWORDS[MEMBER])
    page.get_by_role("link", name=ORG, exact=True).click()
    tabs = page.get_by_role("navigation", name="Organization")
    expect(tabs.get_by_role("link", name="Image Access")).to_be_visible()
    expect(tabs.get_by_role("link", name="Activity")).to_have_count(0)
    response = page.goto(f"/console/orgs/{ORG}/activity")
    assert response is not None and response.status == 403
    expect(page.get_by_role("main")).to_contain_text(f"Only owners of {ORG} can see this page.")
    expect(page.locator("#pull-chart")).to_have_count(0)


def test_an_outsider_does_not_learn_the_organization_exists(page: Page, seeded: None) -> None:
    sign_in(page, "dave")
    response = page.goto(f"/console/orgs/{ORG}/activity")
    assert response is not None and response.status == 404
