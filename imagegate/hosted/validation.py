"""What a pushed manifest must be before it is stored: pure checks on its exact bytes.

The four manifest media types (OCI and Docker image manifests, OCI index, Docker manifest
list) are accepted, OCI artifacts included (an image manifest with ``artifactType``).
Whether the blobs and child manifests it names exist is for ``manifests`` to ask the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imagegate.core.digests import Digest
from imagegate.core.errors import DigestInvalid, ManifestInvalid
from imagegate.core.inputs import JsonInvalid, load_json
from imagegate.hosted.errors import ManifestTooLarge
from imagegate.hosted.interfaces import MAX_MANIFEST_BYTES
from imagegate.proxy.descriptors import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    INDEX_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
)

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST)


@dataclass(frozen=True)
class Descriptor:
    digest: Digest
    size: int
    external: bool  # it lists ``urls``: a foreign or non-distributable layer, may be absent


@dataclass(frozen=True)
class ValidManifest:
    media_type: str
    blobs: list[Descriptor]  # config and layers: blobs of the repository
    children: list[Descriptor]  # an index's manifests: manifests of the repository
    subject: Digest | None


def _invalid(message: str, **detail: Any) -> ManifestInvalid:
    return ManifestInvalid(message, detail=detail or None)


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be a descriptor object", field=where)
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise _invalid(f"{where} needs a mediaType", field=where)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where} needs a size in bytes", field=where)
    if not isinstance(digest, str):
        raise _invalid(f"{where} needs a digest", field=where)
    try:
        parsed = Digest.parse(digest)
    except DigestInvalid as exc:
        raise _invalid(f"{where}: {exc.message}", field=where, digest=digest) from exc
    urls = value.get("urls")
    return Descriptor(parsed, size, isinstance(urls, list) and bool(urls))


def _descriptors(document: dict[str, Any], key: str, required: bool) -> list[Descriptor]:
    entries = document.get(key)
    if entries is None and not required:
        return []
    if not isinstance(entries, list):
        raise _invalid(f"{key} must be a list of descriptors", field=key)
    return [_descriptor(entry, f"{key}[{n}]") for n, entry in enumerate(entries)]


def _media_type(content_type: str, document: dict[str, Any]) -> str:
    """The manifest's media type: Content-Type (without parameters) and ``mediaType``
    must agree when both are given; either alone will do."""
    sent = content_type.split(";", 1)[0].strip()
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _invalid("mediaType must be a string")
    if sent and declared and sent.lower() != declared.lower():
        raise _invalid(
            f"Content-Type {sent!r} does not match the manifest's mediaType {declared!r}",
            content_type=sent,
            media_type=declared,
        )
    media_type = declared or sent
    # ASCII first: str.lower() maps a few other letters (the Kelvin sign) to ASCII ones,
    # and the type is served back as a header, which only takes Latin-1.
    if not media_type.isascii() or media_type.lower() not in MANIFEST_TYPES:
        raise _invalid(
            f"unsupported manifest media type {media_type!r}: use one of "
            + ", ".join(MANIFEST_TYPES),
            media_type=media_type,
        )
    return media_type  # as pushed: it is served back as the Content-Type


def validate_manifest(content_type: str, body: bytes) -> ValidManifest:
    """Check a pushed manifest; raises ManifestTooLarge (413) or ManifestInvalid."""
    if len(body) > MAX_MANIFEST_BYTES:
        raise ManifestTooLarge(
            f"manifest is {len(body)} bytes; at most {MAX_MANIFEST_BYTES} are accepted",
            detail={"size": len(body), "limit": MAX_MANIFEST_BYTES},
        )
    try:
        document = load_json(body)
    except JsonInvalid as exc:
        raise _invalid(f"manifest is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise _invalid("manifest must be a JSON object")
    media_type = _media_type(content_type, document)
    if document.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2", schema_version=document.get("schemaVersion"))
    artifact_type = document.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid("artifactType must be a string")
    subject = document.get("subject")
    subject_digest = _descriptor(subject, "subject").digest if subject is not None else None
    if media_type.lower() in INDEX_TYPES:
        children = _descriptors(document, "manifests", required=True)
        return ValidManifest(media_type, [], children, subject_digest)
    config = _descriptor(document.get("config"), "config")
    layers = _descriptors(document, "layers", required=media_type.lower() == DOCKER_MANIFEST)
    return ValidManifest(media_type, [config, *layers], [], subject_digest)
