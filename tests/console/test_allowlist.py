"""The repository allowlist on the Image Access page: an owner's entry lets members pull."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import (
    ORG,
    PASSWORDS,
    Seeded,
    reset_settings,
    screenshot,
    settings_of,
    sign_in,
)
from tests.support.clients import Skopeo
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e


def test_an_allowlisted_community_image_is_pullable_until_removed(
    page: Page, gateway: Gateway, images: dict[str, Seeded], skopeo: Skopeo
) -> None:
    reset_settings(gateway, "--enable")
    community = images["community"]
    reference = community.reference(gateway.host)
    bob = ("bob", PASSWORDS["bob"])
    assert not skopeo.pull(reference, bob).ok

    sign_in(page, "alice")
    page.goto(f"/console/orgs/{ORG}/image-access")
    field = page.get_by_role("textbox", name="Repository", exact=True)
    field.fill("Not/Valid!")
    page.get_by_role("button", name="Add to allowlist").click()
    expect(page.get_by_role("alert")).to_contain_text("Bad repository name")
    expect(field).to_have_value("Not/Valid!")

    field.fill(f"{community.repository}:{community.tag}")
    field.press("Enter")  # the keyboard submits it too
    expect(page.get_by_role("status").first).to_have_text("Repository added to the allowlist.")
    expect(page.locator(".allowlist")).to_contain_text(community.repository)
    expect(page.locator("#effect")).to_contain_text("the 1 allowlisted repository")
    assert settings_of(gateway)["allowlist"] == [community.repository]
    screenshot(page, "image-access-allowlist")

    pulled = skopeo.pull(reference, bob)
    assert pulled.ok, pulled.describe()
    assert pulled.digest == community.digest

    page.get_by_role("button", name=f"Remove {community.repository} from the allowlist").click()
    expect(page.get_by_role("status").first).to_have_text("Repository removed from the allowlist.")
    assert settings_of(gateway)["allowlist"] == []
    assert not skopeo.pull(reference, bob).ok
