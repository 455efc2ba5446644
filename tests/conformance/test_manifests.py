"""Push and pull workflows, manifests (spec sections 2.8 and 3): by tag and by digest,
exact bytes, Content-Type, validation errors, the size limit, indexes and artifacts."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conformance.checks import (
    ACCEPT_ALL,
    check_error,
    check_manifest,
    check_manifest_pushed,
    random_bytes,
)
from tests.conformance.conftest import Registry
from tests.support.images import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    EMPTY_JSON,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Image,
    build_image,
    build_index,
)
from tests.support.oci import OciClient, digest_of, expect, push_blob, push_image, put_manifest

pytestmark = pytest.mark.e2e

REPO = "conf/manifests"
KNOWN_CODES = {
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
}


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def manifest_bytes(value: dict[str, Any], *, indent: int | None = None) -> bytes:
    return json.dumps(value, indent=indent).encode()


@pytest.fixture(scope="module")
def image(registry: Registry) -> Image:
    """An image whose blobs are pushed; tests push its manifest as they need."""
    built = build_image("conformance-manifests", layers=2)
    for data in built.blobs.values():
        push_blob(registry.pusher, REPO, data)
    return built


@pytest.fixture(scope="module")
def blobs(registry: Registry) -> dict[str, bytes]:
    """A config and a layer pushed to REPO, for hand-written manifests."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {}}).encode()
    layer = random_bytes(512)
    for data in (config, layer, EMPTY_JSON):
        push_blob(registry.pusher, REPO, data)
    return {"config": config, "layer": layer}


def image_manifest(blobs: dict[str, bytes], **extra: Any) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, blobs["config"]),
        "layers": [descriptor(OCI_LAYER, blobs["layer"])],
        **extra,
    }


def test_put_by_tag_is_201_with_location_and_digest(registry: Registry, image: Image) -> None:
    answer = put_manifest(registry.pusher, REPO, "by-tag", image.manifest, image.media_type)
    check_manifest_pushed(registry.pusher, answer, REPO, image.manifest, image.media_type)
    assert answer.header("Docker-Content-Digest") == image.digest, answer.describe()
    check_manifest(registry.pusher, REPO, "by-tag", image.manifest, image.media_type)
    check_manifest(registry.pusher, REPO, image.digest, image.manifest, image.media_type)


def test_put_by_digest_then_tags_by_a_second_put_of_the_same_bytes(
    registry: Registry, image: Image
) -> None:
    client = registry.pusher
    answer = put_manifest(client, REPO, image.digest, image.manifest, image.media_type)
    check_manifest_pushed(client, answer, REPO, image.manifest, image.media_type)
    for tag in ("again-1", "again-2"):
        again = put_manifest(client, REPO, tag, image.manifest, image.media_type)
        check_manifest_pushed(client, again, REPO, image.manifest, image.media_type)
        check_manifest(client, REPO, tag, image.manifest, image.media_type)


def test_a_tag_moves_to_the_newest_manifest(registry: Registry, blobs: dict[str, bytes]) -> None:
    client = registry.pusher
    first = manifest_bytes(image_manifest(blobs, annotations={"n": "1"}))
    second = manifest_bytes(image_manifest(blobs, annotations={"n": "2"}))
    expect(put_manifest(client, REPO, "moving", first, OCI_MANIFEST), 201)
    expect(put_manifest(client, REPO, "moving", second, OCI_MANIFEST), 201)
    check_manifest(client, REPO, "moving", second, OCI_MANIFEST)
    check_manifest(client, REPO, digest_of(first), first, OCI_MANIFEST)


def test_manifest_sent_with_chunked_encoding(registry: Registry, blobs: dict[str, bytes]) -> None:
    """Go clients send manifests without Content-Length (Transfer-Encoding: chunked)."""
    body = manifest_bytes(image_manifest(blobs, annotations={"sent": "chunked"}))
    answer = registry.pusher.request(
        "PUT",
        f"/v2/{REPO}/manifests/chunked",
        iter([body[:100], body[100:]]),
        {"Content-Type": OCI_MANIFEST},
    )
    check_manifest_pushed(registry.pusher, answer, REPO, body, OCI_MANIFEST)


def test_media_type_parameters_are_ignored(registry: Registry, blobs: dict[str, bytes]) -> None:
    """The registry SHOULD ignore parameters; it serves the type without them."""
    body = manifest_bytes(image_manifest(blobs, annotations={"sent": "with-parameters"}))
    answer = put_manifest(registry.pusher, REPO, "params", body, f"{OCI_MANIFEST}; charset=utf-8")
    check_manifest_pushed(registry.pusher, answer, REPO, body, OCI_MANIFEST)


def test_bytes_are_kept_exactly_with_unknown_fields_and_data(
    registry: Registry, blobs: dict[str, bytes]
) -> None:
    value = image_manifest(blobs, newUnspecifiedField={"kept": True})
    value["config"]["data"] = base64.b64encode(blobs["config"]).decode()
    value["layers"][0]["newUnspecifiedField"] = None
    body = manifest_bytes(value, indent=3) + b"\n"
    answer = put_manifest(registry.pusher, REPO, "custom-fields", body, OCI_MANIFEST)
    check_manifest_pushed(registry.pusher, answer, REPO, body, OCI_MANIFEST)
    check_manifest(registry.pusher, REPO, digest_of(body), body, OCI_MANIFEST)


