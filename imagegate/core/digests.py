"""Content digests (``algorithm:encoded``) and incremental verification."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from imagegate.core.errors import DigestInvalid

_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_ENCODED = {"sha256": re.compile(r"[a-f0-9]{64}"), "sha512": re.compile(r"[a-f0-9]{128}")}


def is_digest(value: str) -> bool:
    return ":" in value and _DIGEST_RE.fullmatch(value) is not None


@dataclass(frozen=True, order=True)
class Digest:
    """A verified-syntax digest of a supported algorithm (sha256 or sha512)."""

    algorithm: str
    encoded: str

    @classmethod
    def parse(cls, value: str) -> Digest:
        if not is_digest(value):
            raise DigestInvalid(
                f"invalid digest {value!r}: expected algorithm:hex, such as sha256:<64 hex digits>",
                detail={"digest": value},
            )
        algorithm, _, encoded = value.partition(":")
        pattern = _ENCODED.get(algorithm)
        if pattern is None:
            raise DigestInvalid(
                f"unsupported digest algorithm {algorithm!r}: use sha256 or sha512",
                detail={"digest": value},
            )
        if pattern.fullmatch(encoded) is None:
            raise DigestInvalid(
                f"invalid {algorithm} digest {value!r}: the encoded part must be lowercase hex",
                detail={"digest": value},
            )
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> Hasher:
        return Hasher(self.algorithm)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"


class Hasher:
    """Accumulates bytes and reports the digest; used while streaming."""

    def __init__(self, algorithm: str = "sha256") -> None:
        self._hash = hashlib.new(algorithm)
        self.algorithm = algorithm
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)

    def digest(self) -> Digest:
        return Digest(self.algorithm, self._hash.hexdigest())
