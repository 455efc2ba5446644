"""Push workflow, blobs (spec sections 2.1-2.7): every upload method, upload status and
cancel, out-of-order chunks, mounts, bad digests, empty blobs, sha512, and Range reads."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable

import pytest

from tests.conformance.checks import check_blob, check_blob_pushed, check_error, random_bytes
from tests.conformance.conftest import Registry
from tests.support.images import EMPTY_JSON
from tests.support.oci import (
    OCTET_STREAM,
    Answer,
    OciClient,
    digest_of,
    expect,
    location,
    patch_chunk,
    push_blob,
    raw_request,
    start_upload,
    upload_chunked,
    upload_post_put,
    upload_single_post,
    upload_stream,
    with_query,
)

pytestmark = pytest.mark.e2e

REPO = "conf/blobs"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
EMPTY_DIGEST = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
CHUNK = 1024
RANGE_HEADER = re.compile(r"0-(-1|[0-9]+)")

Upload = Callable[[OciClient, str, bytes, str], Answer]


def _single_post(client: OciClient, repository: str, data: bytes, digest: str) -> Answer:
    """POST ``?digest=``; a registry that answers 202 gets the PUT the spec prescribes."""
    answer = upload_single_post(client, repository, data, digest)
    if answer.status == 202:
        answer = client.request(
            "PUT",
            with_query(location(answer), digest=digest),
            data,
            {"Content-Type": OCTET_STREAM},
        )
    return answer


UPLOADS: dict[str, Upload] = {
    "post only": _single_post,
    "post+put": upload_post_put,
    "chunked single": lambda c, r, d, g: upload_chunked(c, r, d, len(d) + 1, g),
    "chunked multi": lambda c, r, d, g: upload_chunked(c, r, d, CHUNK, g),
    "chunked multi and put chunk": lambda c, r, d, g: upload_chunked(
        c, r, d, CHUNK, g, last_in_put=True
    ),
    "stream": upload_stream,
}


@pytest.mark.parametrize("method", list(UPLOADS))
def test_upload_methods_store_the_blob(registry: Registry, method: str) -> None:
    data = random_bytes(3 * CHUNK - 5)
    answer = UPLOADS[method](registry.pusher, REPO, data, digest_of(data))
    check_blob_pushed(registry.pusher, answer, REPO, data)


def test_missing_blob_is_404_blob_unknown(registry: Registry) -> None:
    missing = digest_of(random_bytes(64))
    for method in ("GET", "HEAD"):
        answer = registry.pusher.request(method, f"/v2/{REPO}/blobs/{missing}")
        assert answer.status == 404, answer.describe()
    check_error(registry.pusher.get(f"/v2/{REPO}/blobs/{missing}"), 404, "BLOB_UNKNOWN")


def test_post_answers_202_with_a_unique_session_location(registry: Registry) -> None:
    first = start_upload(registry.pusher, REPO)
    second = start_upload(registry.pusher, REPO)
    assert first != second
    for session in (first, second):
        assert registry.pusher.request("DELETE", session).status in (204, 202)


@pytest.mark.parametrize("method", list(UPLOADS))
def test_bad_digest_is_400_digest_invalid_and_stores_nothing(
    registry: Registry, method: str
) -> None:
    data = random_bytes(3 * CHUNK - 5)
    claimed = digest_of(data)
    answer = UPLOADS[method](registry.pusher, REPO, data + b"extra", claimed)
    check_error(answer, 400, "DIGEST_INVALID")
    assert registry.pusher.head(f"/v2/{REPO}/blobs/{claimed}").status == 404
    wrong = digest_of(data + b"extra")
    assert registry.pusher.head(f"/v2/{REPO}/blobs/{wrong}").status == 404


def test_patch_answers_range_and_location(registry: Registry) -> None:
    data = random_bytes(2 * CHUNK)
    session = start_upload(registry.pusher, REPO)
    first = expect(patch_chunk(registry.pusher, session, data[:CHUNK], 0), 202)
    assert first.header("Range") == f"0-{CHUNK - 1}", first.describe()
    second = expect(patch_chunk(registry.pusher, location(first), data[CHUNK:], CHUNK), 202)
    assert second.header("Range") == f"0-{2 * CHUNK - 1}", second.describe()
    done = registry.pusher.request("PUT", with_query(location(second), digest=digest_of(data)))
    check_blob_pushed(registry.pusher, done, REPO, data)


def test_empty_session_status_is_204_with_a_parseable_range(registry: Registry) -> None:
    session = start_upload(registry.pusher, REPO)
    status = expect(registry.pusher.get(session), 204)
    assert status.header("Location"), status.describe()
    assert status.header("Range") in ("0-0", "0--1"), status.describe()
    registry.pusher.request("DELETE", session)


@pytest.mark.parametrize("last_in_put", [False, True], ids=["patch", "put chunk"])
def test_out_of_order_chunks_are_416_and_keep_the_session(
    registry: Registry, last_in_put: bool
) -> None:
    client = registry.pusher
    data = random_bytes(3 * CHUNK)
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    original = start_upload(client, REPO)
    # A chunk that skips ahead, before anything was sent.
    check_status_416(patch_chunk(client, original, chunks[1], CHUNK))
    assert expect(client.get(original), 204).header("Range") in ("0-0", "0--1")

    moved = location(expect(patch_chunk(client, original, chunks[0], 0), 202))
    # The first chunk again, to the session's ORIGINAL url: already there, so out of order.
    check_status_416(patch_chunk(client, original, chunks[0], 0))
    status = expect(client.get(original), 204)
    assert status.header("Range") == f"0-{CHUNK - 1}", status.describe()
    assert status.header("Location"), status.describe()

    moved = location(expect(patch_chunk(client, moved, chunks[1], CHUNK), 202))
    final_url = with_query(moved, digest=digest_of(data))
    if last_in_put:
        wrong = client.request(
            "PUT",
            final_url,
            chunks[2],
            {"Content-Type": OCTET_STREAM, "Content-Range": f"{3 * CHUNK}-{4 * CHUNK - 1}"},
        )
        check_status_416(wrong)
        # The status URL still carries ?digest= from the refused PUT: extra query is ignored.
        status = expect(client.get(final_url), 204)
        assert status.header("Range") == f"0-{2 * CHUNK - 1}", status.describe()
        done = client.request(
            "PUT",
            final_url,
            chunks[2],
            {"Content-Type": OCTET_STREAM, "Content-Range": f"{2 * CHUNK}-{3 * CHUNK - 1}"},
        )
    else:
        check_status_416(patch_chunk(client, moved, chunks[2], 3 * CHUNK))
        moved = location(expect(patch_chunk(client, moved, chunks[2], 2 * CHUNK), 202))
        done = client.request("PUT", with_query(moved, digest=digest_of(data)), b"")
    check_blob_pushed(client, done, REPO, data)


def check_status_416(answer: Answer) -> None:
    assert answer.status == 416, f"an out-of-order chunk must be refused\n{answer.describe()}"


def test_status_of_unknown_and_finished_sessions_is_404(registry: Registry) -> None:
    client = registry.pusher
    unknown = f"/v2/{REPO}/blobs/uploads/{uuid.uuid4()}"
    check_error(client.get(unknown), 404, "BLOB_UPLOAD_UNKNOWN")
    check_error(patch_chunk(client, unknown, b"abc", 0), 404, "BLOB_UPLOAD_UNKNOWN")
    data = random_bytes(100)
    session = start_upload(client, REPO)
    expect(client.request("PUT", with_query(session, digest=digest_of(data)), data), 201)
    check_error(client.get(session), 404, "BLOB_UPLOAD_UNKNOWN")


def test_cancel_is_204_and_forgets_the_session(registry: Registry) -> None:
    client = registry.pusher
    data = random_bytes(CHUNK)
    session = start_upload(client, REPO)
    expect(patch_chunk(client, session, data, 0), 202)
    cancelled = client.request("DELETE", session, b"", {"Content-Length": "0"})
    assert cancelled.status == 204, cancelled.describe()
    check_error(client.get(session), 404, "BLOB_UPLOAD_UNKNOWN")
    check_error(patch_chunk(client, session, data, CHUNK), 404, "BLOB_UPLOAD_UNKNOWN")
    finished = client.request("PUT", with_query(session, digest=digest_of(data)))
    check_error(finished, 404, "BLOB_UPLOAD_UNKNOWN")
    assert client.head(f"/v2/{REPO}/blobs/{digest_of(data)}").status == 404


def test_upload_resumes_after_a_dropped_connection(registry: Registry) -> None:
    """The issue's "resumable after a dropped connection": bytes received are kept, the
    status says how many, and the client continues from there."""
    client = registry.pusher
    log_start = registry.gateway.log_size()
    data = random_bytes(256 * 1024)
    session = start_upload(client, REPO)
    sock = raw_request(
        client,
        "PATCH",
        session,
        {"Content-Type": OCTET_STREAM, "Content-Range": f"0-{len(data) - 1}"},
        len(data),
    )
    sock.sendall(data[: 128 * 1024])
    time.sleep(0.3)
    sock.close()
    offset = _settled_offset(client, session)
    assert 0 <= offset <= 128 * 1024
    if offset < len(data):
        expect(patch_chunk(client, session, data[offset:], offset), 202)
    done = client.request("PUT", with_query(session, digest=digest_of(data)))
    check_blob_pushed(client, done, REPO, data)
    # A client that goes away is an ordinary event, not an application error.
    errors = [
        str(json.loads(line).get("exception", line))[-1200:]
        for line in registry.gateway.log_since(log_start).splitlines()
        if "Exception in ASGI application" in line
    ]
    assert not errors, "a dropped connection was logged as an application error:\n" + errors[0]


def _settled_offset(client: OciClient, session: str) -> int:
    """The session's offset once the server has noticed the dropped connection."""
    previous, deadline = None, time.monotonic() + 5
    while True:
        status = expect(client.get(session), 204)
        value = status.header("Range") or ""
        match = RANGE_HEADER.fullmatch(value)
        assert match, f"Range must read 0-<end>\n{status.describe()}"
        offset = int(match[1]) + 1 if value not in ("0-0", "0--1") else 0
        if offset == previous or time.monotonic() > deadline:
            return offset
        previous = offset
        time.sleep(0.3)


