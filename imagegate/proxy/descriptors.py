"""What a manifest refers to, read from its exact bytes (which are never re-encoded).

Only the descriptors of the manifest's own schema count: ``config`` and ``layers`` of an
image manifest, ``manifests`` of an index, and ``subject``; any other key (an artifact
draft's ``blobs``, an annotation) names nothing. Garbage collection keeps the blobs
they name (config, layers, children); the ``subject`` only lists a manifest as a
referrer; a hosted push must hold every blob they name. Naming a digest never makes it
a proxied repository's: see ``proxy.manifests``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from imagegate.core.digests import Digest
from imagegate.core.errors import DigestInvalid
from imagegate.core.inputs import load_json

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
# Sent upstream when a client names none: without an Accept, a registry may 404 an OCI
# manifest or down-convert to schema 1.
ALL_MANIFEST_TYPES = (DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX)
INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})


@dataclass(frozen=True)
class References:
    """The digests a manifest's schema names: blobs (config, layers, children), subject."""

    blobs: list[Digest] = field(default_factory=list)
    subject: Digest | None = None
    document: dict[str, Any] = field(default_factory=dict)  # the parsed manifest


def parse_json(body: bytes) -> dict[str, Any]:
    """The manifest as a JSON object; empty when it is not one (it is stored regardless)."""
    try:
        parsed = load_json(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _digest_of(descriptor: Any) -> Digest | None:
    if not isinstance(descriptor, dict) or not isinstance(descriptor.get("digest"), str):
        return None
    try:
        return Digest.parse(descriptor["digest"])
    except DigestInvalid:
        return None


def _descriptors(document: dict[str, Any]) -> Iterator[Any]:
    yield document.get("config")
    for key in ("layers", "manifests"):
        entries = document.get(key)
        if isinstance(entries, list):
            yield from entries


def references(body: bytes) -> References:
    """Parse an image manifest, an index or an artifact; tolerant of anything else."""
    document = parse_json(body)
    blobs = [digest for item in _descriptors(document) if (digest := _digest_of(item))]
    return References(blobs, _digest_of(document.get("subject")), document)


def media_type_in(body: bytes) -> str:
    """The ``mediaType`` a manifest declares, or "" (for when the upstream sent none)."""
    value = parse_json(body).get("mediaType")
    return value if isinstance(value, str) else ""
