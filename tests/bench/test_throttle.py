"""The throttled link: a shared byte rate, request lines counted, bytes passed intact."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from bench.throttle import RequestLines, ThrottledLink, TokenBucket
from tests.support.images import build_image, push_image
from tests.support.upstream import UpstreamRegistry


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("takes", "expected_waits"),
    [
        ([500], [0.0]),  # within the burst
        ([1000, 1000], [0.0, 1.0]),  # the burst, then a second's worth
        ([1500, 1000, 1000], [0.5, 1.5, 2.5]),  # debts add up: streams share the rate
    ],
)
def test_token_bucket_waits_for_its_debt(takes: list[int], expected_waits: list[float]) -> None:
    bucket = TokenBucket(rate=1000, burst=1000, clock=FakeClock())
    assert [bucket.take(amount) for amount in takes] == expected_waits


def test_token_bucket_refills_with_time_up_to_its_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1000, burst=1000, clock=clock)
    assert bucket.take(2000) == 1.0
    clock.now += 1.0  # the debt is paid
    assert bucket.take(1000) == 1.0
    clock.now += 60.0  # a long pause refills the burst, no more
    assert bucket.take(1000) == 0.0
    assert bucket.take(500) == 0.5


def test_request_lines_are_found_across_pieces_and_not_in_headers() -> None:
    parser = RequestLines()
    stream = (
        b"GET /v2/library/a/blobs/sha256:ab HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"
        b"HEAD /v2/library/a/manifests/1 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    found = []
    for start in range(0, len(stream), 7):
        found += parser.feed(stream[start : start + 7])
    assert found == [
        ("GET", "/v2/library/a/blobs/sha256:ab"),
        ("HEAD", "/v2/library/a/manifests/1"),
    ]


def test_the_link_passes_bytes_intact_and_counts_the_gets_of_a_blob(
    tmp_path: Path, upstream: UpstreamRegistry
) -> None:
    image = build_image("throttle", padding=3 * 1024 * 1024)
    push_image(upstream.url, "library/throttle", "1", image)
    layer = image.layer_digests[0]
    path = f"/v2/library/throttle/blobs/{layer}"
    with ThrottledLink(tmp_path / "link", upstream.url) as link:
        offset = link.log_size()
        for _ in range(2):
            with urllib.request.urlopen(link.url + path, timeout=30) as answer:
                assert answer.read() == image.blobs[layer]
        manifest = urllib.request.Request(
            f"{link.url}/v2/library/throttle/manifests/1", headers={"Accept": image.media_type}
        )
        with urllib.request.urlopen(manifest, timeout=30) as answer:
            assert answer.read() == image.manifest
        assert link.requests_since(offset, "GET", path) == 2
        assert link.requests_since(offset, "HEAD", path) == 0
