"""Private content stays private: what a hosted repository holds is never served under a
proxied name, however an upstream manifest names it."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator

import pytest

from tests.http.conftest import Gateway
from tests.support.images import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_MANIFEST,
    sha256,
)
from tests.support.upstream import RegistryHttp, UpstreamRegistry

FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamRegistry]:
    """An upstream that takes foreign layers, as Docker Hub does (Windows base images)."""
    validation = {"manifests": {"urls": {"allow": ["^https://"]}}}
    directory = tmp_path_factory.mktemp("upstream")
    with UpstreamRegistry(directory, extra_config={"validation": validation}) as registry:
        yield registry


def _manifest(media_type: str, config_type: str, config: bytes, **fields: object) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_type, "digest": sha256(config), "size": len(config)},
        **fields,
    }
    return json.dumps(document).encode()


async def test_a_private_hosted_layer_is_never_served_through_a_proxied_name(
    gateway: Gateway, upstream: UpstreamRegistry
) -> None:
    """The attack: an upstream image whose manifest names the digest of a private layer
    (in an unknown ``blobs`` list, or as a foreign layer) and an anonymous blob GET."""
    secret = b"acme's private layer " + os.urandom(2048)
    digest = sha256(secret)
    pusher = RegistryHttp(gateway.url, "acme/secret", ("alice", "alice-password"))
    await asyncio.to_thread(pusher.upload_blob, digest, secret)  # the gateway serves us
    descriptor = {"mediaType": "application/octet-stream", "digest": digest, "size": len(secret)}

    attacker = RegistryHttp(upstream.url, "evil/app")
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    attacker.upload_blob(sha256(config), config)
    named = {
        "blobs": _manifest(OCI_MANIFEST, OCI_CONFIG, config, layers=[], blobs=[descriptor]),
        "foreign": _manifest(
            DOCKER_MANIFEST,
            DOCKER_CONFIG,
            config,
            layers=[{**descriptor, "mediaType": FOREIGN_LAYER, "urls": ["https://x.invalid/l"]}],
        ),
    }
    for tag, manifest in named.items():
        media_type = json.loads(manifest)["mediaType"]
        attacker.put_manifest(tag, manifest, media_type)

    token = await gateway.token("repository:evil/app:pull")  # anonymous
    auth = {"Authorization": f"Bearer {token}"}
    for tag, manifest in named.items():
        url = f"{gateway.url}/v2/evil/app/manifests/{tag}"
        async with gateway.session.get(url, headers=auth) as response:
            assert response.status == 200, tag
            assert await response.read() == manifest  # now cached, naming the digest
        for method in ("HEAD", "GET"):
            url = f"{gateway.url}/v2/evil/app/blobs/{digest}"
            async with gateway.session.request(method, url, headers=auth) as response:
                body = await response.read()
                assert response.status == 404, (tag, method, body[:200])
                assert secret not in body
                if method == "GET":
                    assert json.loads(body)["errors"][0]["code"] == "BLOB_UNKNOWN"
