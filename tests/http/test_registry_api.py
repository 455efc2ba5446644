"""The pull side of the registry API through a real gateway, with policy on every request."""

from __future__ import annotations

import sqlite3

from imagegate.core.categories import PublisherStatus
from tests.http.conftest import Gateway, Seeded

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


async def _get(gateway: Gateway, path: str, token: str, method: str = "GET", **headers: str):  # type: ignore[no-untyped-def]
    headers["Authorization"] = f"Bearer {token}"
    response = await gateway.session.request(method, f"{gateway.url}{path}", headers=headers)
    await response.read()
    return response


async def test_manifest_and_blobs_by_bare_name(gateway: Gateway, seeded: Seeded) -> None:
    token = await gateway.token("repository:alpine:pull")
    response = await _get(gateway, "/v2/alpine/manifests/3", token, Accept=DOCKER_MANIFEST)
    assert response.status == 200
    assert response.headers["Content-Type"] == DOCKER_MANIFEST
    assert response.headers["Docker-Content-Digest"] == seeded.official.digest
    assert await response.read() == seeded.official.manifest

    head = await _get(gateway, "/v2/alpine/manifests/3", token, "HEAD", Accept=DOCKER_MANIFEST)
    assert head.status == 200
    assert int(head.headers["Content-Length"]) == len(seeded.official.manifest)

    layer = seeded.official.layer_digests[0]
    blob = await _get(gateway, f"/v2/alpine/blobs/{layer}", token)
    assert blob.status == 200
    assert await blob.read() == seeded.official.blobs[layer]
    ranged = await _get(gateway, f"/v2/alpine/blobs/{layer}", token, Range="bytes=2-5")
    assert ranged.status == 206
    assert ranged.headers["Content-Range"] == f"bytes 2-5/{len(seeded.official.blobs[layer])}"
    assert await ranged.read() == seeded.official.blobs[layer][2:6]


async def test_large_blob_streams_whole(gateway: Gateway, seeded: Seeded) -> None:
    token = await gateway.token("repository:someone/tool:pull")
    await _get(gateway, "/v2/someone/tool/manifests/1", token, Accept=OCI_MANIFEST)
    layer = seeded.community.layer_digests[0]
    response = await _get(gateway, f"/v2/someone/tool/blobs/{layer}", token)
    assert response.status == 200
    assert await response.read() == seeded.community.blobs[layer]


async def test_denial_is_hubs_message_on_get_and_head(gateway: Gateway) -> None:
    await gateway.services.access.set_settings("acme", enabled=True)
    token = await gateway.token("repository:someone/tool:pull", ("bob", "bob-password"))
    expected = (
        "image access restricted: someone/tool blocked for organization acme: "
        "community images are not allowed"
    )
    response = await _get(gateway, "/v2/someone/tool/manifests/1", token)
    assert response.status == 403
    error = (await response.json())["errors"][0]
    assert (error["code"], error["message"]) == ("DENIED", expected)
    head = await _get(gateway, "/v2/someone/tool/manifests/1", token, "HEAD")
    assert head.status == 403
    assert f'error_description="{expected}"' in head.headers["WWW-Authenticate"]
    # The owner bypasses the policy.
    owner = await gateway.token("repository:someone/tool:pull", ("alice", "alice-password"))
    assert (await _get(gateway, "/v2/someone/tool/manifests/1", owner)).status == 200


async def test_every_repository_scoped_request_is_checked(gateway: Gateway, seeded: Seeded) -> None:
    await gateway.services.access.set_settings("acme", enabled=True)
    token = await gateway.token("repository:someone/tool:pull", ("bob", "bob-password"))
    layer = seeded.community.layer_digests[0]
    for path in (
        f"/v2/someone/tool/blobs/{layer}",
        "/v2/someone/tool/tags/list",
        f"/v2/someone/tool/referrers/{seeded.community.digest}",
    ):
        response = await _get(gateway, path, token)
        assert response.status == 403, path
        assert (await response.json())["errors"][0]["code"] == "DENIED"


async def test_a_digest_never_opens_a_door(gateway: Gateway, seeded: Seeded) -> None:
    """A blob cached through one repository is not served through another it is not in."""
    alpine = await gateway.token("repository:alpine:pull")
    layer = seeded.official.layer_digests[0]
    assert (await _get(gateway, f"/v2/alpine/blobs/{layer}", alpine)).status == 200
    tool = await gateway.token("repository:someone/tool:pull")
    response = await _get(gateway, f"/v2/someone/tool/blobs/{layer}", tool)
    assert response.status == 404
    assert (await response.json())["errors"][0]["code"] == "BLOB_UNKNOWN"


