"""The world the end-to-end tests pull from, and what a person expects to see.

Images: one per category, each distinct, so a digest proves which one was pulled.
Accounts: an owner, a member, a member of two organizations, a user in no organization
(and anonymous clients). Expectations are written out per case, never derived from the
product's policy code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tests.support.clients import ClientResult
from tests.support.gateway import Gateway


@dataclass(frozen=True)
class Seeded:
    """An image pushed to the upstream: where it is, and the digests that prove a pull."""

    repository: str
    tag: str
    digest: str
    layer_digests: tuple[str, ...]

    def reference(self, host: str) -> str:
        return f"{host}/{self.repository}:{self.tag}"

    def by_digest(self, host: str) -> str:
        return f"{host}/{self.repository}@{self.digest}"


# The category of each image for anyone outside the namespace's organization.
IMAGES: dict[str, tuple[str, str]] = {
    "official": ("library/alpine", "3"),
    "verified": ("verifiedco/tool", "1"),  # Hub (stub) badge: verified_publisher
    "admin_verified": ("adminpub/app", "1"),  # `imagegate publisher set ... verified_publisher`
    "sponsored": ("ossproject/lib", "1"),  # Hub (stub) badge: open_source
    "community": ("someone/thing", "1"),  # unknown to Hub (404)
    "acme": ("acme/app", "1"),  # organization acme's namespace, mirrored from the upstream's
    "globex": ("globex/tool", "1"),  # organization globex's namespace, mirrored too
}
IMAGE_KEYS = tuple(IMAGES)

HUB_BADGES = {
    "verifiedco": "verified_publisher",
    "ossproject": "open_source",
    "adminpub": "",  # Hub knows it, without a badge: the admin override makes it verified
}

PASSWORDS = {
    "alice": "alice-Pa55word",  # owner of acme
    "bob": "bob-Pa55word",  # member of acme
    "carol": "carol-Pa55word",  # member of acme and of globex
    "dave": "dave-Pa55word",  # in no organization
    "gina": "gina-Pa55word",  # owner of globex
}


def credentials(user: str | None) -> tuple[str, str] | None:
    """A user's credentials; ``None`` (anonymous) stays ``None``."""
    return None if user is None else (user, PASSWORDS[user])


def configure_world(gateway: Gateway) -> None:
    """Users, organizations, memberships and publisher overrides, all through the CLI."""
    for user, password in PASSWORDS.items():
        gateway.add_user(user, password, email=f"{user}@example.com")
    gateway.add_org("acme", owner="alice")
    gateway.add_member("acme", "bob")
    gateway.add_member("acme", "carol")
    gateway.add_org("globex", owner="gina")
    gateway.add_member("globex", "carol", team="members")
    for org in ("acme", "globex"):  # their upstream namespaces are theirs: mirror them
        gateway.cli("org", "set", org, "--upstream-namespace", org)
    gateway.set_publisher("adminpub", "verified_publisher")


# -- what a person expects to see --------------------------------------------------------

OFFICIAL_NOT_ALLOWED = "Docker Official Images are not allowed"
VERIFIED_NOT_ALLOWED = "Verified Publisher images are not allowed"
COMMUNITY_NOT_ALLOWED = "community images are not allowed"
SPONSORED_NOT_ALLOWED = "Sponsored OSS images count as community images, which are not allowed"

NOT_MEMBER_TEXT = "denied: requested access to the resource is denied"
SIGN_IN_TEXT = "unauthorized: authentication required"


@dataclass(frozen=True)
class Expect:
    """The outcome of one pull: the image, or a refusal and the text that says why."""

    kind: Literal["pull", "blocked", "not_member", "sign_in"]
    org: str = ""
    reason: str = ""

    def __str__(self) -> str:
        if self.kind == "blocked":
            return f"blocked-by-{self.org}"
        return self.kind


OK = Expect("pull")
NOT_MEMBER = Expect("not_member")  # an organization's namespace, signed in as an outsider
SIGN_IN = Expect("sign_in")  # an organization's namespace, anonymous


def blocked(org: str, reason: str) -> Expect:
    return Expect("blocked", org, reason)


def denial_text(repository: str, org: str, reason: str) -> str:
    """Docker Hub's message, as clients print it for a 403 ``DENIED``."""
    return f"denied: image access restricted: {repository} blocked for organization {org}: {reason}"


def check_pull(result: ClientResult, expect: Expect, image: Seeded) -> None:
    """Assert what the person running the client would check: exit code, digest, message."""
    if expect.kind == "pull":
        assert result.ok, f"expected a successful pull of {image.repository}\n{result.describe()}"
        assert result.digest == image.digest, (
            f"pulled {result.digest}, upstream has {image.digest}\n{result.describe()}"
        )
        return
    assert not result.ok, f"expected {expect} for {image.repository}\n{result.describe()}"
    if expect.kind == "blocked":
        text = denial_text(image.repository, expect.org, expect.reason)
    elif expect.kind == "not_member":
        text = NOT_MEMBER_TEXT
    else:
        text = SIGN_IN_TEXT
    assert text in result.stderr, f"expected {text!r} in the output\n{result.describe()}"
    if expect.kind in ("not_member", "sign_in"):
        assert image.repository in result.stderr, result.describe()
