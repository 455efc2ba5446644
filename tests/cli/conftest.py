"""Run ``imagegate`` in-process against a fresh database of each backend."""

from __future__ import annotations

import asyncio
import functools
import io
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import argon2
import pytest

from imagegate.auth import passwords
from imagegate.cli.main import main
from imagegate.db import Database
from tests.db.fixtures import database_url, empty_tables

__all__ = ["database_url"]


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., Result]  # (*args, stdin="") -> Result


async def _fresh(url: str) -> None:
    database = Database(url)
    try:
        await database.migrate()
        await empty_tables(database)
    finally:
        await database.dispose()


@pytest.fixture
def environment(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Only the settings this test chooses; the database starts empty."""
    for key in list(os.environ):
        if key.startswith("IMAGEGATE_"):
            monkeypatch.delenv(key)
    chosen = {
        "IMAGEGATE_DATA_DIR": str(tmp_path / "data"),
        "IMAGEGATE_DATABASE_URL": database_url,
        "IMAGEGATE_HUB_API_URL": "",
    }
    for key, value in chosen.items():
        monkeypatch.setenv(key, value)
    asyncio.run(_fresh(database_url))
    return chosen


@pytest.fixture
def cli(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    """``imagegate ARGS`` in this process; argon2 runs with its cheapest parameters.

    (The console-script test runs the real thing, at full cost.)
    """
    cheap = functools.partial(argon2.PasswordHasher, time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(passwords.argon2, "PasswordHasher", cheap)

    def run(*args: str, stdin: str = "") -> Result:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
