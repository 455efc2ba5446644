"""Signing in and out: a failure says so, a session cookie is HTTP-only and SameSite."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.console.conftest import screenshot, sign_in
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e


def test_a_wrong_password_shows_a_message_and_signs_nobody_in(page: Page, gateway: Gateway) -> None:
    page.goto("/")  # the root leads to the console, which asks to sign in
    expect(page.get_by_role("heading", name="Sign in to imagegate")).to_be_visible()
    screenshot(page, "sign-in")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password or access token").fill("not-her-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Incorrect username, password or access token.")
    expect(page.get_by_label("Username")).to_have_value("alice")
    screenshot(page, "sign-in-failed")
    answer = page.goto("/console/tokens")
    assert answer is not None
    assert "/console/sign-in" in page.url


def test_the_session_cookie_is_http_only_and_sign_out_ends_it(
    page: Page, context: BrowserContext, gateway: Gateway
) -> None:
    sign_in(page, "alice")
    [cookie] = context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax", cookie
    assert cookie["path"] == "/console"
    assert not cookie["secure"], "plain http: a Secure cookie would never come back"
    screenshot(page, "organizations")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    page.goto("/console/")
    assert "/console/sign-in" in page.url


def test_a_tampered_session_cookie_is_not_accepted(
    page: Page, context: BrowserContext, gateway: Gateway
) -> None:
    sign_in(page, "bob")
    [cookie] = context.cookies()
    body, _, mac = cookie["value"].partition(".")
    forged = body.replace(body[:4], "eyJ1", 1) + "." + mac[::-1]
    context.clear_cookies()
    context.add_cookies([{**cookie, "value": forged}])
    page.goto("/console/")
    assert "/console/sign-in" in page.url
