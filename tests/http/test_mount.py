"""Cross-repository mounts through a real gateway: a digest is looked up only where the
source name keeps its content, as its pull decision says (hosted, the cache of its
upstream name, or nowhere)."""

from __future__ import annotations

from imagegate.core.digests import Digest
from imagegate.core.permissions import Permission
from imagegate.storage.layout import Layout
from tests.http.conftest import Gateway, Seeded
from tests.support.polling import eventually


async def _request(gateway: Gateway, method: str, path: str, token: str) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"}
    async with gateway.session.request(method, f"{gateway.url}{path}", headers=headers) as r:
        return r.status, await r.read()


async def _mount(gateway: Gateway, user: tuple[str, str], target: str, layer: str, source: str):  # type: ignore[no-untyped-def]
    """POST the mount as a client that asked for the scopes its challenge names."""
    token = await gateway.token(f"repository:{target}:pull,push repository:{source}:pull", user)
    path = f"/v2/{target}/blobs/uploads/?mount={layer}&from={source}"
    headers = {"Authorization": f"Bearer {token}"}
    async with gateway.session.post(f"{gateway.url}{path}", headers=headers) as response:
        await response.read()
        return response, token


async def test_a_mount_from_a_mirrored_name_finds_what_its_upstream_name_holds(
    gateway: Gateway, seeded: Seeded
) -> None:
    """acme mirrors the upstream's ``someone``: bob's pull of acme/tool is cached under
    someone/tool, and a mount from acme/tool finds it there."""
    await gateway.services.access.set_upstream_namespace("acme", "someone")
    await gateway.services.repositories.grant("acme", "members", None, Permission.WRITE)
    bob = ("bob", "bob-password")
    layer = seeded.community.layer_digests[0]
    pull = await gateway.token("repository:acme/tool:pull", bob)
    assert (await _request(gateway, "GET", f"/v2/acme/tool/blobs/{layer}", pull))[0] == 200
    # The last bytes reach the client once the digest checks out, just before the blob is
    # renamed into the store; a mount finds only what is stored.
    await eventually(lambda: Layout(gateway.settings.cache_dir).blob(Digest.parse(layer)).exists())

    response, token = await _mount(gateway, bob, "acme/copy", layer, "acme/tool")
    assert response.status == 201
    assert response.headers["Location"] == f"/v2/acme/copy/blobs/{layer}"
    status, body = await _request(gateway, "GET", f"/v2/acme/copy/blobs/{layer}", token)
    assert (status, body) == (200, seeded.community.blobs[layer])


async def test_an_org_namespace_lends_nothing_the_upstream_confirmed_under_it_before(
    gateway: Gateway, seeded: Seeded
) -> None:
    """someone/tool was proxied (its layer confirmed by the upstream for that name) before
    an organization ``someone`` was created here. someone/tool now serves nothing, so
    a mount from it is an ordinary upload: the upstream's layer is someone else's."""
    layer = seeded.community.layer_digests[0]
    anonymous = await gateway.token("repository:someone/tool:pull")
    assert (await _request(gateway, "GET", f"/v2/someone/tool/blobs/{layer}", anonymous))[0] == 200
    await gateway.services.orgs.add_org("someone", "alice")

    alice = ("alice", "alice-password")
    response, token = await _mount(gateway, alice, "someone/app", layer, "someone/tool")
    assert response.status == 202  # an upload session instead
    assert "/v2/someone/app/blobs/uploads/" in response.headers["Location"]
    assert (await _request(gateway, "HEAD", f"/v2/someone/app/blobs/{layer}", token))[0] == 404
