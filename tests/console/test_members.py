"""Organization home and members: owners add and remove people and teams in the browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import ORG, reset_settings, screenshot, sign_in
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e


def test_the_home_page_lists_members_teams_and_pending_actions(
    page: Page, gateway: Gateway
) -> None:
    reset_settings(gateway)
    sign_in(page, "alice")
    page.get_by_role("link", name=ORG, exact=True).click()
    members = page.get_by_role("region", name="Members and their teams")
    expect(members.get_by_role("row", name="bob members")).to_be_visible()
    expect(members.get_by_role("row", name="alice (you) owners")).to_be_visible()
    actions = page.get_by_role("region", name="Pending actions")
    expect(actions).to_contain_text("Image access is disabled")
    expect(actions).to_contain_text("alice is the only owner")
    screenshot(page, "org-home")


def test_an_owner_manages_members_and_teams(page: Page, gateway: Gateway) -> None:
    gateway.add_user("erin", "erin-Pa55word")
    sign_in(page, "alice")
    page.goto(f"/console/orgs/{ORG}/members")

    page.get_by_label("Username", exact=True).fill("nobody")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_role("alert")).to_contain_text("Unknown user")

    page.get_by_label("Username", exact=True).fill("erin")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_role("status")).to_have_text("Member added.")

    page.get_by_label("New team").fill("devs")
    page.get_by_role("button", name="Create team").click()
    expect(page.get_by_role("status")).to_have_text("Team created.")
    page.get_by_label("Add to devs").fill("erin")
    page.get_by_role("button", name="Add", exact=True).first.click()
    devs = page.get_by_role("region", name="devs")
    expect(devs).to_contain_text("erin")
    screenshot(page, "members")

    devs.get_by_role("button", name="Remove erin from team devs").click()
    expect(page.get_by_role("status")).to_have_text("Removed from the team.")
    expect(page.get_by_role("row", name="erin members")).to_be_visible()
    page.get_by_role("button", name="Remove erin from acme").click()
    expect(page.get_by_role("status")).to_have_text("Member removed from the organization.")
    expect(page.get_by_role("row", name="erin")).to_have_count(0)

    page.get_by_role("button", name="Remove alice from acme").click()
    expect(page.get_by_role("alert")).to_contain_text("last owner")


def test_a_member_sees_members_read_only(page: Page, gateway: Gateway) -> None:
    sign_in(page, "bob")
    page.goto(f"/console/orgs/{ORG}/members")
    expect(page.get_by_role("note")).to_contain_text("Only owners of acme can change")
    expect(page.get_by_role("button", name="Add member")).to_have_count(0)
    screenshot(page, "members-member")
