"""The generation: every recorded change bumps it in its own transaction, and every
process on the machine sees it published once the change has committed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from imagegate.db import Database
from imagegate.db.generation import FileSignal, MemorySignal
from imagegate.db.models import Generation
from imagegate.services.accounts import AccountService
from imagegate.services.current_cache import CurrentCache
from tests.db.fixtures import database, database_url

__all__ = ["database", "database_url"]


def publish_in_another_process(path: Path, generation: int) -> None:
    code = (
        "import sys\nfrom pathlib import Path\nfrom imagegate.db.generation import FileSignal\n"
        "FileSignal(Path(sys.argv[1])).publish(int(sys.argv[2]))\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path), str(generation)], check=True)


def test_a_publish_in_another_process_is_seen_at_once(tmp_path: Path) -> None:
    path = tmp_path / "generation"
    signal = FileSignal(path)
    assert signal.current() == 0  # a new file
    publish_in_another_process(path, 7)
    assert signal.current() == 7
    publish_in_another_process(path, 3)  # the database went back (a restored backup)...
    assert signal.current() not in (0, 7)  # ...and the change still shows
    signal.close()


def test_the_value_never_returns_to_one_seen_before(tmp_path: Path) -> None:
    first, second = FileSignal(tmp_path / "g"), FileSignal(tmp_path / "g")
    seen = {first.current()}
    for generation in (1, 1, 5, 2, 0):
        (first if generation % 2 else second).publish(generation)
        assert first.current() == second.current()
        assert first.current() not in seen
        seen.add(first.current())
    first.close()
    second.close()


def test_a_cache_forgets_everything_when_the_signal_changes() -> None:
    signal = MemorySignal()
    cache: CurrentCache[str] = CurrentCache(signal, 1 << 20, ttl=60)
    found, generation = cache.lookup(b"k" * 32)
    assert found is None
    cache.put(b"k" * 32, "value", 10, generation)
    assert cache.lookup(b"k" * 32)[0] == ("value",)
    signal.publish(1)
    assert cache.lookup(b"k" * 32)[0] is None
    cache.put(b"k" * 32, "stale", 10, generation)  # read before the change: not kept
    assert cache.lookup(b"k" * 32)[0] is None


async def stored(database: Database) -> int:
    async with database.read() as conn:
        return int(await conn.scalar(select(Generation.value)) or 0)


async def test_a_recorded_change_bumps_and_publishes_after_commit(database: Database) -> None:
    accounts = AccountService(database)
    before, seen = await stored(database), database.signal.current()
    await accounts.create_user("alice", None, "pw")
    assert await stored(database) == before + 1
    assert database.signal.current() != seen


async def test_reads_and_failed_changes_publish_nothing(database: Database) -> None:
    accounts = AccountService(database)
    await accounts.create_user("alice", None, "pw")
    before, seen = await stored(database), database.signal.current()
    await accounts.list_tokens("alice")
    assert await accounts.authenticate("alice", "pw") == "alice"
    with pytest.raises(Exception, match="already taken"):
        await accounts.create_user("alice", None, "pw")  # rolled back
    assert (await stored(database), database.signal.current()) == (before, seen)


async def test_a_sqlite_database_shares_its_signal_with_every_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'imagegate.db'}"
    database = Database(url)
    try:
        await database.migrate()
        seen = database.signal.current()
        publish_in_another_process(tmp_path / "imagegate.db-generation", seen + 1)
        assert database.signal.current() != seen
    finally:
        await database.dispose()


def test_a_forked_worker_publishes_to_its_parent(tmp_path: Path) -> None:
    """Workers forked after the signal was opened share its mapping, and each locks on a
    file of its own."""
    signal = FileSignal(tmp_path / "g")
    seen = signal.current()
    pid = os.fork()
    if pid == 0:  # the worker
        try:
            signal.publish(0)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert signal.current() != seen
    signal.publish(0)
    assert len({seen, signal.current()}) == 2 and signal.current() == seen + 2
    signal.close()
