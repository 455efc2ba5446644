"""Browser tests of the web console: Playwright driving Debian's chromium.

One gateway serves the whole console suite, in front of a real ``docker-registry``
upstream seeded with a verified publisher image (made one with ``imagegate publisher
set``), an official image and a community image. Users and the organization are made
with the admin CLI; everything else happens in the browser. Tests that depend on the
image access settings set them first.

Screenshots of every page, at a desktop and a phone viewport, go to
``test-artifacts/console/``. In CI (``CI=true``) nothing here may skip.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.e2e.binaries import fail_skip_in_ci, require_binary
from tests.e2e.binaries import skopeo as skopeo
from tests.e2e.binaries import upstream as upstream
from tests.support.gateway import Gateway
from tests.support.images import build_image, push_image
from tests.support.upstream import UpstreamRegistry

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}

PASSWORDS = {
    "alice": "alice-Pa55word",  # owner of acme
    "bob": "bob-Pa55word",  # member of acme
    "dave": "dave-Pa55word",  # in no organization
}
ORG = "acme"


@dataclass(frozen=True)
class Seeded:
    repository: str
    tag: str
    digest: str

    def reference(self, host: str) -> str:
        return f"{host}/{self.repository}:{self.tag}"


IMAGES = {
    "verified": ("verifiedco/tool", "1"),  # `imagegate publisher set verifiedco verified_publisher`
    "official": ("library/alpine", "3"),
    "community": ("someone/thing", "1"),
}


@pytest.fixture(scope="session")
def images(upstream: UpstreamRegistry) -> dict[str, Seeded]:
    seeded = {}
    for key, (repository, tag) in IMAGES.items():
        digest = push_image(upstream.url, repository, tag, build_image(f"console-{key}", layers=1))
        seeded[key] = Seeded(repository, tag, digest)
    return seeded


@pytest.fixture(scope="session")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    upstream: UpstreamRegistry,
    images: dict[str, Seeded],
) -> Iterator[Gateway]:
    started = Gateway(tmp_path_factory.mktemp("console-gateway"), upstream_url=upstream.url)
    started.start()
    try:
        for user, password in PASSWORDS.items():
            started.add_user(user, password)
        started.add_org(ORG, owner="alice")
        started.add_member(ORG, "bob")
        started.set_publisher("verifiedco", "verified_publisher")
        yield started
    finally:
        status = started.stop()
    assert Gateway.clean_exit(status), f"imagegate serve exited with {status}"


# Package scope, not session: Playwright's sync API runs an event loop in this thread
# until it stops, and the asyncio tests that run after the console's need it gone.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    require_binary("chromium")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture
def context(browser: Browser, gateway: Gateway) -> Iterator[BrowserContext]:
    opened = browser.new_context(base_url=gateway.url, viewport=DESKTOP)
    opened.set_default_timeout(15_000)
    yield opened
    opened.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, user: str, secret: str | None = None) -> None:
    """Sign in through the form, as a person would, and land on the organizations page."""
    page.goto("/console/sign-in")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password or access token").fill(secret or PASSWORDS[user])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/")


def screenshot(page: Page, name: str) -> None:
    """Save the page as it looks on a desktop and on a phone (full page, both)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    viewport = page.viewport_size or DESKTOP
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(ARTIFACTS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(ARTIFACTS / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size({"width": viewport["width"], "height": viewport["height"]})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    fail_skip_in_ci(report, "a console test")


def settings_of(gateway: Gateway) -> dict[str, Any]:
    """The organization's settings as the admin CLI reports them (Hub's JSON shape)."""
    shown = gateway.cli("image-access", "show", ORG, "--json")
    document: dict[str, Any] = json.loads(shown.stdout)
    return document


def reset_settings(gateway: Gateway, *flags: str) -> None:
    """Defaults (disabled; official and verified allowed; community restricted), then flags."""
    gateway.set_image_access(
        ORG,
        "--disable",
        "--official",
        "allowed",
        "--verified-publishers",
        "allowed",
        "--community",
        "restricted",
    )
    if flags:
        gateway.set_image_access(ORG, *flags)


def csrf_token(page: Page) -> str:
    """The CSRF token of the page's forms (what a crafted request would copy)."""
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token, "the page has no CSRF token"
    return token
