"""Signing in and out: a failure says so, a session cookie is HTTP-only and SameSite, and
a session lasts only as long as its credential: signing out kills every copy of the
cookie, deactivating the token it was made with signs it out, and a read-only token's
session looks but changes nothing."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.console.conftest import ORG, PASSWORDS, screenshot, sign_in
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
    # A copy of the cookie taken before signing out (a stolen one) is dead too.
    context.clear_cookies()
    context.add_cookies([cookie])
    page.goto("/console/")
    assert "/console/sign-in" in page.url


def test_deactivating_the_token_you_signed_in_with_signs_you_out(
    page: Page, gateway: Gateway
) -> None:
    secret = gateway.create_token("bob", "this-browser")
    sign_in(page, "bob", secret)
    page.get_by_role("link", name="Access tokens").click()
    # A token session manages no tokens: bob deactivates it signed in with his password.
    expect(page.get_by_role("button", name="Deactivate token this-browser")).to_be_disabled()
    login = page.request.post(
        "/v2/users/login", data={"username": "bob", "password": PASSWORDS["bob"]}
    )
    bearer = {"Authorization": f"Bearer {login.json()['token']}"}
    listed = page.request.get("/v2/access-tokens", headers=bearer).json()["results"]
    [uuid] = [t["uuid"] for t in listed if t["token_label"] == "this-browser"]
    revoked = page.request.patch(
        f"/v2/access-tokens/{uuid}", data={"is_active": False}, headers=bearer
    )
    assert revoked.status == 200, revoked.text()
    page.get_by_role("link", name="Access tokens").click()
    expect(page.get_by_role("heading", name="Sign in to imagegate")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text(
        "You were signed out, or the access token you signed in with was deactivated or deleted."
    )
    screenshot(page, "sign-in-token-deactivated")


def test_a_read_only_token_looks_but_changes_nothing(page: Page, gateway: Gateway) -> None:
    login = page.request.post(
        "/v2/users/login", data={"username": "alice", "password": PASSWORDS["alice"]}
    )
    bearer = {"Authorization": f"Bearer {login.json()['token']}"}
    created = page.request.post(
        "/v2/access-tokens",
        data={"token_label": "read-only", "scopes": ["repo:read"]},
        headers=bearer,
    )
    assert created.status == 201, created.text()
    sign_in(page, "alice", created.json()["token"])  # alice owns acme

    page.get_by_role("link", name="Access tokens").click()  # its tokens, read-only
    expect(page.get_by_role("cell", name="read-only", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Create token")).to_be_disabled()

    page.goto(f"/console/orgs/{ORG}/image-access")  # an owner's page, read-only, and why
    expect(page.get_by_role("note").first).to_have_text(
        "You signed in with a read-only access token: you can look, but not change "
        "anything. Sign in with your password to make changes."
    )
    expect(page.get_by_role("button", name="Save changes")).to_be_disabled()
    screenshot(page, "image-access-read-only-token")


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
