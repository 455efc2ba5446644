"""The Image Access page: an owner's change reaches the registry; members only look."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.console.conftest import (
    ORG,
    PASSWORDS,
    Seeded,
    csrf_token,
    reset_settings,
    screenshot,
    settings_of,
    sign_in,
)
from tests.support.clients import Skopeo
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e

VERIFIED_DENIAL = (
    "denied: image access restricted: verifiedco/tool blocked for organization acme: "
    "Verified Publisher images are not allowed"
)


def test_an_owner_restricts_verified_publishers_and_the_registry_denies_the_pull(
    page: Page, gateway: Gateway, images: dict[str, Seeded], skopeo: Skopeo
) -> None:
    reset_settings(gateway)
    verified = images["verified"].reference(gateway.host)
    before = skopeo.pull(verified, ("bob", PASSWORDS["bob"]))
    assert before.ok, before.describe()

    sign_in(page, "alice")
    page.get_by_role("link", name="Image Access").first.click()
    expect(page.get_by_text("Image access is disabled: members can pull any image")).to_be_visible()
    page.get_by_role("switch", name="Enable Image Access Management").check()
    verified_group = page.get_by_role("group", name="Verified Publisher images")
    verified_group.get_by_label("Restricted").check()
    page.get_by_role("button", name="Save changes").click()

    expect(page.get_by_role("status").first).to_contain_text("Image access settings saved")
    expect(page.locator("#effect")).to_have_text(
        "Members can pull acme's own images and Docker Official Images, but not Verified "
        "Publisher images or community images (including Sponsored OSS); owners can always "
        "pull everything."
    )
    expect(page.get_by_role("switch", name="Enable Image Access Management")).to_be_checked()
    screenshot(page, "image-access-owner")
    restricted = settings_of(gateway)["restricted_images"]
    assert restricted == {
        "enabled": True,
        "allow_official_images": True,
        "allow_verified_publishers": False,
    }

    denied = skopeo.pull(verified, ("bob", PASSWORDS["bob"]))
    assert not denied.ok, denied.describe()
    assert VERIFIED_DENIAL in denied.stderr, denied.describe()
    owner = skopeo.pull(verified, ("alice", PASSWORDS["alice"]))
    assert owner.ok, f"owners can always pull everything\n{owner.describe()}"


def test_a_member_sees_the_page_read_only_and_a_crafted_post_is_refused(
    page: Page, context: BrowserContext, gateway: Gateway
) -> None:
    reset_settings(gateway, "--enable")
    before = settings_of(gateway)
    sign_in(page, "bob")
    page.goto(f"/console/orgs/{ORG}/image-access")

    expect(page.get_by_role("note")).to_have_text(
        f"Only owners of {ORG} can change these settings; you see them read-only."
    )
    expect(page.get_by_role("switch", name="Enable Image Access Management")).to_be_disabled()
    for radio in page.get_by_role("radio").all():
        expect(radio).to_be_disabled()
    expect(page.get_by_role("button", name="Save changes")).to_be_disabled()
    expect(page.get_by_role("textbox", name="Repository", exact=True)).to_be_disabled()
    screenshot(page, "image-access-member")

    # The member copies a valid session and CSRF token into a hand-made request.
    token = csrf_token(page)
    crafted = {
        "csrf_token": token,
        "enabled": "",
        "official": "allowed",
        "verified": "allowed",
        "community": "allowed",
    }
    answer = context.request.post(f"/console/orgs/{ORG}/image-access", form=crafted)
    assert answer.status == 403, answer.text()
    assert "Only owners of acme can change this" in answer.text()
    allow = context.request.post(
        f"/console/orgs/{ORG}/image-access/allowlist/add",
        form={"csrf_token": token, "repository": "someone/thing"},
    )
    assert allow.status == 403, allow.text()
    assert settings_of(gateway) == before


def test_a_non_member_gets_not_found(page: Page, gateway: Gateway) -> None:
    sign_in(page, "dave")
    expect(page.get_by_text("You are not a member of any organization yet")).to_be_visible()
    for path in ("", "/image-access", "/members"):
        answer = page.goto(f"/console/orgs/{ORG}{path}")
        assert answer is not None and answer.status == 404
    answer = page.goto("/console/orgs/no-such-org/image-access")
    assert answer is not None and answer.status == 404


def test_a_post_without_the_csrf_token_changes_nothing(
    page: Page, context: BrowserContext, gateway: Gateway
) -> None:
    reset_settings(gateway)
    before = settings_of(gateway)
    sign_in(page, "alice")
    change = {"enabled": "on", "official": "restricted", "verified": "restricted"}
    change["community"] = "allowed"
    missing = context.request.post(f"/console/orgs/{ORG}/image-access", form=change)
    assert missing.status == 403, missing.text()
    assert "Nothing was changed" in missing.text()
    wrong = context.request.post(
        f"/console/orgs/{ORG}/image-access", form={**change, "csrf_token": "forged"}
    )
    assert wrong.status == 403, wrong.text()
    assert settings_of(gateway) == before


def test_try_a_pull_answers_with_the_registrys_reason(page: Page, gateway: Gateway) -> None:
    reset_settings(gateway, "--enable", "--verified-publishers", "restricted")
    sign_in(page, "alice")
    page.goto(f"/console/orgs/{ORG}/image-access")
    try_box = page.locator("#try")

    def ask(image: str, member: str) -> None:
        try_box.get_by_label("Image").fill(image)
        try_box.get_by_label("Member").fill(member)
        try_box.get_by_role("button", name="Check").click()

    ask("verifiedco/tool:1", "bob")
    answer = page.locator("#try-answer")
    expect(answer).to_contain_text("Denied: bob may not pull verifiedco/tool")
    expect(answer).to_contain_text(
        "image access restricted: verifiedco/tool blocked for organization acme: "
        "Verified Publisher images are not allowed"
    )
    screenshot(page, "try-a-pull-denied")

    ask(f"{gateway.host}/library/alpine:3", "bob")
    expect(answer).to_contain_text("Allowed: bob may pull library/alpine")
    expect(answer).to_contain_text("Docker Official Images are allowed by acme")

    ask("verifiedco/tool", "alice")
    expect(answer).to_contain_text("Allowed: alice may pull verifiedco/tool")
    expect(answer).to_contain_text("Owners may pull every image")
    expect(answer).to_contain_text("Verified Publisher images")

    ask("Not A Name!", "bob")
    expect(answer).to_contain_text("Bad image name")
    ask("nginx", "zed")
    expect(answer).to_contain_text("'zed' is not a member of acme")


def test_try_a_pull_tells_only_this_organizations_rules(page: Page, gateway: Gateway) -> None:
    """bob is also in initech, whose policy refuses community images: acme's page says
    nothing of it, neither initech's refusal nor that initech's namespace is bob's own."""
    reset_settings(gateway)
    gateway.add_user("ingrid", "ingrid-Pa55word")
    gateway.add_org("initech", owner="ingrid")
    gateway.add_member("initech", "bob")
    gateway.set_image_access("initech", "--enable", "--community", "restricted")
    try:
        sign_in(page, "alice")
        page.goto(f"/console/orgs/{ORG}/image-access")
        try_box = page.locator("#try")
        answer = page.locator("#try-answer")
        for image in ("someone/thing", "initech/tool"):
            try_box.get_by_label("Image").fill(image)
            try_box.get_by_label("Member").fill("bob")
            try_box.get_by_role("button", name="Check").click()
            expect(answer).to_contain_text(f"Allowed: bob may pull {image}")
            expect(answer.locator("dd").first).to_have_text("Community images")
            expect(answer.locator("dd.why")).not_to_contain_text("initech")
    finally:
        gateway.remove_member("initech", "bob")