def test_manifest_without_media_type_field(registry: Registry, blobs: dict[str, bytes]) -> None:
    value = image_manifest(blobs)
    del value["mediaType"]
    value["layers"] = []
    body = manifest_bytes(value)
    answer = put_manifest(registry.pusher, REPO, "emptylayer", body, OCI_MANIFEST)
    check_manifest_pushed(registry.pusher, answer, REPO, body, OCI_MANIFEST)


def test_index_children_first_then_nested_and_empty_indexes(registry: Registry) -> None:
    client = registry.pusher
    index = build_index("conformance-index")
    push_image(client, REPO, "index", index)
    check_manifest(client, REPO, "index", index.manifest, OCI_INDEX)
    for child in index.children:
        check_manifest(client, REPO, child.digest, child.manifest, OCI_MANIFEST)
    nested = manifest_bytes(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [index.descriptor()]}
    )
    answer = put_manifest(client, REPO, "index-of-index", nested, OCI_INDEX)
    check_manifest_pushed(client, answer, REPO, nested, OCI_INDEX)
    empty = manifest_bytes({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
    answer = put_manifest(client, REPO, "empty-index", empty, OCI_INDEX)
    check_manifest_pushed(client, answer, REPO, empty, OCI_INDEX)


def test_docker_manifest_list(registry: Registry) -> None:
    listed = build_index("conformance-docker", flavor="docker")
    push_image(registry.pusher, REPO, "docker-list", listed)
    check_manifest(registry.pusher, REPO, "docker-list", listed.manifest, DOCKER_LIST)
    child = listed.children[0]
    check_manifest(registry.pusher, REPO, child.digest, child.manifest, DOCKER_MANIFEST)


def test_artifact_with_empty_config_and_layer(registry: Registry, blobs: dict[str, bytes]) -> None:
    body = manifest_bytes(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.conformance.v1",
            "config": descriptor(OCI_EMPTY, EMPTY_JSON),
            "layers": [descriptor(OCI_EMPTY, EMPTY_JSON)],
        }
    )
    answer = put_manifest(registry.pusher, REPO, "artifact", body, OCI_MANIFEST)
    check_manifest_pushed(registry.pusher, answer, REPO, body, OCI_MANIFEST)


def test_non_distributable_layers_need_not_be_pushed(
    registry: Registry, blobs: dict[str, bytes]
) -> None:
    foreign = random_bytes(100)  # never pushed
    value = image_manifest(blobs)
    value["layers"].append(
        descriptor(
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            foreign,
            urls=["https://example.com/layer.tar.gz"],
        )
    )
    body = manifest_bytes(value)
    answer = put_manifest(registry.pusher, REPO, "non-distributable", body, OCI_MANIFEST)
    check_manifest_pushed(registry.pusher, answer, REPO, body, OCI_MANIFEST)


def test_tag_grammar_limits(registry: Registry, image: Image) -> None:
    """A 128-character tag and the 71-character referrers-tag form are tags like any other;
    a 129-character one is not a tag."""
    client = registry.pusher
    for tag in ("t" * 128, "sha256-" + "a" * 64, "_under.score-1"):
        answer = put_manifest(client, REPO, tag, image.manifest, image.media_type)
        check_manifest_pushed(client, answer, REPO, image.manifest, image.media_type)
    too_long = put_manifest(client, REPO, "t" * 129, image.manifest, image.media_type)
    assert too_long.status == 400, too_long.describe()
    leading_dot = put_manifest(client, REPO, ".hidden", image.manifest, image.media_type)
    assert leading_dot.status == 400, leading_dot.describe()


# -- refusals ------------------------------------------------------------------------------


def test_missing_manifest_is_404(registry: Registry, image: Image) -> None:
    client = registry.pusher
    expect(put_manifest(client, REPO, "exists", image.manifest, image.media_type), 201)
    missing = digest_of(random_bytes(32))
    check_error(client.get(f"/v2/{REPO}/manifests/{missing}"), 404, "MANIFEST_UNKNOWN")
    check_error(client.get(f"/v2/{REPO}/manifests/missing-tag"), 404, "MANIFEST_UNKNOWN")
    assert client.head(f"/v2/{REPO}/manifests/{missing}").status == 404
    assert client.head(f"/v2/{REPO}/manifests/missing-tag").status == 404


def test_an_invalid_tag_is_404_not_400(registry: Registry) -> None:
    for method in ("GET", "HEAD"):
        answer = registry.pusher.request(
            method, f"/v2/{REPO}/manifests/.INVALID_MANIFEST_NAME", headers={"Accept": ACCEPT_ALL}
        )
        assert answer.status == 404, answer.describe()


def test_a_malformed_digest_reference(registry: Registry, image: Image) -> None:
    client = registry.pusher
    wrong = client.get(f"/v2/{REPO}/manifests/sha256:totallywrong")
    assert wrong.status in (400, 404), wrong.describe()
    if wrong.status == 400:
        assert wrong.error_codes and wrong.error_codes[0] in KNOWN_CODES, wrong.describe()
    put = put_manifest(client, REPO, "sha256:baddigeststring", image.manifest, image.media_type)
    assert put.status == 400, put.describe()
    assert client.get(f"/v2/{REPO}/manifests/sha256:baddigeststring").status in (400, 404)


def test_put_by_a_digest_the_bytes_do_not_have_is_digest_invalid(
    registry: Registry, image: Image
) -> None:
    changed = image.manifest + b"  "
    answer = put_manifest(registry.pusher, REPO, image.digest, changed, image.media_type)
    check_error(answer, 400, "DIGEST_INVALID")
    assert registry.pusher.head(f"/v2/{REPO}/manifests/{digest_of(changed)}").status == 404


@pytest.mark.parametrize("missing", ["layer", "config"])
def test_missing_blobs_are_manifest_blob_unknown(
    registry: Registry, blobs: dict[str, bytes], missing: str
) -> None:
    absent = random_bytes(200)
    value = image_manifest(blobs)
    if missing == "layer":
        value["layers"].append(descriptor(OCI_LAYER, absent))
    else:
        value["config"] = descriptor(OCI_CONFIG, absent)
    body = manifest_bytes(value)
    check_error(
        put_manifest(registry.pusher, REPO, f"missing-{missing}", body, OCI_MANIFEST),
        400,
        "MANIFEST_BLOB_UNKNOWN",
    )
    assert registry.pusher.head(f"/v2/{REPO}/manifests/missing-{missing}").status == 404


def test_a_blob_of_another_repository_does_not_count(registry: Registry) -> None:
    """Referenced blobs must be in THIS repository (a digest never opens a door)."""
    client = registry.pusher
    image = build_image("conformance-elsewhere")
    for data in image.blobs.values():
        push_blob(client, "conf/elsewhere", data)
    answer = put_manifest(client, "conf/other-place", "x", image.manifest, image.media_type)
    check_error(answer, 400, "MANIFEST_BLOB_UNKNOWN")


def test_index_with_a_missing_child_is_manifest_blob_unknown(registry: Registry) -> None:
    index = build_index("conformance-missing-child")
    for data in index.blobs.values():
        push_blob(registry.pusher, REPO, data)
    answer = put_manifest(registry.pusher, REPO, "orphan", index.manifest, OCI_INDEX)
    check_error(answer, 400, "MANIFEST_BLOB_UNKNOWN")


@pytest.mark.parametrize(
    ("body", "media_type"),
    [
        (b"{not json", OCI_MANIFEST),
        (b'{"schemaVersion": 2, "mediaType": "' + OCI_MANIFEST.encode() + b'"}', OCI_INDEX),
        (b"[]", OCI_MANIFEST),
    ],
    ids=["not-json", "media-type-mismatch", "not-an-object"],
)
def test_invalid_manifests_are_manifest_invalid(
    registry: Registry, body: bytes, media_type: str
) -> None:
    answer = put_manifest(registry.pusher, REPO, "invalid", body, media_type)
    check_error(answer, 400, "MANIFEST_INVALID")


def _large_manifest(blobs: dict[str, bytes], size: int) -> bytes:
    value = image_manifest(blobs, annotations={})
    base = len(manifest_bytes(value))
    count = 0
    while base + count * 10_020 < size - 10_020:
        value["annotations"][f"org.example.{count:05d}"] = "a" * 10_000
        count += 1
    body = manifest_bytes(value)
    filler = "b" * (size - len(body) - len(', "org.example.pad": ""'))
    value["annotations"]["org.example.pad"] = filler
    return manifest_bytes(value)


def test_a_manifest_just_under_four_mib_is_accepted_exactly(
    registry: Registry, blobs: dict[str, bytes]
) -> None:
    body = _large_manifest(blobs, 4 * 1024 * 1024 - 1024)
    assert 3_900_000 < len(body) <= 4 * 1024 * 1024
    answer = put_manifest(registry.pusher, REPO, "large", body, OCI_MANIFEST)
    check_manifest_pushed(registry.pusher, answer, REPO, body, OCI_MANIFEST)


def test_a_manifest_over_four_mib_is_413(registry: Registry, blobs: dict[str, bytes]) -> None:
    body = _large_manifest(blobs, 4 * 1024 * 1024 + 4096)
    assert len(body) > 4 * 1024 * 1024
    answer = put_manifest(registry.pusher, REPO, "too-large", body, OCI_MANIFEST)
    assert answer.status == 413, answer.describe()
    assert registry.pusher.head(f"/v2/{REPO}/manifests/too-large").status == 404


def test_pulling_from_a_repository_that_does_not_exist_is_404(registry: Registry) -> None:
    client: OciClient = registry.pusher
    answer = client.get(f"/v2/conf/never-pushed/manifests/{digest_of(b'nothing')}")
    assert answer.status == 404, answer.describe()
