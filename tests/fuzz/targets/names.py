"""Repository names, references, digests, account and team names (``core/names.py``).

Properties: only ``NameInvalid``/``DigestInvalid`` (or ``ValueError`` for account names)
escape, and their JSON envelope renders; what parses obeys the grammar of the OCI
distribution spec (its regular expressions are written out here, independently of the
code), stays within the length limits, and parses again to an equal value from its
canonical form.
"""

from __future__ import annotations

import json
import re

from imagegate.core.digests import Digest
from imagegate.core.errors import DigestInvalid, NameInvalid, RegistryError
from imagegate.core.names import (
    parse_reference,
    parse_repository,
    validate_account_name,
    validate_team_name,
)
from imagegate.http.errors import error_body

# distribution-spec, "Pulling manifests": <name> and <reference> (tag).
SPEC_NAME = re.compile(
    r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*", re.ASCII
)
SPEC_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", re.ASCII)
# image-spec, "Digests": algorithm ":" encoded, and the registered encodings.
SPEC_DIGEST = re.compile(r"[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+", re.ASCII)
SPEC_ENCODED = {"sha256": re.compile(r"[a-f0-9]{64}"), "sha512": re.compile(r"[a-f0-9]{128}")}
# Docker Hub's account names as the gateway widens them (README: 2 to 30 characters).
ACCOUNT = re.compile(r"[a-z0-9]([a-z0-9_-]*[a-z0-9])?", re.ASCII)


def _renders(error: RegistryError) -> None:
    """The registry's JSON envelope for the error, as a client receives it."""
    body = json.loads(error_body(error))
    assert body["errors"][0]["message"] == error.message and error.message


def _repository(text: str) -> None:
    canonical = text if "/" in text else f"library/{text}"
    try:
        name = parse_repository(text)
    except NameInvalid as exc:
        _renders(exc)
        assert SPEC_NAME.fullmatch(text) is None or len(canonical) > 200, text
        return
    assert SPEC_NAME.fullmatch(text) and len(canonical) <= 200, text
    assert name.full == canonical, (text, name)
    assert "/" not in name.namespace and name.path, name
    assert parse_repository(name.full) == name == parse_repository(str(name))


def _reference(text: str) -> None:
    try:
        reference = parse_reference(text)
    except (NameInvalid, DigestInvalid) as exc:
        _renders(exc)
        assert SPEC_TAG.fullmatch(text) is None, text
        return
    assert str(reference) == text
    assert (reference.tag is None) != (reference.digest is None), reference
    if reference.tag is not None:
        assert SPEC_TAG.fullmatch(text), text
    else:
        _digest(text, parsed=reference.digest)


def _digest(text: str, parsed: Digest | None = None) -> None:
    try:
        digest = parsed or Digest.parse(text)
    except DigestInvalid as exc:
        _renders(exc)
        algorithm, _, encoded = text.partition(":")
        pattern = SPEC_ENCODED.get(algorithm)
        assert pattern is None or pattern.fullmatch(encoded) is None, text
        return
    assert SPEC_DIGEST.fullmatch(text), text
    assert SPEC_ENCODED[digest.algorithm].fullmatch(digest.encoded), text
    assert str(digest) == text and Digest.parse(str(digest)) == digest


def _account(text: str) -> None:
    for validate, shortest, longest in (
        (validate_account_name, 2, 30),
        (validate_team_name, 1, 50),
    ):
        try:
            valid = validate(text)
        except ValueError as exc:
            assert str(exc), text
            continue
        assert valid == text and ACCOUNT.fullmatch(text), text
        assert shortest <= len(text) <= longest, text
        assert text != "library" or validate is validate_team_name, text


def test_one_input(data: bytes) -> None:
    # Names arrive percent-decoded from URL paths: any text, lone surrogates included.
    text = data.decode("utf-8", "surrogateescape")
    _repository(text)
    _reference(text)
    _digest(text)
    _account(text)