@pytest.mark.parametrize(
    ("data", "digest"), [(b"", EMPTY_DIGEST), (EMPTY_JSON, EMPTY_JSON_DIGEST)], ids=["0", "{}"]
)
@pytest.mark.parametrize("method", ["post only", "post+put"])
def test_empty_blob_and_empty_json(
    registry: Registry, data: bytes, digest: str, method: str
) -> None:
    assert digest_of(data) == digest
    answer = UPLOADS[method](registry.pusher, REPO, data, digest)
    check_blob_pushed(registry.pusher, answer, REPO, data, digest)


# -- cross-repository mount (2.7) ------------------------------------------------------


def test_mount_from_a_readable_repository_is_201(registry: Registry) -> None:
    client = registry.pusher
    data = random_bytes(700)
    digest = push_blob(client, "conf/mount-source", data)
    url = f"/v2/conf/mount-target/blobs/uploads/?mount={digest}&from=conf/mount-source"
    answer = expect(client.request("POST", url, b""), 201)
    assert location(answer).split("?")[0].endswith(f"/v2/conf/mount-target/blobs/{digest}")
    assert answer.header("Docker-Content-Digest") in (None, digest), answer.describe()
    check_blob_pushed(client, answer, "conf/mount-target", data)
    assert ("pusher", "allowed", digest) in mount_reads(registry, "conf/mount-source")


