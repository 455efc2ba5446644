"""Small helpers for proxy tests: collecting streams, naming things."""

from __future__ import annotations

from collections.abc import AsyncIterator

from imagegate.core.digests import Digest
from imagegate.core.names import Reference, RepositoryName, parse_reference, parse_repository


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    data = bytearray()
    async for chunk in chunks:
        data += chunk
    return bytes(data)


def repo(name: str) -> RepositoryName:
    return parse_repository(name)


def ref(value: str) -> Reference:
    return parse_reference(value)


def digest(value: str) -> Digest:
    return Digest.parse(value)
