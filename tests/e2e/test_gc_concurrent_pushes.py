"""``imagegate gc`` racing with pushes loses nothing referenced, and does collect what no
manifest references any more once past the grace period.

The race: ``imagegate gc --grace-period 0`` runs in a loop (as separate CLI processes,
the way an operator's cron would) while several clients push new images concurrently,
with chunked uploads so that blobs sit in upload sessions and between "blob pushed" and
"manifest pushed" for a while. Every push must succeed, and afterwards every pushed
manifest and each of its blobs must pull and verify.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.gateway import CliResult, Gateway
from tests.support.images import Image, build_image, build_index
from tests.support.oci import (
    OciClient,
    digest_of,
    expect,
    get_manifest,
    push_image,
    put_manifest,
    upload_chunked,
)
from tests.support.upstream import UpstreamRegistry

pytestmark = pytest.mark.e2e

PUSHERS = 4
IMAGES_PER_PUSHER = 6
PADDING = 1024 * 1024  # incompressible bytes in each image's first layer: many chunks
CHUNK = 32 * 1024


@pytest.fixture(scope="module")
def gateway(start_gateway: Callable[..., Gateway], upstream: UpstreamRegistry) -> Gateway:
    gateway = start_gateway(upstream_url=upstream.url)
    gateway.add_user("owner", "owner-Pa55word")
    gateway.add_user("pusher", "pusher-Pa55word")
    gateway.add_org("gcorg", owner="owner")
    gateway.cli("org", "team", "add", "gcorg", "writers")
    gateway.add_member("gcorg", "pusher", team="writers")
    gateway.cli("team", "permission", "set", "gcorg", "writers", "write")
    return gateway


def pusher(gateway: Gateway) -> OciClient:
    return OciClient(gateway.url, ("pusher", "pusher-Pa55word"))


def owner(gateway: Gateway) -> OciClient:
    return OciClient(gateway.url, ("owner", "owner-Pa55word"))


def push_slowly(client: OciClient, repository: str, tag: str, image: Image) -> int:
    """Blobs in small chunks (many requests, a long window for gc), then manifests.

    An upload in flight must never be disturbed by gc: every upload must succeed. A blob
    that was complete but not yet referenced when gc ran with no grace period may be
    collected; the manifest PUT then says MANIFEST_BLOB_UNKNOWN (the registry stays
    consistent) and the client pushes the blob again, as real clients do. Returns the
    number of such retries.
    """
    retries = 0
    manifests = [*((child, child.digest) for child in image.children), (image, tag)]
    for manifest, reference in manifests:
        for attempt in range(6):
            own_blobs = {} if manifest.children else manifest.blobs
            for digest, data in own_blobs.items():
                if attempt == 0 or client.head(f"/v2/{repository}/blobs/{digest}").status != 200:
                    expect(upload_chunked(client, repository, data, CHUNK), 201)
            answer = put_manifest(
                client, repository, reference, manifest.manifest, manifest.media_type
            )
            if answer.status == 201:
                break
            assert answer.status == 400 and answer.error_codes == ["MANIFEST_BLOB_UNKNOWN"], (
                answer.describe()
            )
            retries += 1
        else:
            raise AssertionError(f"{repository}:{reference} never went in")
    return retries


def verify_pull(client: OciClient, repository: str, image: Image, tag: str) -> None:
    for reference in (tag, image.digest):
        got = expect(get_manifest(client, repository, reference), 200)
        assert got.body == image.manifest
    for child in image.children:
        got = expect(get_manifest(client, repository, child.digest), 200)
        assert got.body == child.manifest
    for digest, data in image.blobs.items():
        got = expect(client.get(f"/v2/{repository}/blobs/{digest}"), 200)
        assert "sha256:" + hashlib.sha256(got.body).hexdigest() == digest
        assert got.body == data


class GcLoop:
    """``imagegate gc --grace-period 0`` over and over until stopped."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.runs: list[CliResult] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.runs.append(self.gateway.cli("gc", "--grace-period", "0", check=False))

    def __enter__(self) -> GcLoop:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)