def test_a_client_that_follows_the_challenge_gets_its_mount(registry: Registry) -> None:
    """As distribution does, the challenge of a mount names the source's pull scope too,
    so a token asked for exactly what it names mounts (201) instead of uploading."""
    client = registry.pusher
    data = random_bytes(650)
    digest = push_blob(client, "conf/follow-source", data)
    url = f"/v2/conf/follow-target/blobs/uploads/?mount={digest}&from=conf/follow-source"
    refused = expect(client.request("POST", url, b"", authenticate=False), 401)
    challenge = dict(re.findall(r'(\w+)="([^"]*)"', refused.header("WWW-Authenticate") or ""))
    scopes = challenge["scope"].split(" ")
    assert scopes == [
        "repository:conf/follow-target:pull,push",
        "repository:conf/follow-source:pull",
    ], refused.describe()
    token = client.token(tuple(scopes))
    bearer = {"Authorization": f"Bearer {token}"}
    answer = expect(client.request("POST", url, b"", bearer, authenticate=False), 201)
    check_blob_pushed(client, answer, "conf/follow-target", data)


def test_error_responses_carry_the_api_version_header_once(registry: Registry) -> None:
    for answer in (
        registry.anonymous.request("GET", "/v2/", authenticate=False),  # 401
        registry.pusher.head(f"/v2/conf/nothing-here/blobs/{digest_of(b'none')}"),  # 404
        registry.pusher.get("/v2/conf/nothing-here/manifests/latest"),  # 404 with a body
    ):
        assert answer.status >= 400, answer.describe()
        versions = answer.header_values("Docker-Distribution-API-Version")
        assert versions == ["registry/2.0"], answer.describe()


def test_mount_of_a_blob_the_source_lacks_is_202_and_a_new_session(registry: Registry) -> None:
    client = registry.pusher
    push_blob(client, "conf/mount-source", random_bytes(10))  # the source exists
    data = random_bytes(800)
    digest = digest_of(data)
    url = f"/v2/conf/mount-target/blobs/uploads/?mount={digest}&from=conf/mount-source"
    answer = client.request("POST", url, b"")
    assert answer.status == 202, f"a mount of a missing blob must not succeed\n{answer.describe()}"
    session = location(answer)
    assert "/v2/conf/mount-target/blobs/uploads/" in session, answer.describe()
    done = client.request("PUT", with_query(session, digest=digest), data)
    check_blob_pushed(client, done, "conf/mount-target", data)


