"""Single-flight across worker processes: real processes sharing one cache directory.

Each worker is a separate Python process running ``ProxyContent`` (store, single-flight,
upstream client) on the same cache directory, as ``imagegate serve --workers N`` runs
them, with many concurrent pulls of one blob; the upstream is slow and counts its GETs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import multiprocessing
import os
import queue
import signal
from collections.abc import Iterator
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import pytest

from imagegate.core.digests import Digest
from imagegate.core.errors import RegistryError
from imagegate.core.names import parse_repository
from imagegate.proxy.interfaces import CHUNK_SIZE
from imagegate.proxy.service import ProxyContent
from imagegate.storage.filesystem import open_filesystem_store
from imagegate.storage.layout import Layout
from imagegate.upstream.client import UpstreamClient
from tests.proxy.slowupstream import SlowUpstream

BLOB = os.urandom(6 * CHUNK_SIZE + 123)
HALF = 3 * CHUNK_SIZE + CHUNK_SIZE // 2  # the upstream pauses here: three chunks arrived
WAIT_SECONDS = 60.0  # generous; only a failing test waits this long


def _worker(root: Path, upstream: str, digest: str, clients: int, events: Queue[Any]) -> None:
    """A worker process: ``clients`` concurrent pulls of ``digest``; reports each one's
    first bytes as they come, then every result."""
    asyncio.run(_pulls(root, upstream, digest, clients, events))


async def _pulls(root: Path, upstream: str, digest: str, clients: int, events: Queue[Any]) -> None:
    content = ProxyContent(open_filesystem_store(root), UpstreamClient(upstream, timeout=30))
    pid = os.getpid()

    async def pull(client: int) -> tuple[str, str, int]:
        try:
            stream = await content.open_blob(
                parse_repository("library/slow"), Digest.parse(digest), None
            )
            hasher, received = hashlib.sha256(), 0
            async for chunk in stream.chunks:
                if not received:
                    events.put(("first", pid, client))
                hasher.update(chunk)
                received += len(chunk)
            return ("ok", "sha256:" + hasher.hexdigest(), received)
        except RegistryError as exc:
            return ("error", f"{exc.code}: {exc.message}", 0)

    try:
        results = await asyncio.gather(*(pull(client) for client in range(clients)))
    finally:
        await content.close()  # lets a verified fetch finish storing the blob
    events.put(("done", pid, results))


class Workers:
    """Worker processes on one cache directory, and what they report."""

    def __init__(self, root: Path, upstream: SlowUpstream) -> None:
        self.root = root
        self.upstream = upstream
        self._context = multiprocessing.get_context("spawn")
        self.events: Queue[Any] = self._context.Queue()
        self.processes: list[SpawnProcess] = []

    def start(self, clients: int) -> SpawnProcess:
        process = self._context.Process(
            target=_worker,
            args=(self.root, self.upstream.url, self.upstream.digest, clients, self.events),
        )
        process.start()
        self.processes.append(process)
        return process

    def wait_for(self, kind: str, count: int) -> list[tuple[Any, ...]]:
        """The next ``count`` reports of ``kind`` (others are dropped)."""
        seen: list[tuple[Any, ...]] = []
        while len(seen) < count:
            try:
                event = self.events.get(timeout=WAIT_SECONDS)
            except queue.Empty:
                pytest.fail(f"{len(seen)} of {count} {kind!r} reports in {WAIT_SECONDS} s")
            if event[0] == kind:
                seen.append(event)
        return seen

    def results(self, workers: int) -> list[tuple[str, str, int]]:
        return [result for event in self.wait_for("done", workers) for result in event[2]]

    def stop(self) -> None:
        for process in self.processes:
            process.join(WAIT_SECONDS)
            process.kill()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@contextlib.contextmanager
def running(cache: Path, upstream: SlowUpstream) -> Iterator[Workers]:
    workers = Workers(cache, upstream)
    try:
        yield workers
    finally:
        workers.stop()


def _stored(cache: Path, digest: str) -> bytes | None:
    path = Layout(cache).blob(Digest.parse(digest))
    return path.read_bytes() if path.exists() else None


def _temp_files(cache: Path) -> list[str]:
    return sorted(path.name for path in Layout(cache).tmp.iterdir())


def test_fifty_pulls_on_two_workers_make_one_upstream_get_and_stream_at_once(
    cache: Path,
) -> None:
    with SlowUpstream(BLOB, pause_at=HALF) as upstream:
        with running(cache, upstream) as workers:
            workers.start(25)
            workers.start(25)
            # Every client, in either process, has bytes while the upstream has sent only
            # part of the blob: followers stream behind the leader, they do not wait for it.
            workers.wait_for("first", 50)
            assert not upstream.proceed.is_set() and upstream.paused.is_set()
            upstream.proceed.set()
            results = workers.results(2)
        assert results == [("ok", upstream.digest, len(BLOB))] * 50
        assert upstream.blob_gets == 1
    assert _stored(cache, upstream.digest) == BLOB
    assert _temp_files(cache) == []


def test_a_leader_killed_mid_fetch_leaves_nothing_and_the_next_pull_succeeds(
    cache: Path,
) -> None:
    with SlowUpstream(BLOB, pause_at=HALF) as upstream:
        with running(cache, upstream) as workers:
            leader = workers.start(3)
            workers.wait_for("first", 3)
            assert upstream.paused.wait(WAIT_SECONDS)
            workers.start(3)  # a follower in another process, streaming behind it
            workers.wait_for("first", 3)

            os.kill(leader.pid or 0, signal.SIGKILL)
            leader.join(WAIT_SECONDS)
            assert leader.exitcode == -signal.SIGKILL
            # The follower's clients had bytes: their pulls fail, with a registry error.
            followers = workers.results(1)
            assert [status for status, _, _ in followers] == ["error"] * 3
            assert all("stopped" in message for _, message, _ in followers)
            assert _stored(cache, upstream.digest) is None  # nothing half-written visible

            upstream.pause_at = None
            workers.start(2)
            assert workers.results(1) == [("ok", upstream.digest, len(BLOB))] * 2
        assert upstream.blob_gets == 2
    assert _stored(cache, upstream.digest) == BLOB
    assert _temp_files(cache) == []


def test_wrong_bytes_from_the_upstream_fail_every_reader_and_store_nothing(
    cache: Path,
) -> None:
    with SlowUpstream(BLOB, pause_at=HALF, corrupt=True) as upstream:
        with running(cache, upstream) as workers:
            workers.start(4)
            workers.start(4)
            workers.wait_for("first", 8)
            upstream.proceed.set()
            results = workers.results(2)
        assert [status for status, _, _ in results] == ["error"] * 8
        assert upstream.blob_gets == 1
    assert _stored(cache, upstream.digest) is None
    assert _temp_files(cache) == []
