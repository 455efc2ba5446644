"""The OCI referrers index, for hosted repositories and for the cache.

A hosted repository's index lists its manifests whose ``subject`` is the digest
(``hosted.manifests``). Distribution 2.8 (and other registries) 404
``/v2/<name>/referrers/<digest>``; the OCI spec says a registry that supports the API
never answers 404, so for an upstream without the API, or failing, we answer with the
manifests of this repository that we cached and whose ``subject`` is the digest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from imagegate.core.digests import Digest
from imagegate.core.names import RepositoryName
from imagegate.proxy.descriptors import INDEX_TYPES, OCI_INDEX, parse_json
from imagegate.storage.interfaces import ContentStore, ManifestLink
from imagegate.upstream.client import MANIFEST_LIMIT


def referrer_descriptor(link: ManifestLink, body: bytes) -> dict[str, Any]:
    """The index entry for one referrer, as the OCI spec describes it."""
    document = parse_json(body)
    descriptor: dict[str, Any] = {
        "mediaType": link.media_type,
        "digest": str(link.digest),
        "size": len(body),
    }
    artifact_type = document.get("artifactType")
    if not artifact_type and link.media_type not in INDEX_TYPES:
        config = document.get("config")
        artifact_type = config.get("mediaType") if isinstance(config, dict) else None
    if isinstance(artifact_type, str) and artifact_type:
        descriptor["artifactType"] = artifact_type
    annotations = document.get("annotations")
    if isinstance(annotations, dict) and annotations:
        descriptor["annotations"] = annotations
    return descriptor


def referrers_index(
    referrers: Iterable[tuple[ManifestLink, bytes]], artifact_type: str | None
) -> tuple[bytes, bool]:
    """An OCI index of the referrers (only those of ``artifact_type`` when it is given),
    sorted by digest; the flag says the filter was applied."""
    entries = []
    for link, body in referrers:
        descriptor = referrer_descriptor(link, body)
        if artifact_type is None or descriptor.get("artifactType") == artifact_type:
            entries.append(descriptor)
    entries.sort(key=lambda entry: str(entry["digest"]))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    return json.dumps(index, separators=(",", ":")).encode(), artifact_type is not None


async def local_referrers(
    store: ContentStore, repository: RepositoryName, subject: Digest, artifact_type: str | None
) -> tuple[bytes, bool]:
    """An OCI index of the cached referrers; the flag says the filter was applied."""
    referrers = []
    for link in await store.repositories.referrers(repository, subject):
        body = await store.blobs.read_bytes(link.digest, MANIFEST_LIMIT)
        if body is not None:
            referrers.append((link, body))
    return referrers_index(referrers, artifact_type)