def test_mount_from_a_repository_the_pusher_cannot_read_is_a_normal_upload(
    registry: Registry,
) -> None:
    """A digest never opens a door: the blob is in another org's private repository."""
    registry.gateway.add_user("rival", "rival-Pa55word")
    registry.gateway.add_org("rivalco", owner="rival")
    rival = OciClient(registry.gateway.url, ("rival", "rival-Pa55word"))
    data = random_bytes(900)
    digest = push_blob(rival, "rivalco/secret", data)
    client = registry.pusher
    url = f"/v2/conf/mount-target/blobs/uploads/?mount={digest}&from=rivalco/secret"
    answer = client.request("POST", url, b"")
    assert answer.status == 202, f"mounted from an unreadable repository\n{answer.describe()}"
    assert client.head(f"/v2/conf/mount-target/blobs/{digest}").status == 404
    client.request("DELETE", location(answer))
    # The attempt to read another organization's repository is in the audit trail.
    assert mount_reads(registry, "rivalco/secret") == [("pusher", "denied", digest)]


def mount_reads(registry: Registry, source: str) -> list[tuple[str, str, str]]:
    """The audit trail's mount-source decisions on ``source``: (who, decision, digest)."""
    deadline = time.monotonic() + 30  # the recorder writes in batches, a moment later
    while True:
        listed = registry.gateway.cli("audit", "--json", "--repository", source)
        events = [json.loads(line) for line in listed.stdout.splitlines()]
        found = [
            (event["actor"], event["decision"], event["reference"])
            for event in events
            if event["data"].get("request") == "mount"
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


# -- sha512 (MAY) -----------------------------------------------------------------------


@pytest.mark.parametrize("method", list(UPLOADS))
def test_sha512_uploads(registry: Registry, method: str) -> None:
    """sha512 is optional; the gateway implements it: the digest header echoes sha512."""
    data = random_bytes(3 * CHUNK - 5)
    digest = digest_of(data, "sha512")
    answer = UPLOADS[method](registry.pusher, REPO, data, digest)
    check_blob_pushed(registry.pusher, answer, REPO, data, digest)
    bad = UPLOADS[method](registry.pusher, REPO, data + b"x", digest_of(data + b"y", "sha512"))
    check_error(bad, 400, "DIGEST_INVALID")


# -- Range reads (3) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def ranged_blob(registry: Registry) -> bytes:
    data = random_bytes(2048)
    push_blob(registry.pusher, REPO, data)
    return data


@pytest.mark.parametrize(
    ("request_range", "start", "end"),
    [
        ("bytes=500-1499", 500, 1499),
        ("bytes=500-", 500, 2047),
        ("bytes=-500", 1548, 2047),
        ("bytes=2000-5000", 2000, 2047),
        ("bytes=0-0", 0, 0),
    ],
)
def test_satisfiable_range_is_206(
    registry: Registry, ranged_blob: bytes, request_range: str, start: int, end: int
) -> None:
    url = f"/v2/{REPO}/blobs/{digest_of(ranged_blob)}"
    answer = expect(registry.pusher.get(url, {"Range": request_range}), 206)
    assert answer.body == ranged_blob[start : end + 1]
    assert answer.header("Content-Length") == str(end - start + 1), answer.describe()
    assert answer.header("Content-Range") in (
        f"bytes {start}-{end}/2048",
        f"bytes {start}-{end}/*",
    ), answer.describe()


@pytest.mark.parametrize("request_range", ["bytes=500-0", "bytes=5000-10000", "bytes=2048-"])
def test_unsatisfiable_range_is_416(
    registry: Registry, ranged_blob: bytes, request_range: str
) -> None:
    url = f"/v2/{REPO}/blobs/{digest_of(ranged_blob)}"
    answer = registry.pusher.get(url, {"Range": request_range})
    assert answer.status == 416, answer.describe()


def test_blob_reads_use_the_repository_too(registry: Registry) -> None:
    """A blob pushed to one repository is not readable through a sibling that lacks it
    (the membership rule), even for a reader of both."""
    data = random_bytes(300)
    digest = push_blob(registry.pusher, "conf/blob-home", data)
    check_blob(registry.pusher, "conf/blob-home", data)
    push_blob(registry.pusher, "conf/blob-elsewhere", random_bytes(10))
    answer = registry.pusher.get(f"/v2/conf/blob-elsewhere/blobs/{digest}")
    assert answer.status == 404, answer.describe()
