"""Pushing to an organization's own namespace with real clients, and pulling it back.

Accounts (configured through the CLI only): ``alice`` owns ``acme``; ``wendy`` is in team
``writers`` (write on the namespace), ``rita`` in team ``readers`` (read); ``dave`` is in
no organization. ``gina`` owns ``globex``, whose member ``carol`` is bound by globex's
image access policy (community images not allowed): for her, acme's public repository
is a community image like any other.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.binaries import require_binary
from tests.e2e.world import COMMUNITY_NOT_ALLOWED, SIGN_IN_TEXT, Seeded, denial_text
from tests.support.clients import Podman, Skopeo, podman_push, skopeo_push
from tests.support.gateway import Gateway
from tests.support.hubstub import HubStub
from tests.support.images import Image, build_image, build_index, write_oci_layout
from tests.support.images import push_image as upstream_push
from tests.support.upstream import UpstreamRegistry

pytestmark = pytest.mark.e2e

PASSWORDS = {
    "alice": "alice-Pa55word",
    "wendy": "wendy-Pa55word",
    "rita": "rita-Pa55word",
    "dave": "dave-Pa55word",
    "gina": "gina-Pa55word",
    "carol": "carol-Pa55word",
}


def creds(user: str) -> tuple[str, str]:
    return (user, PASSWORDS[user])


@pytest.fixture(scope="module")
def gateway(
    start_gateway: Callable[..., Gateway], upstream: UpstreamRegistry, hub: HubStub
) -> Gateway:
    gateway = start_gateway(upstream_url=upstream.url, hub_api_url=hub.url)
    for user, password in PASSWORDS.items():
        gateway.add_user(user, password)
    gateway.add_org("acme", owner="alice")
    for team, permission in (("writers", "write"), ("readers", "read")):
        gateway.cli("org", "team", "add", "acme", team)
        gateway.cli("team", "permission", "set", "acme", team, permission)
    gateway.add_member("acme", "wendy", team="writers")
    gateway.add_member("acme", "rita", team="readers")
    gateway.add_org("globex", owner="gina")
    gateway.add_member("globex", "carol")
    gateway.set_image_access("globex", "--enable")
    return gateway


@pytest.fixture(scope="module")
def app_image() -> Image:
    return build_image("push-e2e-app", layers=2, padding=256 * 1024)


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory, app_image: Image) -> Path:
    directory = tmp_path_factory.mktemp("layout")
    write_oci_layout(app_image, directory, "app")
    write_oci_layout(build_index("push-e2e-multi"), directory, "multi")
    write_oci_layout(build_image("push-e2e-private"), directory, "private")
    write_oci_layout(build_image("push-e2e-denied"), directory, "denied")
    return directory


@pytest.fixture(scope="module")
def pushed_app(
    gateway: Gateway, layout: Path, app_image: Image, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """``acme/app:1`` pushed by wendy (write permission) with skopeo."""
    require_binary("skopeo")
    skopeo = Skopeo(tmp_path_factory.mktemp("pusher"))
    result = skopeo_push(skopeo, f"oci:{layout}:app", f"{gateway.host}/acme/app:1", creds("wendy"))
    assert result.ok, result.describe()
    assert result.digest == app_image.digest, result.describe()
    return f"{gateway.host}/acme/app:1"


def test_skopeo_push_then_a_reader_copies_it_back_out(
    pushed_app: str, app_image: Image, skopeo: Skopeo
) -> None:
    pulled = skopeo.pull(pushed_app, creds("rita"))
    assert pulled.ok, pulled.describe()
    assert pulled.digest == app_image.digest, pulled.describe()
    pulled_by_digest = skopeo.pull(pushed_app.replace(":1", f"@{app_image.digest}"), creds("rita"))
    assert pulled_by_digest.digest == app_image.digest, pulled_by_digest.describe()
    destination = Path(pulled.args[-1].removeprefix("dir:"))
    for digest, data in app_image.blobs.items():
        assert (destination / digest.removeprefix("sha256:")).read_bytes() == data


def test_hosted_repositories_are_local_and_the_rest_of_the_namespace_only_when_mirrored(
    gateway: Gateway,
    upstream: UpstreamRegistry,
    images: dict[str, Seeded],
    pushed_app: str,
    app_image: Image,
    skopeo: Skopeo,
) -> None:
    """The upstream has its own acme/app:1; the pushed one is what the gateway serves.
    acme/upstream-only was never pushed here: it is unknown (the upstream's acme may be
    anyone's) until an owner mirrors the upstream namespace as acme's own."""
    assert images["acme"].repository == "acme/app" and images["acme"].digest != app_image.digest
    hosted = skopeo.inspect_raw(pushed_app, creds("rita"))
    assert hosted.digest == app_image.digest, hosted.describe()
    upstream_only = build_image("push-e2e-upstream-only")
    upstream_push(upstream.url, "acme/upstream-only", "1", upstream_only)
    reference = f"{gateway.host}/acme/upstream-only:1"
    unknown = skopeo.pull(reference, creds("rita"))
    assert not unknown.ok, unknown.describe()
    assert (
        "name unknown: repository acme/upstream-only is not hosted here, and organization "
        "acme's namespace is not mirrored from the upstream registry"
    ) in unknown.stderr, unknown.describe()
    assert "imagegate org set acme --upstream-namespace NAME" in unknown.stderr

    gateway.cli("org", "set", "acme", "--upstream-namespace", "acme")
    try:
        proxied = skopeo.pull(reference, creds("rita"))
        assert proxied.ok and proxied.digest == upstream_only.digest, proxied.describe()
        hosted = skopeo.inspect_raw(pushed_app, creds("rita"))  # hosted still wins
        assert hosted.digest == app_image.digest, hosted.describe()
    finally:
        gateway.cli("org", "set", "acme", "--no-upstream-namespace")


def test_multi_architecture_index(gateway: Gateway, layout: Path, skopeo: Skopeo) -> None:
    index = build_index("push-e2e-multi")
    reference = f"{gateway.host}/acme/multi:1"
    pushed = skopeo_push(skopeo, f"oci:{layout}:multi", reference, creds("wendy"), all_images=True)
    assert pushed.ok, pushed.describe()
    assert pushed.digest == index.digest, pushed.describe()
    raw = skopeo.inspect_raw(reference, creds("rita"))
    assert raw.digest == index.digest, raw.describe()
    for child in index.children:
        child_ref = f"{gateway.host}/acme/multi@{child.digest}"
        pulled = skopeo.pull(child_ref, creds("rita"))
        assert pulled.ok and pulled.digest == child.digest, pulled.describe()


def test_podman_push_and_pull(
    gateway: Gateway,
    upstream: UpstreamRegistry,
    images: dict[str, Seeded],
    tmp_path: Path,
) -> None:
    require_binary("podman")
    source = images["community"].reference(upstream.host)
    pusher = Podman(tmp_path / "podman-pusher")
    puller = Podman(tmp_path / "podman-puller")
    try:
        fetched = pusher.pull(source)
        assert fetched.ok, fetched.describe()
        destination = f"{gateway.host}/acme/podman:1"
        pushed = podman_push(pusher, source, destination, creds("wendy"))
        assert pushed.ok, pushed.describe()
        assert pushed.digest, pushed.describe()
        pulled = puller.pull(destination, creds("rita"))
        assert pulled.ok, pulled.describe()
        assert pulled.digest == pushed.digest, pulled.describe()
    finally:
        pusher.close()
        puller.close()


@pytest.mark.parametrize(
    ("user", "why"),
    [
        ("dave", "dave is not a member of organization acme"),
        ("rita", "rita has only read permission"),
    ],
    ids=["non-member", "read-only-member"],
)
def test_push_refused_with_a_clear_message(
    gateway: Gateway, layout: Path, skopeo: Skopeo, user: str, why: str
) -> None:
    result = skopeo_push(
        skopeo, f"oci:{layout}:denied", f"{gateway.host}/acme/denied:1", creds(user)
    )
    assert not result.ok, result.describe()
    assert "denied" in result.stderr, f"skopeo should print the refusal\n{result.describe()}"
    assert "acme/denied" in result.stderr, f"the message names the repository\n{result.describe()}"
    assert why in result.stderr, f"the message should say why ({why!r})\n{result.describe()}"
    check = skopeo.inspect_raw(f"{gateway.host}/acme/denied:1", creds("alice"))
    assert not check.ok, "nothing may have been pushed"


def test_push_to_a_proxied_namespace_is_unsupported(
    gateway: Gateway, layout: Path, skopeo: Skopeo
) -> None:
    result = skopeo_push(
        skopeo, f"oci:{layout}:denied", f"{gateway.host}/library/mine:1", creds("alice")
    )
    assert not result.ok, result.describe()
    assert "unsupported" in result.stderr.lower(), result.describe()


def test_a_public_repository_is_pulled_anonymously(
    gateway: Gateway, pushed_app: str, app_image: Image, skopeo: Skopeo, podman: Podman
) -> None:
    gateway.cli("repo", "set", "acme/app", "--visibility", "public")
    pulled = skopeo.pull(pushed_app, None)
    assert pulled.ok, pulled.describe()
    assert pulled.digest == app_image.digest, pulled.describe()
    by_podman = podman.pull(pushed_app, None)
    assert by_podman.ok and by_podman.digest == app_image.digest, by_podman.describe()
    outsider = skopeo.pull(pushed_app, creds("dave"))
    assert outsider.ok and outsider.digest == app_image.digest, outsider.describe()


def test_a_public_repository_is_a_community_image_for_other_orgs(
    gateway: Gateway, pushed_app: str, skopeo: Skopeo
) -> None:
    gateway.cli("repo", "set", "acme/app", "--visibility", "public")
    result = skopeo.pull(pushed_app, creds("carol"))
    assert not result.ok, result.describe()
    text = denial_text("acme/app", "globex", COMMUNITY_NOT_ALLOWED)
    assert text in result.stderr, f"expected {text!r}\n{result.describe()}"


def test_a_private_repository_is_refused_anonymously(
    gateway: Gateway, layout: Path, skopeo: Skopeo
) -> None:
    reference = f"{gateway.host}/acme/private:1"
    pushed = skopeo_push(skopeo, f"oci:{layout}:private", reference, creds("wendy"))
    assert pushed.ok, pushed.describe()
    result = skopeo.pull(reference, None)
    assert not result.ok, result.describe()
    assert SIGN_IN_TEXT in result.stderr, result.describe()
    outsider = skopeo.pull(reference, creds("dave"))
    assert not outsider.ok and "denied" in outsider.stderr, outsider.describe()


def _access_token(gateway: Gateway, user: str, scopes: list[str]) -> str:
    """A personal access token made through the management API, as a person would."""

    def post(path: str, body: dict[str, object], token: str = "") -> dict[str, str]:
        request = urllib.request.Request(
            f"{gateway.url}{path}", json.dumps(body).encode(), method="POST"
        )
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, str] = json.loads(response.read())
            return answer

    session = post("/v2/users/login", {"username": user, "password": PASSWORDS[user]})["token"]
    created = post("/v2/access-tokens", {"token_label": "e2e", "scopes": scopes}, session)
    return created["token"]


def test_a_public_read_token_pulls_public_repositories_only(
    gateway: Gateway, layout: Path, pushed_app: str, app_image: Image, skopeo: Skopeo
) -> None:
    """rita may read every repository of acme, but not with a repo:public_read token; and
    skopeo says why."""
    reference = f"{gateway.host}/acme/private:1"
    pushed = skopeo_push(skopeo, f"oci:{layout}:private", reference, creds("wendy"))
    assert pushed.ok, pushed.describe()
    gateway.cli("repo", "set", "acme/app", "--visibility", "public")
    public_read = ("rita", _access_token(gateway, "rita", ["repo:public_read"]))
    refused = skopeo.pull(reference, public_read)
    assert not refused.ok, refused.describe()
    assert (
        "denied: requested access to the resource is denied: the access token can pull public "
        "repositories only (scope repo:public_read), and acme/private is a private repository "
        "of organization acme"
    ) in refused.stderr, refused.describe()
    public = skopeo.pull(pushed_app, public_read)
    assert public.ok and public.digest == app_image.digest, public.describe()
    reader = ("rita", _access_token(gateway, "rita", ["repo:read"]))
    assert skopeo.pull(reference, reader).ok
