"""Assertions the spec makes about every pull and push, shared by the conformance modules."""

from __future__ import annotations

import json
import os

from tests.support.images import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from tests.support.oci import Answer, OciClient, digest_of, expect, location

ACCEPT_ALL = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


def check_error(answer: Answer, status: int, code: str) -> None:
    """``status`` with a JSON error body whose codes include ``code`` (spec section 6)."""
    assert answer.status == status, f"expected {status} {code}\n{answer.describe()}"
    assert code in answer.error_codes, f"expected error code {code}\n{answer.describe()}"


def check_blob(client: OciClient, repository: str, data: bytes, digest: str = "") -> None:
    """GET and HEAD of a pushed blob: exact bytes, Content-Length, digest header if any."""
    digest = digest or digest_of(data)
    got = expect(client.get(f"/v2/{repository}/blobs/{digest}"), 200)
    assert got.body == data, f"blob bytes differ\n{got.describe()}"
    assert got.header("Content-Length") == str(len(data)), got.describe()
    assert got.header("Docker-Content-Digest") in (None, digest), got.describe()
    head = expect(client.head(f"/v2/{repository}/blobs/{digest}"), 200)
    assert head.body == b""
    assert head.header("Content-Length") == str(len(data)), head.describe()
    assert head.header("Docker-Content-Digest") in (None, digest), head.describe()


def check_blob_pushed(
    client: OciClient, answer: Answer, repository: str, data: bytes, digest: str = ""
) -> None:
    """A 201 for a blob push: its Location serves the bytes, and so does the repository."""
    expect(answer, 201)
    digest = digest or digest_of(data)
    got = expect(client.get(location(answer)), 200)
    assert got.body == data, f"Location {location(answer)} serves other bytes"
    check_blob(client, repository, data, digest)


def check_manifest(
    client: OciClient, repository: str, reference: str, manifest: bytes, media_type: str
) -> None:
    """GET and HEAD of a manifest: exact bytes, Content-Type exactly the pushed media type
    (no parameters), Content-Length, and the digest header equal to the body's digest."""
    digest = digest_of(manifest)
    url = f"/v2/{repository}/manifests/{reference}"
    got = expect(client.get(url, {"Accept": ACCEPT_ALL}), 200)
    assert got.body == manifest, f"manifest bytes differ\n{got.describe()}"
    assert got.header("Content-Type") == media_type, got.describe()
    assert got.header("Content-Length") == str(len(manifest)), got.describe()
    assert got.header("Docker-Content-Digest") == digest, got.describe()
    head = expect(client.head(url, {"Accept": ACCEPT_ALL}), 200)
    assert head.body == b""
    assert head.header("Content-Type") == media_type, head.describe()
    assert head.header("Content-Length") == str(len(manifest)), head.describe()
    assert head.header("Docker-Content-Digest") == digest, head.describe()


def check_manifest_pushed(
    client: OciClient, answer: Answer, repository: str, manifest: bytes, media_type: str
) -> None:
    """A 201 for a manifest push: Location serves it, digest header (if any) matches."""
    expect(answer, 201)
    assert answer.header("Docker-Content-Digest") in (None, digest_of(manifest)), answer.describe()
    got = expect(client.get(location(answer), {"Accept": ACCEPT_ALL}), 200)
    assert got.body == manifest
    assert got.header("Content-Type") == media_type, got.describe()


def canonical(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
