"""Private content stays private: what a hosted repository holds is never served under a
proxied name, however an upstream manifest names it."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator

import jwt
import pytest

from imagegate.core.names import parse_repository
from imagegate.core.permissions import Permission, Visibility
from tests.http.conftest import Gateway, basic
from tests.support.images import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_MANIFEST,
    sha256,
)
from tests.support.upstream import RegistryHttp, UpstreamRegistry

PUBLIC, PRIVATE = Visibility.PUBLIC, Visibility.PRIVATE
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


async def _answer(gateway: Gateway, method: str, path: str, token: str) -> tuple[int, list, bytes]:  # type: ignore[type-arg]
    """Status, headers (but the date) and body, as a client receives them."""
    headers = {"Authorization": f"Bearer {token}"}
    async with gateway.session.request(method, f"{gateway.url}{path}", headers=headers) as response:
        body = await response.read()
        kept = [(k, v) for k, v in response.raw_headers if k.lower() != b"date"]
        return response.status, kept, body


async def test_a_private_repository_and_nothing_are_refused_alike(gateway: Gateway) -> None:
    """Anonymous clients and non-members learn nothing from a name in an organization's
    namespace: the answers for a private repository and a missing one are the same bytes
    (the two names have the same length, so only the name differs)."""
    data = b"private " + os.urandom(64)
    pusher = RegistryHttp(gateway.url, "acme/secret", ("alice", "alice-password"))
    await asyncio.to_thread(pusher.upload_blob, sha256(data), data)  # acme/secret exists
    await gateway.services.accounts.create_user("dave", None, "dave-password")
    await gateway.services.orgs.add_org("globex", "dave")  # an owner elsewhere
    await gateway.services.access.set_upstream_namespace("acme", "acme")
    digest = sha256(data)
    requests = [
        ("GET", "/v2/acme/{}/manifests/latest"),
        ("HEAD", "/v2/acme/{}/manifests/latest"),
        ("GET", f"/v2/acme/{{}}/blobs/{digest}"),
        ("HEAD", f"/v2/acme/{{}}/blobs/{digest}"),
        ("GET", "/v2/acme/{}/tags/list"),
        ("GET", f"/v2/acme/{{}}/referrers/{digest}"),
    ]
    for who, expected in ((None, 401), (("dave", "dave-password"), 403)):
        for method, template in requests:
            answers = []
            for name in ("secret", "absent"):
                token = await gateway.token(f"repository:acme/{name}:pull", who)
                status, headers, body = await _answer(gateway, method, template.format(name), token)
                if name == "secret":  # the name itself is the one difference allowed
                    body = body.replace(b"secret", b"absent")
                    headers = [(k, v.replace(b"secret", b"absent")) for k, v in headers]
                answers.append((status, headers, body))
            assert answers[0] == answers[1], (who, method, template)
            assert answers[0][0] == expected, (who, method, template, answers[0])
    # A member, though, is told what is there.
    member = await gateway.token("repository:acme/secret:pull", ("bob", "bob-password"))
    status, _, body = await _answer(gateway, "GET", "/v2/acme/secret/manifests/latest", member)
    assert status == 403 and b"acme/secret is a private repository of organization acme" in body


async def _public_read_token_of_a_reader(gateway: Gateway, private: str) -> str:
    """Push acme's ``private`` repository and the public acme/site; give bob read on all
    of acme (his team's permission on the namespace); the secret of his new
    ``repo:public_read`` token."""
    for name in (private, "acme/site"):
        pusher = RegistryHttp(gateway.url, name, ("alice", "alice-password"))
        await asyncio.to_thread(pusher.upload_blob, sha256(name.encode()), name.encode())
    await gateway.services.repositories.set_visibility(parse_repository("acme/site"), PUBLIC)
    await gateway.services.repositories.grant("acme", "members", None, Permission.READ)
    _, secret = await gateway.services.accounts.create_token(
        "bob", "public only", scopes=["repo:public_read"]
    )
    return secret


async def test_a_public_read_token_pulls_public_repositories_only(
    gateway: Gateway, upstream: UpstreamRegistry
) -> None:
    """Hub's ``repo:public_read``: bob's token reaches upstream images and acme's public
    repository, never acme's private one, neither at /token nor on the registry, even
    with a registry token minted while the repository was still public."""
    bob = ("bob", await _public_read_token_of_a_reader(gateway, "acme/private"))

    scopes = "repository:acme/private:pull repository:acme/site:pull repository:alpine:pull"
    params = [("service", "imagegate")] + [("scope", scope) for scope in scopes.split()]
    headers = {"Authorization": basic(*bob)}
    async with gateway.session.get(f"{gateway.url}/token", params=params, headers=headers) as r:
        assert r.status == 200
        token = (await r.json())["token"]
    granted = jwt.decode(token, options={"verify_signature": False})["access"]
    assert {entry["name"] for entry in granted} == {"acme/site", "alpine"}

    private = await gateway.token("repository:acme/private:pull", bob)
    status, _, body = await _answer(gateway, "GET", "/v2/acme/private/tags/list", private)
    assert status == 403
    assert json.loads(body)["errors"][0]["message"] == (
        "requested access to the resource is denied: the access token can pull public "
        "repositories only (scope repo:public_read), and acme/private is a private "
        "repository of organization acme; use a token with scope repo:read"
    )
    site = await gateway.token("repository:acme/site:pull", bob)
    assert (await _answer(gateway, "GET", "/v2/acme/site/tags/list", site))[0] == 200
    await gateway.services.repositories.set_visibility(parse_repository("acme/site"), PRIVATE)
    status, _, body = await _answer(gateway, "GET", "/v2/acme/site/tags/list", site)
    assert status == 403 and b"can pull public repositories only" in body

    # The same user with a repo:read token, or a password, reads it.
    _, reader = await gateway.services.accounts.create_token("bob", "ci", scopes=["repo:read"])
    for credential in (("bob", reader), ("bob", "bob-password")):
        token = await gateway.token("repository:acme/private:pull", credential)
        assert (await _answer(gateway, "GET", "/v2/acme/private/tags/list", token))[0] == 200


async def test_a_public_read_token_lists_public_repositories_only(gateway: Gateway) -> None:
    """``/v2/_catalog`` with a ``repo:public_read`` token names what the token may pull:
    acme's public repository, not the private one its user (bob, with read on all of
    acme) could read with a password."""
    public_read = await _public_read_token_of_a_reader(gateway, "acme/private-plans")
    listed = {}
    for credential in (("bob", public_read), ("bob", "bob-password")):
        token = await gateway.token("registry:catalog:*", credential)
        status, _, body = await _answer(gateway, "GET", "/v2/_catalog", token)
        assert status == 200
        listed[credential[1]] = json.loads(body)["repositories"]
    assert listed[public_read] == ["acme/site"]
    assert listed["bob-password"] == ["acme/private-plans", "acme/site"]