async def test_org_namespace_is_for_members(gateway: Gateway, seeded: Seeded) -> None:
    await gateway.services.access.set_upstream_namespace("acme", "acme")
    anonymous = await gateway.token("repository:acme/app:pull")
    response = await _get(gateway, "/v2/acme/app/manifests/1", anonymous)
    assert response.status == 401
    message = (await response.json())["errors"][0]["message"]
    assert "acme/app does not exist or is private to organization acme" in message
    await gateway.services.accounts.create_user("mallory", None, "mallory-password")
    outsider = await gateway.token("repository:acme/app:pull", ("mallory", "mallory-password"))
    response = await _get(gateway, "/v2/acme/app/manifests/1", outsider)
    assert response.status == 403
    member = await gateway.token("repository:acme/app:pull", ("bob", "bob-password"))
    response = await _get(gateway, "/v2/acme/app/manifests/1", member, Accept=OCI_MANIFEST)
    assert response.status == 200
    assert response.headers["Docker-Content-Digest"] == seeded.acme.digest


async def test_an_org_namespace_is_not_the_upstreams_unless_its_owners_mirror_it(
    gateway: Gateway, seeded: Seeded
) -> None:
    """Dependency confusion: the upstream's acme/app is someone else's until acme's owners
    say the upstream namespace is theirs; then acme/x is the upstream's NAME/x."""
    member = await gateway.token("repository:acme/app:pull", ("bob", "bob-password"))
    layer = seeded.acme.layer_digests[0]
    for path, code in (
        ("/v2/acme/app/manifests/1", "NAME_UNKNOWN"),
        ("/v2/acme/app/tags/list", "NAME_UNKNOWN"),
        (f"/v2/acme/app/blobs/{layer}", "BLOB_UNKNOWN"),
    ):
        response = await _get(gateway, path, member, Accept=OCI_MANIFEST)
        assert response.status == 404, path
        error = (await response.json())["errors"][0]
        assert error["code"] == code
        assert error["message"] == (
            "repository acme/app is not hosted here, and organization acme's namespace is not "
            "mirrored from the upstream registry: push it, or an owner of acme can mirror an "
            "upstream namespace of acme's own with "
            "`imagegate org set acme --upstream-namespace NAME`"
        )
    head = await _get(gateway, f"/v2/acme/app/blobs/{layer}", member, "HEAD")
    assert head.status == 404  # a pushing client goes on to upload

    await gateway.services.access.set_upstream_namespace("acme", "someone")
    member = await gateway.token("repository:acme/tool:pull", ("bob", "bob-password"))
    tool = await _get(gateway, "/v2/acme/tool/manifests/1", member, Accept=OCI_MANIFEST)
    assert tool.status == 200  # the upstream's someone/tool, as acme's own image
    assert tool.headers["Docker-Content-Digest"] == seeded.community.digest
    await gateway.services.access.set_upstream_namespace("acme", None)
    gone = await _get(gateway, "/v2/acme/tool/manifests/1", member, Accept=OCI_MANIFEST)
    assert gone.status == 404


async def test_a_mirrored_name_is_judged_by_its_upstream_publisher(gateway: Gateway) -> None:
    """acme mirrors the upstream's ``someone`` (community); an admin marked ``acme``
    itself a verified publisher. For globex's policy, which allows verified publishers
    only, bob's acme/tool is the upstream's someone/tool: a community image, refused."""
    publishers = gateway.services.publishers
    await publishers.set_override("acme", PublisherStatus.VERIFIED_PUBLISHER)
    await gateway.services.access.set_upstream_namespace("acme", "someone")
    await gateway.services.orgs.add_org("globex", "alice")
    await gateway.services.orgs.add_member("globex", "bob")
    await gateway.services.access.set_settings("globex", enabled=True)
    token = await gateway.token("repository:acme/tool:pull", ("bob", "bob-password"))
    response = await _get(gateway, "/v2/acme/tool/manifests/1", token, Accept=OCI_MANIFEST)
    assert response.status == 403
    error = (await response.json())["errors"][0]
    assert (error["code"], error["message"]) == (
        "DENIED",
        "image access restricted: acme/tool blocked for organization globex: acme/tool is "
        "mirrored from the upstream's someone/tool; community images are not allowed",
    )
    await publishers.set_override("someone", PublisherStatus.VERIFIED_PUBLISHER)
    response = await _get(gateway, "/v2/acme/tool/manifests/1", token, Accept=OCI_MANIFEST)
    assert response.status == 200  # now the upstream namespace itself is verified


