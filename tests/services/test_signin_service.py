"""SignInService: the requirement in force, kept current from the file without a restart,
failing closed on every kind of broken file, and cheap to ask for on every request."""

from __future__ import annotations

import asyncio
import codecs
import logging
import os
from pathlib import Path

import pytest
from sqlalchemy import delete

from imagegate.core.names import parse_repository
from imagegate.core.permissions import Permission
from imagegate.core.policy import Outcome
from imagegate.core.signin import NOT_ENFORCED, Refusal, SignInRequirement
from imagegate.db import Database
from imagegate.db.models import Organization
from imagegate.services import Services
from imagegate.services.access import AccessService
from imagegate.services.signin import SignInService

LOGGER = "imagegate.signin"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingStat:
    """The real ``os.stat``, counted."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, path: Path) -> os.stat_result:
        self.calls += 1
        return os.stat(path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def stat() -> CountingStat:
    return CountingStat()


@pytest.fixture
def registry_json(tmp_path: Path) -> Path:
    return tmp_path / "registry.json"


@pytest.fixture
async def world(services: Services) -> Services:
    """acme (owner alice; bob, carol) and globex (owner gina; carol)."""
    for name in ("alice", "bob", "carol", "gina"):
        await services.accounts.create_user(name, None, "pw")
    await services.orgs.add_org("acme", "alice")
    await services.orgs.add_member("acme", "bob")
    await services.orgs.add_member("acme", "carol")
    await services.orgs.add_org("globex", "gina")
    await services.orgs.add_member("globex", "carol")
    return services


@pytest.fixture
def signin(
    database: Database, registry_json: Path, clock: FakeClock, stat: CountingStat
) -> SignInService:
    return SignInService(database, registry_json, clock=clock, stat=stat)


def write(path: Path, text: str | bytes) -> None:
    """Replace the file atomically, as an admin's tooling would."""
    data = text.encode() if isinstance(text, str) else text
    staging = path.with_suffix(".tmp")
    staging.write_bytes(data)
    staging.replace(path)


def write_in_place(path: Path, text: str) -> None:
    with path.open("w") as file:  # the same inode, as an editor saving in place
        file.write(text)


def remove(path: Path) -> None:
    path.unlink()


def allowed(*orgs: str) -> str:
    quoted = ", ".join(f'"{org}"' for org in orgs)
    return f'{{"allowedOrgs": [{quoted}]}}'


async def test_no_path_means_not_enforced_without_touching_the_disk(
    database: Database, clock: FakeClock, stat: CountingStat
) -> None:
    service = SignInService(database, None, clock=clock, stat=stat)
    assert await service.requirement() == NOT_ENFORCED
    assert stat.calls == 0


async def test_a_valid_file_is_enforced(
    world: Services, signin: SignInService, registry_json: Path
) -> None:
    write(registry_json, allowed("acme", "globex"))
    requirement = await signin.requirement()
    assert requirement == SignInRequirement(("acme", "globex"), None, str(registry_json))


async def test_a_change_applies_after_the_recheck_interval_without_a_restart(
    world: Services, signin: SignInService, registry_json: Path, clock: FakeClock
) -> None:
    write(registry_json, allowed("acme"))
    assert (await signin.requirement()).allowed_orgs == ("acme",)
    write(registry_json, allowed("globex"))
    assert (await signin.requirement()).allowed_orgs == ("acme",)  # not yet looked at
    clock.advance(1.0)
    assert (await signin.requirement()).allowed_orgs == ("globex",)


async def test_an_edit_in_place_is_noticed_too(
    world: Services, signin: SignInService, registry_json: Path, clock: FakeClock
) -> None:
    write_in_place(registry_json, allowed("acme"))
    assert (await signin.requirement()).allowed_orgs == ("acme",)
    write_in_place(registry_json, allowed("acme", "globex"))
    clock.advance(1.0)
    assert (await signin.requirement()).allowed_orgs == ("acme", "globex")


