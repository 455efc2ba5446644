"""A real docker-registry for the benchmark's own tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.upstream import UpstreamRegistry


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[UpstreamRegistry]:
    with UpstreamRegistry(tmp_path) as registry:
        yield registry