async def test_tags_list_paginates_with_link(gateway: Gateway) -> None:
    token = await gateway.token("repository:someone/tool:pull")
    response = await _get(gateway, "/v2/someone/tool/tags/list?n=2", token)
    assert response.status == 200
    assert await response.json() == {"name": "someone/tool", "tags": ["1", "a"]}
    assert response.headers["Link"] == '</v2/someone/tool/tags/list?n=2&last=a>; rel="next"'
    response = await _get(gateway, "/v2/someone/tool/tags/list?n=2&last=d", token)
    assert (await response.json())["tags"] == ["e"]
    assert "Link" not in response.headers
    response = await _get(gateway, "/v2/someone/tool/tags/list?n=x", token)
    assert response.status == 400


async def test_clear_errors_for_bad_requests(gateway: Gateway) -> None:
    token = await gateway.token("repository:someone/tool:pull,push,delete", ("bob", "bob-password"))
    cases = [
        ("GET", "/v2/Someone/Tool/manifests/1", 400, "NAME_INVALID"),
        ("GET", "/v2/someone/tool/manifests/bad..ref/", 404, "NAME_UNKNOWN"),
        ("GET", "/v2/someone/tool/blobs/sha256:xyz", 400, "DIGEST_INVALID"),
        ("GET", "/v2/someone/tool/manifests/nosuchtag", 404, "MANIFEST_UNKNOWN"),
        ("PUT", "/v2/someone/tool/manifests/1", 405, "UNSUPPORTED"),
        ("POST", "/v2/someone/tool/blobs/uploads/", 405, "UNSUPPORTED"),
        ("DELETE", "/v2/someone/tool/manifests/1", 405, "UNSUPPORTED"),
    ]
    for method, path, status, code in cases:
        response = await _get(gateway, path, token, method)
        assert response.status == status, (method, path, await response.text())
        error = (await response.json())["errors"][0]
        assert error["code"] == code
        assert error["message"]
        if code == "UNSUPPORTED":
            assert (
                "namespace someone is served from the upstream registry and is read-only"
                in (error["message"])
            )


async def test_pushing_needs_a_push_token(gateway: Gateway) -> None:
    token = await gateway.token("repository:acme/app:pull", ("bob", "bob-password"))
    response = await _get(gateway, "/v2/acme/app/blobs/uploads/", token, "POST")
    assert response.status == 401
    challenge = response.headers["WWW-Authenticate"]
    assert 'scope="repository:acme/app:pull,push"' in challenge
    assert 'error="insufficient_scope"' in challenge


async def test_health_and_readiness(gateway: Gateway) -> None:
    async with gateway.session.get(f"{gateway.url}/healthz") as response:
        assert response.status == 200
    async with gateway.session.get(f"{gateway.url}/readyz") as response:
        assert response.status == 200
        assert (await response.json())["checks"] == {"database": True, "storage": True}


async def test_unsatisfiable_range_is_416_with_the_size(gateway: Gateway, seeded: Seeded) -> None:
    token = await gateway.token("repository:alpine:pull")
    await _get(gateway, "/v2/alpine/manifests/3", token, Accept=DOCKER_MANIFEST)
    layer = seeded.official.layer_digests[0]
    size = len(seeded.official.blobs[layer])
    response = await _get(gateway, f"/v2/alpine/blobs/{layer}", token, Range=f"bytes={size}-")
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{size}"
    assert (await response.json())["errors"][0]["code"] == "RANGE_INVALID"


async def test_an_unexpected_failure_is_still_a_registry_error(gateway: Gateway) -> None:
    """A broken database (here: a table dropped under the running gateway) is a 500 with
    the registry's JSON envelope, never a bare text page."""
    token = await gateway.token("repository:alpine:pull")
    database = gateway.settings.data_dir / "imagegate.db"
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA foreign_keys=OFF")
        connection.execute("DROP TABLE organizations")
    response = await _get(gateway, "/v2/alpine/manifests/3", token, Accept=DOCKER_MANIFEST)
    assert response.status == 500
    error = (await response.json())["errors"][0]
    assert error["code"] == "UNKNOWN"
    assert "internal server error" in error["message"]
