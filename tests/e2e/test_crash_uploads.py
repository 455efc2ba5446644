"""Kill the server (SIGKILL) in the middle of uploads and manifest PUTs, restart it on the
same data directory, and check that only complete, verified content is served and that
the client can push again.

A request is caught "in flight" by sending its headers and part of its body over a raw
socket, waiting until the server is busy with it, and killing the process: nothing of
that request may become visible. Requests whose whole body was sent just before the kill
are allowed either outcome, but only whole: a GET by digest answers 404 or exactly the
right bytes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Callable

import pytest

from tests.support.gateway import Gateway
from tests.support.images import OCI_MANIFEST, build_image
from tests.support.oci import (
    OCTET_STREAM,
    OciClient,
    digest_of,
    expect,
    get_manifest,
    location,
    patch_chunk,
    push_blob,
    put_manifest,
    raw_request,
    start_upload,
    upload_chunked,
    with_query,
)
from tests.support.upstream import UpstreamRegistry

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
REPO = "crashorg/app"


@pytest.fixture(scope="module")
def gateway(start_gateway: Callable[..., Gateway], upstream: UpstreamRegistry) -> Gateway:
    gateway = start_gateway(upstream_url=upstream.url)
    gateway.add_user("owner", "owner-Pa55word")
    gateway.add_org("crashorg", owner="owner")
    return gateway


@pytest.fixture
def client(gateway: Gateway) -> OciClient:
    return OciClient(gateway.url, ("owner", "owner-Pa55word"))


def kill_and_restart(gateway: Gateway) -> None:
    assert gateway.kill() == -signal.SIGKILL  # the supervisor and every worker
    gateway.start()


def kill_midway(gateway: Gateway, sock: socket.socket, delay: float) -> None:
    time.sleep(delay)
    kill_and_restart(gateway)
    sock.close()


def blob_is_absent_or_whole(client: OciClient, digest: str, data: bytes) -> bool:
    """True if the blob is served (and then it must be exactly ``data``), False if 404."""
    head = client.head(f"/v2/{REPO}/blobs/{digest}")
    got = client.get(f"/v2/{REPO}/blobs/{digest}")
    assert head.status == got.status, f"HEAD {head.status} but GET {got.status}"
    if got.status == 404:
        return False
    expect(got, 200)
    assert digest_of(got.body) == digest and got.body == data, "a partial or wrong blob"
    assert head.header("Content-Length") == str(len(data))
    return True


def test_kill_during_a_chunked_upload(gateway: Gateway, client: OciClient) -> None:
    data = os.urandom(24 * MIB)
    digest = digest_of(data)
    session = start_upload(client, REPO)
    session = location(expect(patch_chunk(client, session, data[: 8 * MIB], 0), 202))
    sock = raw_request(
        client,
        "PATCH",
        session,
        {"Content-Type": OCTET_STREAM, "Content-Range": f"{8 * MIB}-{16 * MIB - 1}"},
        8 * MIB,
    )
    sock.sendall(data[8 * MIB : 12 * MIB])
    kill_midway(gateway, sock, 0.5)

    assert not blob_is_absent_or_whole(client, digest, data), "an unfinished upload is served"
    status = client.get(session)
    if status.status == 204:  # the session survived: resume where the server says
        end = (status.header("Range") or "").removeprefix("0-")
        offset = int(end) + 1 if end not in ("0", "-1") else 0
        assert offset <= 12 * MIB, status.describe()
        resumed = expect(patch_chunk(client, session, data[offset:], offset), 202)
        done = client.request("PUT", with_query(location(resumed), digest=digest))
    else:  # or it is gone, and the client starts again
        assert status.status == 404 and status.error_codes == ["BLOB_UPLOAD_UNKNOWN"], (
            status.describe()
        )
        done = upload_chunked(client, REPO, data, 8 * MIB)
    expect(done, 201)
    assert blob_is_absent_or_whole(client, digest, data)


def test_kill_during_a_manifest_put(gateway: Gateway, client: OciClient) -> None:
    image = build_image("crash-manifest", layers=1)
    for data in image.blobs.values():
        push_blob(client, REPO, data)
    value = image.parsed
    value["annotations"] = {f"org.example.{n}": "x" * 10_000 for n in range(200)}
    manifest = json.dumps(value, separators=(",", ":")).encode()
    digest = digest_of(manifest)
    sock = raw_request(
        client, "PUT", f"/v2/{REPO}/manifests/crash", {"Content-Type": OCI_MANIFEST}, len(manifest)
    )
    sock.sendall(manifest[: len(manifest) // 2])
    kill_midway(gateway, sock, 0.5)

    for reference in ("crash", digest):
        for method in ("HEAD", "GET"):
            answer = get_manifest(client, REPO, reference, method)
            assert answer.status == 404, answer.describe()
    tags = client.get(f"/v2/{REPO}/tags/list")
    assert tags.status == 404 or "crash" not in (tags.json()["tags"] or []), tags.describe()

    answer = expect(put_manifest(client, REPO, "crash", manifest, OCI_MANIFEST), 201)
    assert answer.header("Docker-Content-Digest") == digest
    assert expect(get_manifest(client, REPO, "crash"), 200).body == manifest


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.3])
def test_kill_right_after_a_whole_blob_was_sent(
    gateway: Gateway, client: OciClient, delay: float
) -> None:
    """The server is hashing, writing or publishing when it dies: all or nothing."""
    data = os.urandom(32 * MIB)
    digest = digest_of(data)
    session = start_upload(client, REPO)
    sock = raw_request(
        client,
        "PUT",
        with_query(session, digest=digest),
        {"Content-Type": OCTET_STREAM},
        len(data),
    )
    sock.sendall(data)
    kill_midway(gateway, sock, delay)

    blob_is_absent_or_whole(client, digest, data)
    expect(upload_chunked(client, REPO, data, 16 * MIB), 201)
    assert blob_is_absent_or_whole(client, digest, data)


@pytest.mark.parametrize("delay", [0.0, 0.05])
def test_kill_right_after_a_whole_manifest_was_sent(
    gateway: Gateway, client: OciClient, delay: float
) -> None:
    image = build_image(f"crash-whole-manifest-{delay}", layers=1)
    for data in image.blobs.values():
        push_blob(client, REPO, data)
    tag = f"whole-{int(delay * 1000)}"
    sock = raw_request(
        client,
        "PUT",
        f"/v2/{REPO}/manifests/{tag}",
        {"Content-Type": image.media_type},
        len(image.manifest),
    )
    sock.sendall(image.manifest)
    kill_midway(gateway, sock, delay)

    for reference in (tag, image.digest):
        got = get_manifest(client, REPO, reference)
        assert got.status in (200, 404), got.describe()
        if got.status == 200:
            assert got.body == image.manifest
    expect(put_manifest(client, REPO, tag, image.manifest, image.media_type), 201)
    assert expect(get_manifest(client, REPO, tag), 200).body == image.manifest
    for digest, data in image.blobs.items():
        assert blob_is_absent_or_whole(client, digest, data), "a referenced blob went missing"
