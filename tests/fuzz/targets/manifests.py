"""Manifests and indexes: what a cached upstream manifest refers to
(``proxy/descriptors.py``) and what a pushed one must be (``hosted/validation.py``).

Properties: ``references`` and ``media_type_in`` never raise (an upstream may send
anything); ``validate_manifest`` raises only ``ManifestInvalid`` or ``ManifestTooLarge``,
whose registry JSON envelope renders; a manifest it accepts is a schema 2 JSON object of
a supported media type, every digest it returns is spelled in the body, and the proxy's
reading of the same bytes names each of them (one vocabulary for both sides). The first
input byte picks the Content-Type the push declares.
"""

from __future__ import annotations

import json

from imagegate.core.errors import ManifestInvalid, RegistryError
from imagegate.hosted.errors import ManifestTooLarge
from imagegate.hosted.validation import MANIFEST_TYPES, validate_manifest
from imagegate.http.errors import error_body
from imagegate.proxy.descriptors import media_type_in, references

CONTENT_TYPES = ["", *MANIFEST_TYPES, "application/json", f"{MANIFEST_TYPES[0]}; charset=utf-8"]


def _renders(error: RegistryError) -> None:
    body = json.loads(error_body(error))
    assert body["errors"][0]["code"] == error.code and error.message, body


def test_one_input(data: bytes) -> None:
    if not data:
        return
    content_type, body = CONTENT_TYPES[data[0] % len(CONTENT_TYPES)], data[1:]
    found = references(body)
    declared = media_type_in(body)
    assert isinstance(declared, str)
    try:
        valid = validate_manifest(content_type, body)
    except (ManifestInvalid, ManifestTooLarge) as exc:
        _renders(exc)
        return
    document = json.loads(body)
    assert isinstance(document, dict) and document["schemaVersion"] == 2, document
    assert valid.media_type.lower() in MANIFEST_TYPES, valid
    assert declared in ("", valid.media_type), (declared, valid)
    named = {str(d.digest) for d in [*valid.blobs, *valid.children]}
    assert named <= {str(digest) for digest in found.blobs}, (named, found)
    assert valid.subject == found.subject, (valid, found)
