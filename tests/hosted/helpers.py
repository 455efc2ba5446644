"""Building blocks for hosted-repository tests: bodies, blobs and manifests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from imagegate.core.digests import Digest
from imagegate.core.names import Reference, RepositoryName, parse_repository
from imagegate.core.policy import Location
from imagegate.hosted.interfaces import PushedManifest
from imagegate.hosted.registry import HostedContent
from imagegate.proxy.descriptors import OCI_INDEX, OCI_MANIFEST

APP = parse_repository("acme/app")
OTHER = parse_repository("acme/other")
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


def hosted_in(repository: RepositoryName) -> Location:
    """The mount source a pull decision names for a hosted repository."""
    return Location(repository, hosted=True)


def cached_for(repository: RepositoryName) -> Location:
    """The mount source a pull decision names for an upstream name (the cache's)."""
    return Location(repository, hosted=False)


class BodyBroke(Exception):
    """Stands for the ASGI server's ClientDisconnect."""


async def body(*chunks: bytes, fail_after: int | None = None) -> AsyncIterator[bytes]:
    """A request body; with ``fail_after``, the connection drops after that many chunks."""
    for number, chunk in enumerate(chunks):
        if fail_after is not None and number == fail_after:
            raise BodyBroke("connection dropped")
        yield chunk
    if fail_after is not None and fail_after >= len(chunks):
        raise BodyBroke("connection dropped")


async def push_blob(hosted: HostedContent, repository: RepositoryName, data: bytes) -> Digest:
    upload = await hosted.start_upload(repository)
    digest = Digest.of(data)
    return await hosted.finish(repository, upload.upload_id, digest, body(data), None, len(data))


def descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": str(Digest.of(data)), "size": len(data)}


def image_manifest(
    config: bytes, *layers: bytes, subject: bytes | None = None, **extra: Any
) -> bytes:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(CONFIG_TYPE, config),
        "layers": [descriptor(LAYER_TYPE, layer) for layer in layers],
        **extra,
    }
    if subject is not None:
        document["subject"] = descriptor(OCI_MANIFEST, subject)
    return json.dumps(document, indent=1).encode()  # not canonical: bytes must be kept


def index_manifest(*children: bytes, **extra: Any) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor(OCI_MANIFEST, child) for child in children],
        **extra,
    }
    return json.dumps(document).encode()


async def push_image(
    hosted: HostedContent,
    repository: RepositoryName,
    tag: str | None,
    config: bytes,
    *layers: bytes,
    **extra: Any,
) -> tuple[bytes, PushedManifest]:
    """Push the blobs, then the manifest (by ``tag``, or by digest)."""
    for blob in (config, *layers):
        await push_blob(hosted, repository, blob)
    manifest = image_manifest(config, *layers, **extra)
    reference = Reference(tag=tag) if tag else Reference(digest=Digest.of(manifest))
    return manifest, await hosted.put_manifest(repository, reference, OCI_MANIFEST, manifest)


async def read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])