async def test_at_most_one_stat_per_interval_and_one_read_per_change(
    world: Services,
    signin: SignInService,
    registry_json: Path,
    clock: FakeClock,
    stat: CountingStat,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write(registry_json, allowed("acme"))
    reads = 0
    read_bytes = Path.read_bytes

    def counting_read(path: Path) -> bytes:
        nonlocal reads
        reads += 1
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", counting_read)
    for _ in range(100):
        await signin.requirement()
    assert (stat.calls, reads) == (1, 1)
    for _ in range(5):  # unchanged: one stat per interval, no read
        clock.advance(1.0)
        for _ in range(10):
            await signin.requirement()
    assert (stat.calls, reads) == (6, 1)


async def test_concurrent_requests_when_a_reload_is_due_run_one_reload(
    world: Services, signin: SignInService, registry_json: Path, stat: CountingStat
) -> None:
    write(registry_json, allowed("acme"))
    results = await asyncio.gather(*(signin.requirement() for _ in range(50)))
    assert {r.allowed_orgs for r in results} == {("acme",)}
    assert stat.calls == 1


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (codecs.BOM_UTF8 + allowed("acme").encode(), "starts with a UTF-8 byte order mark"),
        (b"{not json", "the file is not valid JSON"),
        (b'{"allowedOrgs": []}', "'allowedOrgs' is empty"),
        (b'{"allowedOrgs": ["ACME"]}', "'ACME' is not lowercase"),
        (allowed("acme", "nosuchorg").encode(), "organization 'nosuchorg' not found"),
    ],
    ids=["bom", "not-json", "empty", "uppercase", "unknown-org"],
)
async def test_an_invalid_file_fails_closed_and_says_why_once(
    world: Services,
    signin: SignInService,
    registry_json: Path,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    content: bytes,
    problem: str,
) -> None:
    write(registry_json, content)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        requirement = await signin.requirement()
        clock.advance(30.0)  # unchanged: checked again, but not reported again
        await signin.requirement()
    assert requirement.problem is not None and problem in requirement.problem
    assert requirement.enforced
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(registry_json) in warnings[0].getMessage()
    assert problem in warnings[0].getMessage()


async def test_a_configured_file_that_is_missing_fails_closed(
    signin: SignInService, registry_json: Path
) -> None:
    requirement = await signin.requirement()
    assert requirement.problem == "the file does not exist"
    assert requirement.source == str(registry_json)


async def test_a_file_that_cannot_be_read_fails_closed(
    database: Database, tmp_path: Path, clock: FakeClock
) -> None:
    directory = tmp_path / "registry.json"
    directory.mkdir()  # unreadable as a file, even by root
    service = SignInService(database, directory, clock=clock)
    problem = (await service.requirement()).problem
    assert problem is not None and problem.startswith("cannot read the file: ")


async def test_the_default_file_may_be_absent_and_is_picked_up_when_created(
    world: Services, database: Database, registry_json: Path, clock: FakeClock
) -> None:
    service = SignInService(database, registry_json, missing_ok=True, clock=clock)
    assert await service.requirement() == NOT_ENFORCED
    write(registry_json, allowed("acme"))
    clock.advance(1.0)
    assert (await service.requirement()).allowed_orgs == ("acme",)
    remove(registry_json)  # the documented way to stop enforcing it
    clock.advance(1.0)
    assert await service.requirement() == NOT_ENFORCED


async def test_an_editor_saving_by_delete_and_write_never_opens_the_gateway(
    world: Services, database: Database, registry_json: Path, clock: FakeClock
) -> None:
    saved = allowed("acme", "globex")

    def stat_while_saving(path: Path) -> os.stat_result:
        """The file is gone at this look, and written again right after it."""
        result = os.stat(path) if path.exists() else None
        if result is None and not saving.done:
            saving.done = True
            write(path, saved)
            raise FileNotFoundError(path)
        assert result is not None
        return result

    class Saving:
        done = False

    saving = Saving()
    service = SignInService(
        database, registry_json, missing_ok=True, clock=clock, stat=stat_while_saving
    )
    write(registry_json, allowed("acme"))
    assert (await service.requirement()).allowed_orgs == ("acme",)
    remove(registry_json)
    clock.advance(1.0)
    assert (await service.requirement()).allowed_orgs == ("acme", "globex")
    assert saving.done