def test_an_owner_mirrors_an_upstream_namespace_and_a_member_only_reads_it(
    page: Page, context: BrowserContext, gateway: Gateway
) -> None:
    sign_in(page, "alice")
    page.goto(f"/console/orgs/{ORG}/image-access")
    mirror = page.locator("#mirror")
    expect(mirror.locator("#mirror-state")).to_have_text("No upstream namespace is mirrored.")
    mirror.get_by_label("Upstream namespace").fill("Not/One")
    mirror.get_by_role("button", name="Save upstream namespace").click()
    expect(page.locator("#form-error")).to_contain_text("invalid upstream namespace 'Not/One'")
    assert settings_of(gateway)["upstream_namespace"] is None

    mirror.get_by_label("Upstream namespace").fill("acme-inc")
    mirror.get_by_role("button", name="Save upstream namespace").click()
    expect(page.get_by_role("status").first).to_contain_text("Upstream namespace saved")
    expect(mirror.locator("#mirror-state")).to_have_text(
        "Mirroring the upstream namespace acme-inc."
    )
    assert settings_of(gateway)["upstream_namespace"] == "acme-inc"
    screenshot(page, "image-access-upstream-namespace")

    member = context.browser.new_context(base_url=gateway.url) if context.browser else None
    assert member is not None
    try:
        bobs = member.new_page()
        sign_in(bobs, "bob")
        bobs.goto(f"/console/orgs/{ORG}/image-access")
        expect(bobs.locator("#mirror-state")).to_have_text(
            "Mirroring the upstream namespace acme-inc."
        )
        expect(bobs.get_by_role("textbox", name="Upstream namespace")).to_be_disabled()
        crafted = member.request.post(
            f"/console/orgs/{ORG}/image-access/upstream-namespace",
            form={"csrf_token": csrf_token(bobs), "upstream_namespace": ""},
        )
        assert crafted.status == 403, crafted.text()
    finally:
        member.close()
    assert settings_of(gateway)["upstream_namespace"] == "acme-inc"

    mirror.get_by_label("Upstream namespace").fill("")
    mirror.get_by_role("button", name="Save upstream namespace").click()
    expect(page.get_by_role("status").first).to_contain_text("hosted repositories only")
    assert settings_of(gateway)["upstream_namespace"] is None
