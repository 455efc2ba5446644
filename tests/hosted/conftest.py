"""A hosted registry on a temp directory, shared-store style (no HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagegate.hosted.registry import HostedContent
from imagegate.storage.filesystem import open_filesystem_store
from imagegate.storage.interfaces import ContentStore


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return open_filesystem_store(tmp_path / "store")


@pytest.fixture
def hosted(store: ContentStore) -> HostedContent:
    return HostedContent(store)
