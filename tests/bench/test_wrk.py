"""bench/wrk.py, the one wrk runner of every wrk case: what it reads of wrk's summary, and
that a loop of error statuses raises instead of passing for a rate. No timings asserted."""

from __future__ import annotations

import asyncio
import os

import pytest

from bench.client import BenchError
from bench.wrk import wrk, wrk_missing
from tests.support.images import build_image, push_image
from tests.support.upstream import UpstreamRegistry

# In CI wrk is installed (scripts/install-system-deps), so there the test never skips.
pytestmark = pytest.mark.skipif(
    wrk_missing() is not None and os.environ.get("CI") != "true", reason="wrk is not installed"
)


def test_wrk_counts_the_requests_and_bytes_of_a_blob(upstream: UpstreamRegistry) -> None:
    image = build_image("wrk", padding=1024 * 1024)
    push_image(upstream.url, "library/wrk", "1", image)
    layer = image.layer_digests[0]
    load = asyncio.run(wrk(f"{upstream.url}/v2/library/wrk/blobs/{layer}", 1))
    assert load.requests > 0
    # Every completed request read the whole blob; an unfinished one read part of it.
    assert load.bytes >= load.requests * len(image.blobs[layer])
    assert load.seconds > 0
    assert load.median_ms <= load.p99_ms


def test_wrk_raises_when_the_server_answers_errors(upstream: UpstreamRegistry) -> None:
    missing = f"{upstream.url}/v2/library/wrk/blobs/sha256:{'0' * 64}"
    with pytest.raises(BenchError, match="error statuses"):
        asyncio.run(wrk(missing, 1, {"Accept": "*/*"}))
