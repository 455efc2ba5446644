"""Small, real, distinct container images built in Python, and ways to publish them.

Each image has gzip'd tar layers holding a file or two whose content comes from ``seed``,
so two seeds never share a digest (except the empty config of artifacts). Layers are
deterministic: the same seed always gives the same digests.

``push_image`` speaks the distribution API over HTTP (monolithic uploads, then manifest
PUTs), answering a Basic or Bearer challenge; ``write_oci_layout`` writes a directory that
``skopeo copy oci:DIR:TAG docker://...`` reads.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tests.support.upstream import RegistryHttp

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

Flavor = Literal["oci", "docker"]
_TYPES: dict[Flavor, tuple[str, str, str, str]] = {
    "oci": (OCI_MANIFEST, OCI_INDEX, OCI_CONFIG, OCI_LAYER),
    "docker": (DOCKER_MANIFEST, DOCKER_LIST, DOCKER_CONFIG, DOCKER_LAYER),
}
EMPTY_JSON = b"{}"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def _descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


@dataclass(frozen=True)
class Image:
    """A manifest (image, index or artifact) with every blob it needs.

    ``children`` are manifests an index refers to; they are pushed by digest first.
    ``blobs`` maps digest to bytes for this manifest and all its children.
    """

    manifest: bytes
    media_type: str
    blobs: Mapping[str, bytes] = field(default_factory=dict)
    children: Sequence[Image] = ()

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    @property
    def parsed(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.manifest)
        return result

    @property
    def config_digest(self) -> str:
        return str(self.parsed["config"]["digest"])

    @property
    def layer_digests(self) -> list[str]:
        return [str(layer["digest"]) for layer in self.parsed["layers"]]

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return _descriptor(self.media_type, self.manifest, **extra)


def _layer(files: Mapping[str, bytes]) -> tuple[bytes, bytes]:
    """A deterministic gzip'd tar of ``files``: (compressed blob, uncompressed tar)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(content))
    raw = buffer.getvalue()
    return gzip.compress(raw, compresslevel=6, mtime=0), raw


def build_image(
    seed: str,
    *,
    flavor: Flavor = "oci",
    architecture: str = "amd64",
    variant: str | None = None,
    os: str = "linux",
    layers: int = 1,
    padding: int = 0,
) -> Image:
    """An image of ``layers`` layers; ``padding`` adds that many random (incompressible)
    bytes to the first layer, for blobs bigger than one chunk."""
    manifest_type, _, config_type, layer_type = _TYPES[flavor]
    blobs: dict[str, bytes] = {}
    layer_descriptors, diff_ids = [], []
    for number in range(layers):
        files = {f"etc/imagegate/{seed}-{number}.txt": f"{seed} layer {number}\n".encode()}
        if padding and number == 0:
            files["var/padding.bin"] = random.Random(seed).randbytes(padding)
        blob, raw = _layer(files)
        blobs[sha256(blob)] = blob
        layer_descriptors.append(_descriptor(layer_type, blob))
        diff_ids.append(sha256(raw))
    platform = {"architecture": architecture, "os": os}
    if variant:
        platform["variant"] = variant
    config = _canonical(
        {
            **platform,
            "created": "1970-01-01T00:00:00Z",
            "config": {"Env": [f"IMAGEGATE_SEED={seed}"], "Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"imagegate tests: {seed}"}],
        }
    )
    blobs[sha256(config)] = config
    manifest = _canonical(
        {
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": _descriptor(config_type, config),
            "layers": layer_descriptors,
        }
    )
    return Image(manifest, manifest_type, blobs)


DEFAULT_PLATFORMS: tuple[tuple[str, str | None], ...] = (("amd64", None), ("arm64", "v8"))


def build_index(
    seed: str,
    *,
    flavor: Flavor = "oci",
    platforms: Sequence[tuple[str, str | None]] = DEFAULT_PLATFORMS,
) -> Image:
    """A multi-architecture index (an OCI index or a Docker manifest list)."""
    _, index_type, _, _ = _TYPES[flavor]
    children = [
        build_image(f"{seed}-{arch}", flavor=flavor, architecture=arch, variant=variant)
        for arch, variant in platforms
    ]
    entries = []
    for child, (arch, variant) in zip(children, platforms, strict=True):
        platform = {"architecture": arch, "os": "linux"}
        if variant:
            platform["variant"] = variant
        entries.append(child.descriptor(platform=platform))
    manifest = _canonical({"schemaVersion": 2, "mediaType": index_type, "manifests": entries})
    blobs = {digest: data for child in children for digest, data in child.blobs.items()}
    return Image(manifest, index_type, blobs, children)


def build_referrer(
    subject: Image, artifact_type: str, seed: str, annotations: Mapping[str, str] | None = None
) -> Image:
    """An OCI artifact manifest whose ``subject`` is ``subject`` (a signature, an SBOM...)."""
    payload = f"{seed} about {subject.digest}\n".encode()
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": _descriptor(OCI_EMPTY, EMPTY_JSON),
        "layers": [_descriptor("application/octet-stream", payload)],
        "subject": subject.descriptor(),
    }
    if annotations:
        body["annotations"] = dict(annotations)
    blobs = {sha256(EMPTY_JSON): EMPTY_JSON, sha256(payload): payload}
    return Image(_canonical(body), OCI_MANIFEST, blobs)


def write_oci_layout(image: Image, directory: Path, tag: str) -> Path:
    """Add ``image`` under ``tag`` to the OCI image layout at ``directory`` (created if new)."""
    blob_dir = directory / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    contents = dict(image.blobs)
    for manifest in (image, *image.children):
        contents[manifest.digest] = manifest.manifest
    for digest, data in contents.items():
        (blob_dir / digest.removeprefix("sha256:")).write_bytes(data)
    index_path = directory / "index.json"
    index: dict[str, Any] = (
        json.loads(index_path.read_text())
        if index_path.exists()
        else {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    )
    ref_name = "org.opencontainers.image.ref.name"
    index["manifests"] = [
        entry for entry in index["manifests"] if entry.get("annotations", {}).get(ref_name) != tag
    ] + [image.descriptor(annotations={ref_name: tag})]
    index_path.write_text(json.dumps(index))
    return directory


def push_image(
    registry_url: str,
    repository: str,
    tag: str | None,
    image: Image,
    credentials: tuple[str, str] | None = None,
) -> str:
    """Push ``image`` (blobs, child manifests, then the manifest under ``tag``, or by digest
    when ``tag`` is None) and return its digest."""
    http = RegistryHttp(registry_url, repository, credentials)
    for digest, data in image.blobs.items():
        http.upload_blob(digest, data)
    for child in image.children:
        http.put_manifest(child.digest, child.manifest, child.media_type)
    http.put_manifest(tag or image.digest, image.manifest, image.media_type)
    return image.digest


def delete_manifest(
    registry_url: str, repository: str, digest: str, credentials: tuple[str, str] | None = None
) -> None:
    """Delete a manifest upstream (the registry must allow deletes)."""
    RegistryHttp(registry_url, repository, credentials).delete_manifest(digest)
