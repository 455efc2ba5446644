"""Cached blobs as ``imagegate serve`` sends them: by the kernel, whole or in ranges.

A real gateway subprocess (uvloop, our protocol) in front of a real distribution
registry; requests go over plain sockets, so keep-alive and a client leaving mid-body
are the test's to control. The gateway logs each zero-copy body at debug level: that is
how a test tells the kernel sent it, not a Python loop.
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.binaries import require_binary
from tests.support.gateway import Gateway
from tests.support.images import build_image, push_image
from tests.support.rawhttp import Reply, exchange, request
from tests.support.upstream import UpstreamRegistry

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
REPOSITORY = "library/zerocopy"
LOG_DEADLINE = 30.0  # seconds; only a failing test waits this long


@dataclass(frozen=True)
class Cached:
    gateway: Gateway
    digest: str
    content: bytes
    auth: dict[str, str]

    @property
    def path(self) -> str:
        return f"/v2/{REPOSITORY}/blobs/{self.digest}"

    def exchange(
        self, *requests: tuple[str, str], headers: dict[str, str] | None = None
    ) -> list[Reply]:
        return exchange(self.gateway.port, *requests, headers={**self.auth, **(headers or {})})

    def logged(self, since: int, event: str, expected: int) -> list[dict[str, Any]]:
        """The gateway's log entries of ``event`` since ``since``, once there are
        ``expected`` (a line comes as the last byte is sent: the client may be first)."""
        deadline = time.monotonic() + LOG_DEADLINE
        while True:
            lines = self.gateway.log_since(since).splitlines()
            entries = [json.loads(line) for line in lines if line.startswith("{")]
            found = [entry for entry in entries if entry.get("event") == event]
            if len(found) >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def zero_copy_bodies(self, since: int, expected: int) -> list[tuple[int, int]]:
        """(offset, bytes) of each body the kernel sent since ``since``."""
        return [
            (entry["offset"], entry["bytes"]) for entry in self.logged(since, "zero_copy", expected)
        ]


def _token(gateway: Gateway) -> str:
    query = urllib.parse.urlencode(
        {"service": "imagegate", "scope": f"repository:{REPOSITORY}:pull"}
    )
    with urllib.request.urlopen(f"{gateway.url}/token?{query}", timeout=30) as response:
        return str(json.load(response)["token"])


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cached]:
    """A 6 MiB layer, fetched through the gateway once (streamed: it was not cached)."""
    require_binary("docker-registry")
    directory = tmp_path_factory.mktemp("cached-blobs")
    image = build_image("zerocopy", padding=6 * MIB)
    digest = image.layer_digests[0]
    with UpstreamRegistry(directory) as upstream:
        push_image(upstream.url, REPOSITORY, "1", image)
        settings = {"IMAGEGATE_LOG_LEVEL": "debug"}
        with Gateway(directory, upstream_url=upstream.url, settings=settings) as gateway:
            blob = Cached(
                gateway, digest, image.blobs[digest], {"Authorization": f"Bearer {_token(gateway)}"}
            )
            (first,) = blob.exchange(("GET", blob.path))  # streamed while it is fetched
            assert (first.status, first.body) == (200, blob.content)
            # Cached once the fetch has committed it, a moment after the last byte.
            deadline = time.monotonic() + LOG_DEADLINE
            while time.monotonic() < deadline:
                since = gateway.log_size()
                blob.exchange(("GET", blob.path), headers={"Range": "bytes=0-0"})
                if blob.zero_copy_bodies(since, 1) == [(0, 1)]:
                    break
            yield blob


def test_a_cached_blob_is_sent_whole_by_the_kernel(cached: Cached) -> None:
    since = cached.gateway.log_size()
    (reply,) = cached.exchange(("GET", cached.path))
    assert reply.status == 200
    assert reply.headers["content-length"] == str(len(cached.content))
    assert "sha256:" + hashlib.sha256(reply.body).hexdigest() == cached.digest
    assert reply.headers["docker-content-digest"] == cached.digest
    assert cached.zero_copy_bodies(since, 1) == [(0, len(cached.content))]
    # The request's log line counts what the kernel sent.
    assert [entry["bytes"] for entry in cached.logged(since, "request", 1)] == [len(cached.content)]


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=1000-1999", 1000, 1999),
        ("bytes=-500", -500, -1),  # the last 500 bytes
        ("bytes=3145728-", 3 * MIB, -1),  # from an offset to the end
    ],
)
def test_ranges_are_sent_by_the_kernel_from_their_offset(
    cached: Cached, header: str, start: int, end: int
) -> None:
    size = len(cached.content)
    first, last = start % size, end % size
    since = cached.gateway.log_size()
    (reply,) = cached.exchange(("GET", cached.path), headers={"Range": header})
    assert reply.status == 206
    assert reply.headers["content-range"] == f"bytes {first}-{last}/{size}"
    assert reply.body == cached.content[first : last + 1]
    assert cached.zero_copy_bodies(since, 1) == [(first, last - first + 1)]


def test_head_then_two_bodies_on_one_connection(cached: Cached) -> None:
    head, whole, part = cached.exchange(
        ("HEAD", cached.path), ("GET", cached.path), ("GET", cached.path)
    )
    assert (head.status, head.headers["content-length"], head.body) == (
        200,
        str(len(cached.content)),
        b"",
    )
    assert whole.body == cached.content
    assert part.body == cached.content


def test_a_client_leaving_mid_body_leaves_the_gateway_serving(cached: Cached) -> None:
    since = cached.gateway.log_size()
    for reset in (False, True):  # a close, then a reset
        with socket.create_connection(("127.0.0.1", cached.gateway.port), timeout=30) as connection:
            connection.sendall(request("GET", cached.path, cached.auth))
            assert connection.recv(64 * 1024)
            if reset:
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    (reply,) = cached.exchange(("GET", cached.path))
    assert reply.body == cached.content
    log = cached.gateway.log_since(since)
    assert "Exception in ASGI application" not in log, log
    assert '"level": "error"' not in log, log