def test_gc_racing_with_concurrent_pushes_loses_nothing(gateway: Gateway) -> None:
    work: list[tuple[str, str, Image]] = []
    for number in range(PUSHERS):
        for round_ in range(IMAGES_PER_PUSHER):
            seed = f"gc-race-{number}-{round_}"
            image = (
                build_index(seed)
                if round_ % 3 == 1
                else build_image(seed, layers=3, padding=PADDING)
            )
            work.append((f"gcorg/race-{number}", f"v{round_}", image))

    def push_all(number: int) -> int:
        client = pusher(gateway)
        return sum(
            push_slowly(client, repository, tag, image)
            for repository, tag, image in work[number::PUSHERS]
        )

    with GcLoop(gateway) as loop, ThreadPoolExecutor(PUSHERS) as pool:
        retries = sum(
            future.result() for future in [pool.submit(push_all, n) for n in range(PUSHERS)]
        )
    # Retries are legitimate but must stay the exception, or pushing under gc is unusable.
    assert retries <= len(work), f"{retries} manifest pushes had to be retried"
    failed = [run.describe() for run in loop.runs if run.returncode != 0]
    assert not failed, "gc failed while pushes were running:\n" + "\n".join(failed[:3])
    assert len(loop.runs) >= 2, f"gc ran {len(loop.runs)} times: the pushes did not race it"

    gateway.cli("gc", "--grace-period", "0")  # and once more, with nothing in flight
    client = pusher(gateway)
    for repository, tag, image in work:
        verify_pull(client, repository, image, tag)


def test_gc_collects_unreferenced_blobs_past_the_grace_period(gateway: Gateway) -> None:
    client, admin = pusher(gateway), owner(gateway)
    shared = build_image("gc-shared", layers=2)
    dropped = build_image("gc-dropped", layers=2)
    push_image(client, "gcorg/keep", "1", shared)
    push_image(client, "gcorg/drop", "shared", shared)
    push_image(client, "gcorg/drop", "dropped", dropped)
    for image in (shared, dropped):
        expect(admin.delete(f"/v2/gcorg/drop/manifests/{image.digest}"), 202)

    gateway.cli("gc", "--grace-period", "0", "--dry-run")
    for digest in dropped.blobs:  # a dry run removes nothing
        expect(admin.head(f"/v2/gcorg/drop/blobs/{digest}"), 200)
    gateway.cli("gc", "--grace-period", "60")
    for digest in dropped.blobs:  # younger than the grace period: kept
        expect(admin.head(f"/v2/gcorg/drop/blobs/{digest}"), 200)

    gateway.cli("gc", "--grace-period", "0")
    for digest in dropped.blobs:
        assert admin.head(f"/v2/gcorg/drop/blobs/{digest}").status == 404, digest
        assert admin.get(f"/v2/gcorg/drop/blobs/{digest}").status == 404, digest
    # The same bytes are still referenced from gcorg/keep: they stay, and verify.
    verify_pull(admin, "gcorg/keep", shared, "1")
    # A collected blob can be pushed again.
    push_image(client, "gcorg/drop", "again", dropped)
    verify_pull(client, "gcorg/drop", dropped, "again")


def test_gc_keeps_a_blob_whose_upload_finished_but_has_no_manifest_yet(gateway: Gateway) -> None:
    """Within the grace period a just-pushed blob waits for its manifest."""
    client = pusher(gateway)
    image = build_image("gc-pending", layers=1)
    for data in image.blobs.values():
        expect(upload_chunked(client, "gcorg/pending", data, 8 * 1024), 201)
    gateway.cli("gc", "--grace-period", "10")
    expect(put_manifest(client, "gcorg/pending", "1", image.manifest, image.media_type), 201)
    verify_pull(client, "gcorg/pending", image, "1")
    assert digest_of(image.manifest) == image.digest