async def test_fixing_the_file_is_logged_and_enforced(
    world: Services,
    signin: SignInService,
    registry_json: Path,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    write(registry_json, b"{}")
    assert (await signin.requirement()).problem is not None
    write(registry_json, allowed("acme"))
    clock.advance(1.0)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert (await signin.requirement()).problem is None
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert line == (
        f"enforce sign-in: only members of [acme] may use this registry (from {registry_json})"
    )


async def test_a_deleted_org_is_noticed_within_the_org_recheck_interval(
    world: Services,
    database: Database,
    signin: SignInService,
    registry_json: Path,
    clock: FakeClock,
) -> None:
    write(registry_json, allowed("globex"))
    assert (await signin.requirement()).problem is None
    async with database.write() as conn:  # no command removes an organization yet
        await conn.execute(delete(Organization).where(Organization.name == "globex"))
    clock.advance(1.0)  # the file did not change: no org check yet
    assert (await signin.requirement()).problem is None
    clock.advance(9.0)
    problem = (await signin.requirement()).problem
    assert (
        problem == "organization 'globex' not found on this gateway; create it or correct the name"
    )


async def test_inspect_reads_the_given_file_now(
    world: Services, signin: SignInService, tmp_path: Path, stat: CountingStat
) -> None:
    other = tmp_path / "other.json"
    write(other, allowed("acme"))
    assert await signin.inspect(other) == SignInRequirement(("acme",), None, str(other))
    write(other, allowed("acme", "ghost"))
    assert (await signin.inspect(other)).problem == (
        "organization 'ghost' not found on this gateway; create it or correct the name"
    )
    assert (await signin.inspect(tmp_path / "absent.json")).problem == "the file does not exist"
    assert stat.calls == 0  # the cached requirement is left alone


async def test_refusal_for_requests_that_name_no_repository(
    world: Services, signin: SignInService, registry_json: Path, clock: FakeClock
) -> None:
    write(registry_json, allowed("globex"))
    assert await signin.refusal("carol") is None  # member of acme and globex
    assert await signin.refusal("gina") is None
    bob = await signin.refusal("bob")  # acme only
    assert bob is not None and bob.kind is Refusal.NOT_ALLOWED_ORG
    assert bob.message.startswith("You must be a member of the [globex] organization.")
    anonymous = await signin.refusal(None)
    assert anonymous is not None and anonymous.kind is Refusal.SIGN_IN_REQUIRED
    write(registry_json, b"[]")
    clock.advance(1.0)
    broken = await signin.refusal("gina")
    assert broken is not None and broken.kind is Refusal.UNENFORCEABLE


async def test_access_decisions_use_the_requirement(
    world: Services, database: Database, registry_json: Path, clock: FakeClock
) -> None:
    access = AccessService(
        database,
        world.publishers,
        signin=SignInService(database, registry_json, clock=clock),
    )
    write(registry_json, allowed("globex"))
    alpine = parse_repository("alpine")
    assert (await access.decide_pull("gina", alpine)).allowed
    bob = await access.decide_pull("bob", alpine)
    assert bob.outcome is Outcome.NOT_IN_ALLOWED_ORGS
    anonymous = await access.decide_pull(None, alpine)
    assert anonymous.outcome is Outcome.SIGN_IN_REQUIRED
    # A write by an outsider is refused the same way.
    app = parse_repository("acme/app")
    push = await access.decide_write("bob", app, Permission.WRITE, "push to")
    assert push.outcome is Outcome.NOT_IN_ALLOWED_ORGS
