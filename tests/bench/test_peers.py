"""The peers the benchmark measures against, and what it reads of a process tree."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench.procfs import process_tree, rss_bytes, tree_cpu_seconds, tree_rss_bytes
from tests.support.images import build_image, push_image, sha256
from tests.support.upstream import UpstreamRegistry


def _get(url: str, accept: str) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=30) as answer:
        body: bytes = answer.read()
    return body


def test_distribution_as_a_pull_through_proxy_serves_the_upstreams_image(
    tmp_path: Path, upstream: UpstreamRegistry
) -> None:
    image = build_image("proxied")
    push_image(upstream.url, "library/proxied", "1", image)
    with UpstreamRegistry(tmp_path, proxy_remote_url=upstream.url, name="proxy") as proxy:
        base = f"{proxy.url}/v2/library/proxied"
        assert sha256(_get(f"{base}/manifests/1", image.media_type)) == image.digest
        assert _get(f"{base}/manifests/{image.digest}", image.media_type) == image.manifest
        layer = image.layer_digests[0]
        assert _get(f"{base}/blobs/{layer}", "*/*") == image.blobs[layer]
        # A proxy is read-only: it refuses to start an upload.
        request = urllib.request.Request(f"{base}/blobs/uploads/", data=b"", method="POST")
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=30)
    assert (tmp_path / "proxy-config.yml").exists() and (tmp_path / "upstream.log").exists()


def test_a_process_tree_counts_its_children() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; data = b'x' * (64 << 20); time.sleep(30)"],
    )
    try:
        # Wait until the child holds its 64 MiB.
        for _ in range(200):
            if rss_bytes(child.pid) > 64 << 20:
                break
            subprocess.run(["sleep", "0.05"], check=True)
        me = os.getpid()
        assert child.pid in process_tree(me)
        assert tree_rss_bytes(me) >= rss_bytes(me) + (64 << 20)
        assert tree_cpu_seconds(me) > 0
    finally:
        child.kill()
        child.wait()
