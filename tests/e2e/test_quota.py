"""An organization's storage quota with real clients: a push that would go past it is
refused with Docker Hub's ``denied:`` and a message naming the quota and the usage, and
leaves nothing behind; after the administrator raises the quota the same push works and
``imagegate org show`` counts it.

Configured through the CLI only: ``alice`` owns ``acme``, whose quota is set with
``imagegate org set acme --quota``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.clients import Podman, Skopeo, podman_push, skopeo_push
from tests.support.gateway import Gateway
from tests.support.images import Image, build_image, write_oci_layout
from tests.support.images import push_image as upstream_push
from tests.support.upstream import UpstreamRegistry

pytestmark = pytest.mark.e2e

ALICE = ("alice", "alice-Pa55word")


@pytest.fixture(scope="module")
def gateway(start_gateway: Callable[..., Gateway], upstream: UpstreamRegistry) -> Gateway:
    gateway = start_gateway(upstream_url=upstream.url)
    gateway.add_user(*ALICE)
    gateway.add_org("acme", owner="alice")
    return gateway


@pytest.fixture(scope="module")
def big_image() -> Image:
    return build_image("quota-e2e-big", padding=600 * 1024)  # a layer of about 600 KiB


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory, big_image: Image) -> Path:
    directory = tmp_path_factory.mktemp("quota-layout")
    write_oci_layout(build_image("quota-e2e-small"), directory, "small")
    write_oci_layout(big_image, directory, "big")
    return directory


def _nothing_left(gateway: Gateway) -> None:
    uploads = gateway.data_dir / "cache" / "hosted" / "uploads"
    assert not uploads.exists() or os.listdir(uploads) == []


def test_a_push_past_the_quota_is_refused_with_the_quota_and_usage(
    gateway: Gateway,
    upstream: UpstreamRegistry,
    layout: Path,
    big_image: Image,
    skopeo: Skopeo,
    podman: Podman,
) -> None:
    small = skopeo_push(skopeo, f"oci:{layout}:small", f"{gateway.host}/acme/small:1", ALICE)
    assert small.ok, small.describe()
    gateway.cli("org", "set", "acme", "--quota", "512KiB")
    before = gateway.cli("org", "show", "acme").stdout
    assert "repositories  1\n" in before and "used of a 512.0 KiB quota" in before

    refused = skopeo_push(skopeo, f"oci:{layout}:big", f"{gateway.host}/acme/big:1", ALICE)
    assert not refused.ok, refused.describe()
    message = "denied: storage quota of acme exceeded: this push needs "
    assert message in refused.stderr, refused.describe()
    assert "of its 512.0 KiB quota; delete images acme no longer needs" in refused.stderr
    assert "(imagegate org set acme --quota SIZE)" in refused.stderr
    _nothing_left(gateway)
    assert gateway.cli("org", "show", "acme").stdout == before  # nothing counted, no repository

    # podman, with the image from elsewhere, is told the same.
    upstream_push(upstream.url, "quota/big", "1", big_image)
    loaded = podman.pull(f"{upstream.host}/quota/big:1")
    assert loaded.ok, loaded.describe()
    pushed = podman_push(
        podman, f"{upstream.host}/quota/big:1", f"{gateway.host}/acme/big:1", ALICE
    )
    assert not pushed.ok and message in pushed.stderr, pushed.describe()
    _nothing_left(gateway)
    assert gateway.cli("org", "show", "acme").stdout == before

    gateway.cli("org", "set", "acme", "--quota", "20MiB")
    pushed = podman_push(
        podman, f"{upstream.host}/quota/big:1", f"{gateway.host}/acme/big:1", ALICE
    )
    assert pushed.ok, pushed.describe()
    shown = gateway.cli("org", "show", "acme").stdout
    assert "repositories  2\n" in shown and "of a 20.0 MiB quota" in shown
    copied = skopeo.pull(f"{gateway.host}/acme/big:1", ALICE)
    assert copied.ok and copied.digest == pushed.digest, copied.describe()
