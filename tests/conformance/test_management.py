"""Content management (spec section 5) and who may push where: deletes are immediate,
a tag delete keeps the manifest, a manifest delete takes its tags; pushes outside an
organization's namespace, or without write permission, are refused with a reason."""

from __future__ import annotations

import pytest

from tests.conformance.checks import check_error, check_manifest, random_bytes
from tests.conformance.conftest import ORG, Registry
from tests.support.images import Image, build_image
from tests.support.oci import OciClient, digest_of, expect, push_blob, push_image, put_manifest

pytestmark = pytest.mark.e2e

REPO = "conf/manage"


def tags(client: OciClient, repository: str = REPO) -> list[str]:
    answer = client.get(f"/v2/{repository}/tags/list")
    if answer.status == 404:
        return []
    return list(expect(answer, 200).json()["tags"] or [])


def test_delete_a_tag_keeps_the_manifest(registry: Registry) -> None:
    image = build_image("conformance-delete-tag")
    push_image(registry.pusher, REPO, "keep", image)
    expect(put_manifest(registry.pusher, REPO, "drop", image.manifest, image.media_type), 201)
    answer = registry.owner.delete(f"/v2/{REPO}/manifests/drop")
    assert answer.status == 202, answer.describe()
    assert registry.owner.head(f"/v2/{REPO}/manifests/drop").status == 404
    assert registry.owner.get(f"/v2/{REPO}/manifests/drop").status == 404
    check_manifest(registry.owner, REPO, image.digest, image.manifest, image.media_type)
    check_manifest(registry.owner, REPO, "keep", image.manifest, image.media_type)
    assert "drop" not in tags(registry.owner) and "keep" in tags(registry.owner)


def test_delete_a_manifest_by_digest_takes_its_tags(registry: Registry) -> None:
    image = build_image("conformance-delete-manifest")
    push_image(registry.pusher, REPO, "doomed-1", image)
    expect(put_manifest(registry.pusher, REPO, "doomed-2", image.manifest, image.media_type), 201)
    before = tags(registry.owner)
    answer = registry.owner.delete(f"/v2/{REPO}/manifests/{image.digest}")
    assert answer.status == 202, answer.describe()
    for reference in (image.digest, "doomed-1", "doomed-2"):
        assert registry.owner.head(f"/v2/{REPO}/manifests/{reference}").status == 404
        check_error(
            registry.owner.get(f"/v2/{REPO}/manifests/{reference}"), 404, "MANIFEST_UNKNOWN"
        )
    assert tags(registry.owner) == [tag for tag in before if not tag.startswith("doomed-")]
    again = registry.owner.delete(f"/v2/{REPO}/manifests/{image.digest}")
    assert again.status == 404, again.describe()


def test_delete_a_blob(registry: Registry) -> None:
    data = random_bytes(400)
    digest = push_blob(registry.pusher, REPO, data)
    answer = registry.owner.delete(f"/v2/{REPO}/blobs/{digest}")
    assert answer.status == 202, answer.describe()
    assert registry.owner.head(f"/v2/{REPO}/blobs/{digest}").status == 404
    check_error(registry.owner.get(f"/v2/{REPO}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    missing = registry.owner.delete(f"/v2/{REPO}/blobs/{digest_of(random_bytes(8))}")
    assert missing.status == 404, missing.describe()


def test_deleting_a_manifest_that_never_existed_is_404(registry: Registry) -> None:
    push_blob(registry.pusher, REPO, random_bytes(8))
    answer = registry.owner.delete(f"/v2/{REPO}/manifests/{digest_of(random_bytes(8))}")
    assert answer.status == 404, answer.describe()


def test_a_writer_may_not_delete_manifests(registry: Registry) -> None:
    """Deleting needs admin; the pusher has write only."""
    image = build_image("conformance-writer-delete")
    push_image(registry.pusher, REPO, "protected", image)
    for reference in ("protected", image.digest):
        answer = registry.pusher.delete(f"/v2/{REPO}/manifests/{reference}")
        assert answer.status in (401, 403), answer.describe()
        assert answer.error_codes[:1] in (["DENIED"], ["UNAUTHORIZED"]), answer.describe()
    check_manifest(registry.pusher, REPO, "protected", image.manifest, image.media_type)


# -- where pushes may go -------------------------------------------------------------------


@pytest.mark.parametrize("repository", ["library/pushed", "someone/pushed"])
def test_proxied_namespaces_are_read_only(registry: Registry, repository: str) -> None:
    answer = registry.owner.request("POST", f"/v2/{repository}/blobs/uploads/", b"")
    check_error(answer, 405, "UNSUPPORTED")
    assert answer.error_messages, answer.describe()
    image = build_image("conformance-read-only")
    put = put_manifest(registry.owner, repository, "1", image.manifest, image.media_type)
    check_error(put, 405, "UNSUPPORTED")


def test_a_non_member_may_not_push_to_an_organization(registry: Registry) -> None:
    answer = registry.stranger.request("POST", f"/v2/{ORG}/intruder/blobs/uploads/", b"")
    check_error(answer, 403, "DENIED")
    assert ORG in answer.error_messages, f"the message should say why\n{answer.describe()}"


def test_an_anonymous_push_asks_for_authentication(registry: Registry) -> None:
    answer = registry.anonymous.request("POST", f"/v2/{ORG}/anonymous/blobs/uploads/", b"")
    check_error(answer, 401, "UNAUTHORIZED")
    challenge = answer.header("WWW-Authenticate") or ""
    assert challenge.startswith("Bearer "), answer.describe()
    assert f'scope="repository:{ORG}/anonymous:pull,push"' in challenge, answer.describe()


def test_a_challenge_without_token_names_push_scope(registry: Registry) -> None:
    answer = registry.pusher.request("POST", f"/v2/{REPO}/blobs/uploads/", b"", authenticate=False)
    assert answer.status == 401, answer.describe()
    assert f'scope="repository:{REPO}:pull,push"' in (answer.header("WWW-Authenticate") or "")


def test_pushed_repositories_are_private_by_default(registry: Registry) -> None:
    image: Image = build_image("conformance-private")
    push_image(registry.pusher, "conf/private", "1", image)
    anonymous = registry.anonymous.get(f"/v2/conf/private/manifests/{image.digest}")
    assert anonymous.status == 401, anonymous.describe()
    stranger = registry.stranger.get(f"/v2/conf/private/manifests/{image.digest}")
    assert stranger.status == 403, stranger.describe()
    blob = registry.stranger.get(f"/v2/conf/private/blobs/{image.config_digest}")
    assert blob.status == 403, blob.describe()
