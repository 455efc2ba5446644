"""Personal access tokens: the secret is shown once, copies, and pulls through the gateway."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.console.conftest import Seeded, reset_settings, screenshot, sign_in
from tests.support.clients import Skopeo
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e


def test_a_new_token_is_shown_once_copies_and_pulls(
    page: Page,
    context: BrowserContext,
    gateway: Gateway,
    images: dict[str, Seeded],
    skopeo: Skopeo,
) -> None:
    reset_settings(gateway, "--enable")
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, "bob")
    page.get_by_role("link", name="Access tokens").click()
    page.get_by_label("Description").fill("laptop")
    page.get_by_role("button", name="Create token").click()

    secret = page.locator("#new-token-secret").inner_text().strip()
    assert secret.startswith("dckr_pat_") or len(secret) >= 20, secret
    expect(page.get_by_text("it will not be shown again")).to_be_visible()
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.locator("#copy-status")).to_have_text("Token copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    expect(page.get_by_role("cell", name="laptop", exact=True)).to_be_visible()
    screenshot(page, "tokens-new")

    page.goto("/console/tokens")
    assert secret not in page.content(), "the secret must never be shown again"

    official = images["official"]
    pulled = skopeo.pull(official.reference(gateway.host), ("bob", secret))
    assert pulled.ok, pulled.describe()
    assert pulled.digest == official.digest

    page.get_by_role("button", name="Deactivate token laptop").click()
    expect(page.get_by_role("status")).to_have_text("Token deactivated: it no longer signs in.")
    screenshot(page, "tokens")
    refused = skopeo.pull(official.reference(gateway.host), ("bob", secret))
    assert not refused.ok, refused.describe()
