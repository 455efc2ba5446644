"""``imagegate org set ORG --quota SIZE|none`` and ``imagegate org show ORG``: the storage
quota an administrator sets, counted from what the organization's repositories hold."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from imagegate.cli.main import cli_actor
from tests.cli.conftest import Cli, Result


def ok(result: Result) -> Result:
    assert result.code == 0, result
    return result


@pytest.fixture
def acme(cli: Cli) -> Cli:
    ok(cli("user", "add", "alice", "--password-stdin", stdin="pw"))
    ok(cli("org", "add", "acme", "--owner", "alice"))
    return cli


def _hosted_blob(data_dir: Path, repository: str, content: bytes) -> None:
    """A blob pushed to ``repository`` before usage was counted (an older version)."""
    digest = hashlib.sha256(content).hexdigest()
    cache = data_dir / "cache"
    blob = cache / "blobs" / "sha256" / digest[:2] / digest
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(content)
    link = cache / "hosted" / "repositories" / repository / "_blobs" / "sha256" / digest
    link.parent.mkdir(parents=True, exist_ok=True)
    link.write_bytes(b"")


def test_set_show_and_remove_a_quota(acme: Cli, environment: dict[str, str]) -> None:
    assert ok(acme("org", "show", "acme")).out == (
        "organization acme\n  repositories  0\n  storage       0 bytes used, no quota\n"
        "  upstream      none (hosted repositories only)\n"
    )
    # What was there before counts as soon as a quota is set.
    data_dir = Path(environment["IMAGEGATE_DATA_DIR"])
    _hosted_blob(data_dir, "acme/app", b"x" * 3 * 1024)
    _hosted_blob(data_dir, "acme/tools/cli", b"x" * 3 * 1024)  # the same digest: once
    _hosted_blob(data_dir, "acme/app", b"y" * 1024)
    _hosted_blob(data_dir, "globex/app", b"z" * 1024)  # another namespace
    assert ok(acme("org", "set", "acme", "--quota", "20GiB")).out == (
        "acme: 4.0 KiB used of a 20.0 GiB quota (0%)\n"
    )
    assert "4.0 KiB used of a 20.0 GiB quota" in ok(acme("org", "show", "acme")).out
    assert ok(acme("org", "set", "acme", "--quota", "8 KiB")).out == (
        "acme: 4.0 KiB used of a 8.0 KiB quota (50%)\n"
    )
    assert ok(acme("org", "set", "acme", "--quota", "none")).out == (
        "acme: 4.0 KiB used, no quota\n"
    )
    trail = ok(acme("audit", "--action", "org.quota.update", "--json")).out.splitlines()
    changes = [json.loads(line)["data"] for line in trail]
    assert changes == [
        {"before": {"quota": None}, "after": {"quota": 20 * 1024**3}},
        {"before": {"quota": 20 * 1024**3}, "after": {"quota": 8 * 1024}},
        {"before": {"quota": 8 * 1024}, "after": {"quota": None}},
    ]
    assert {json.loads(line)["actor"] for line in trail} == {cli_actor()}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("org", "set", "acme"), 2, "nothing to change: give --quota SIZE (e.g. 20GiB"),
        (("org", "set", "acme", "--quota", "lots"), 2, "'lots' is not a size"),
        (("org", "set", "acme", "--quota", "5 PB"), 2, "'5 PB' is not a size"),
        (("org", "set", "../etc", "--quota", "1G"), 2, "invalid organization '../etc'"),
        (("org", "set", "initech", "--quota", "1G"), 1, "organization 'initech' does not exist"),
        (("org", "show", "initech"), 1, "organization 'initech' does not exist"),
    ],
)
def test_mistakes(acme: Cli, args: tuple[str, ...], code: int, message: str) -> None:
    result = acme(*args)
    assert result.code == code and message in result.err, result


def test_gc_counts_usage_anew(acme: Cli, environment: dict[str, str]) -> None:
    ok(acme("org", "set", "acme", "--quota", "1MiB"))
    _hosted_blob(Path(environment["IMAGEGATE_DATA_DIR"]), "acme/app", b"late" * 256)
    assert "0 bytes used" in ok(acme("org", "show", "acme")).out  # not counted yet
    result = ok(acme("gc"))
    assert result.out.splitlines()[-1] == "counted the storage of 1 organizations"
    assert "1.0 KiB used of a 1.0 MiB quota" in ok(acme("org", "show", "acme")).out
    assert "counted" not in ok(acme("gc", "--dry-run")).out


def test_a_bad_value_changes_nothing(acme: Cli) -> None:
    # Checked before anything is applied: the good quota is not kept beside a bad namespace.
    both = ("org", "set", "acme", "--quota", "10GiB", "--upstream-namespace", "Acme/Inc")
    result = acme(*both)
    assert result.code == 2 and "invalid upstream namespace 'Acme/Inc'" in result.err, result
    shown = ok(acme("org", "show", "acme")).out
    assert "no quota" in shown and "none (hosted repositories only)" in shown
    assert ok(acme("audit", "--action", "org.quota.update", "--json")).out == ""


def test_a_name_that_is_not_text_is_a_usage_error(acme: Cli) -> None:
    # How Python hands over the argument byte 0xff: a lone surrogate (was a traceback).
    result = acme("org", "set", "acme\udcff", "--upstream-namespace", "acme-inc")
    assert result.code == 2 and "invalid organization" in result.err, result
    assert "Traceback" not in result.err
