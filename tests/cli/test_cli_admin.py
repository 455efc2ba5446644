"""The admin commands, run in-process: what they print, what they store, how they fail."""

from __future__ import annotations

import asyncio
import json

import pytest

from imagegate.auth.passwords import ACCESS_TOKEN_PREFIX
from imagegate.config import load_settings
from imagegate.core.policy import ImageAccessSettings
from imagegate.services import running_services
from imagegate.services.orgs import MemberInfo
from tests.cli.conftest import Cli, Result


def ok(result: Result) -> Result:
    assert result.code == 0, result
    return result


async def _state(
    user: str, secret: str
) -> tuple[str | None, list[MemberInfo], ImageAccessSettings]:
    """What a gateway on the same database now sees."""
    async with running_services(load_settings()) as services:
        return (
            await services.accounts.authenticate(user, secret),
            await services.orgs.members("acme"),
            await services.access.get_settings("acme"),
        )


def test_the_admin_story(cli: Cli) -> None:
    assert (
        ok(
            cli(
                "user",
                "add",
                "alice",
                "--email",
                "alice@example.com",
                "--password-stdin",
                stdin="alice-pw\n",
            )
        ).out
        == "created user alice\n"
    )
    ok(cli("user", "add", "bob", "--password-stdin", stdin="bob-pw"))
    ok(cli("user", "add", "carol", "--password-stdin", stdin="carol-pw\n"))

    token = ok(cli("token", "create", "bob", "--description", "ci", "--expires-in", "30"))
    secret = token.out.strip()
    assert token.out == secret + "\n" and secret.startswith(ACCESS_TOKEN_PREFIX)
    assert "not shown again" in token.err and secret not in token.err

    assert ok(cli("org", "add", "acme", "--owner", "alice")).out == (
        "created organization acme with owner alice\n"
    )
    assert "added bob to team members of acme" in ok(cli("org", "member", "add", "acme", "bob")).out
    assert "already in team members" in ok(cli("org", "member", "add", "acme", "bob")).out
    ok(cli("org", "member", "add", "acme", "carol", "--team", "owners"))

    shown = ok(cli("image-access", "set", "acme", "--enable", "--community", "allowed")).out
    assert shown.splitlines() == [
        "Image Access Management for acme: enabled",
        "  Organization images        Allowed (the acme namespace, always)",
        "  Docker Official Images     Allowed",
        "  Verified Publisher images  Allowed",
        "  Community images           Allowed (Sponsored OSS counts as community)",
    ]

    authenticated, members, settings = asyncio.run(_state("bob", secret))
    assert authenticated == "bob"
    assert members == [
        MemberInfo("alice", ("owners",)),
        MemberInfo("bob", ("members",)),
        MemberInfo("carol", ("owners",)),
    ]
    assert settings == ImageAccessSettings(enabled=True, allow_community=True)

    assert (
        "removed bob from acme (teams: members)"
        in ok(cli("org", "member", "remove", "acme", "bob")).out
    )
    assert ok(cli("org", "member", "remove", "acme", "alice")).code == 0  # carol still owns


def test_image_access_settings_round_trip_in_hubs_json(cli: Cli) -> None:
    ok(cli("user", "add", "alice", "--password-stdin", stdin="pw"))
    ok(cli("org", "add", "acme", "--owner", "alice"))
    assert json.loads(ok(cli("image-access", "show", "acme", "--json")).out) == {
        "restricted_images": {
            "enabled": False,
            "allow_official_images": True,
            "allow_verified_publishers": True,
        },
        "allow_community_images": False,
        "organization": "acme",
        "allowlist": [],
        "upstream_namespace": None,
    }
    ok(cli("image-access", "set", "acme", "--enable", "--official", "restricted"))
    ok(cli("image-access", "set", "acme", "--verified-publishers=restricted"))
    document = json.loads(ok(cli("image-access", "show", "acme", "--json")).out)
    assert document["restricted_images"] == {
        "enabled": True,
        "allow_official_images": False,
        "allow_verified_publishers": False,
    }
    ok(cli("image-access", "set", "acme", "--disable"))
    human = ok(cli("image-access", "show", "acme")).out
    assert "disabled" in human and "Docker Official Images     Restricted" in human


def test_an_organization_mirrors_an_upstream_namespace_only_when_told(cli: Cli) -> None:
    ok(cli("user", "add", "alice", "--password-stdin", stdin="pw"))
    ok(cli("org", "add", "acme", "--owner", "alice"))
    assert "Upstream namespace         (none: hosted repositories only)" in (
        ok(cli("image-access", "show", "acme")).out
    )
    assert ok(cli("org", "set", "acme", "--upstream-namespace", "acme-inc")).out == (
        "acme mirrors the upstream namespace acme-inc: acme/NAME that is not hosted here is "
        "pulled from acme-inc/NAME\n"
    )
    document = json.loads(ok(cli("image-access", "show", "acme", "--json")).out)
    assert document["upstream_namespace"] == "acme-inc"
    assert ok(cli("org", "set", "acme", "--no-upstream-namespace")).out == (
        "acme mirrors no upstream namespace: acme/... serves its hosted repositories only\n"
    )
    for args, code, message in (
        (("org", "set", "acme"), 2, "--upstream-namespace NAME or --no-upstream-namespace"),
        (("org", "set", "acme", "--upstream-namespace", "Acme/Inc"), 2, "invalid upstream"),
        (("org", "set", "nope", "--upstream-namespace", "nope"), 1, "'nope' does not exist"),
        (
            ("org", "set", "acme", "--upstream-namespace", "a", "--no-upstream-namespace"),
            2,
            "not allowed with",
        ),
    ):
        result = cli(*args)
        assert (result.code, message in result.err) == (code, True), result
    shown = json.loads(ok(cli("image-access", "show", "acme", "--json")).out)
    assert shown["upstream_namespace"] is None


def test_publisher_overrides(cli: Cli) -> None:
    assert ok(cli("publisher", "list")).err == "no publisher overrides\n"
    ok(cli("publisher", "set", "adminpub", "verified_publisher"))
    ok(cli("publisher", "set", "ossproject", "sponsored_oss"))
    ok(cli("publisher", "set", "adminpub", "community"))
    assert ok(cli("publisher", "list")).out == "adminpub\tcommunity\nossproject\tsponsored_oss\n"
    ok(cli("publisher", "remove", "adminpub"))
    assert ok(cli("publisher", "list")).out == "ossproject\tsponsored_oss\n"


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (("user", "add", "Bad", "--password-stdin"), "pw", 1, "invalid user name 'Bad'"),
        (("user", "add", "alice", "--password-stdin"), "pw", 1, "already taken by a user"),
        (("user", "add", "dave", "--password-stdin"), "\n", 1, "no password on stdin"),
        (("token", "create", "ghost"), "", 1, "user 'ghost' does not exist"),
        (("token", "create", "alice", "--expires-in", "0"), "", 1, "expires in 1 to"),
        (("org", "add", "alice", "--owner", "alice"), "", 1, "already taken by a user"),
        (("org", "member", "add", "nope", "alice"), "", 1, "organization 'nope' does not exist"),
        (("org", "member", "add", "acme", "ghost"), "", 1, "user 'ghost' does not exist"),
        (("org", "member", "remove", "acme", "alice"), "", 1, "last owner"),
        (("image-access", "show", "nope"), "", 1, "organization 'nope' does not exist"),
        (("image-access", "set", "acme"), "", 2, "nothing to change"),
        (("publisher", "set", "library", "community"), "", 1, "cannot be overridden"),
        (("publisher", "set", "Bad", "community"), "", 1, "invalid namespace"),
        (("publisher", "remove", "nobody"), "", 1, "no publisher override"),
    ],
)
def test_errors_are_clear_and_change_nothing(
    cli: Cli, args: tuple[str, ...], stdin: str, code: int, message: str
) -> None:
    ok(cli("user", "add", "alice", "--password-stdin", stdin="pw"))
    ok(cli("org", "add", "acme", "--owner", "alice"))
    before = ok(cli("image-access", "show", "acme", "--json")).out
    result = cli(*args, stdin=stdin)
    assert result.code == code and result.out == ""
    assert result.err.startswith("imagegate: error: ") and message in result.err, result.err
    assert ok(cli("image-access", "show", "acme", "--json")).out == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("image-access", "set", "acme", "--community", "maybe"), "invalid choice"),
        (("image-access", "set", "acme", "--enable", "--disable"), "not allowed with"),
        (("user", "add", "dave"), "--password-stdin"),
        (("publisher", "set", "x", "gold"), "invalid choice"),
        (("token", "create", "alice", "--expires-in", "soon"), "invalid int value"),
        ((), "required"),
    ],
)
def test_usage_errors_exit_2(cli: Cli, args: tuple[str, ...], message: str) -> None:
    result = cli(*args)
    assert result.code == 2 and message in result.err


def test_a_failed_command_writes_nothing(cli: Cli) -> None:
    assert cli("org", "add", "acme", "--owner", "ghost").code == 1
    ok(cli("user", "add", "acme", "--password-stdin", stdin="pw"))  # "acme" was not claimed


def test_the_repository_allowlist(cli: Cli) -> None:
    ok(cli("user", "add", "alice", "--password-stdin", stdin="pw"))
    ok(cli("org", "add", "acme", "--owner", "alice"))
    assert "Allowlisted repositories   (none)" in ok(cli("image-access", "show", "acme")).out
    added = ok(cli("image-access", "allow", "acme", "nginx")).out
    assert added == "allowlisted library/nginx in acme: every member may pull it\n"
    assert (
        "already on the allowlist" in ok(cli("image-access", "allow", "acme", "library/nginx")).out
    )
    ok(cli("image-access", "allow", "acme", "someone/tool"))
    shown = ok(cli("image-access", "show", "acme")).out
    assert "Allowlisted repositories   library/nginx, someone/tool" in shown
    document = json.loads(ok(cli("image-access", "show", "acme", "--json")).out)
    assert document["allowlist"] == ["library/nginx", "someone/tool"]
    assert ok(cli("image-access", "disallow", "acme", "library/nginx")).out == (
        "removed library/nginx from the allowlist of acme\n"
    )
    missing = cli("image-access", "disallow", "acme", "library/nginx")
    assert missing.code == 1 and "is not on the allowlist of acme" in missing.err
    bad = cli("image-access", "allow", "acme", "Bad/Name")
    assert bad.code == 1 and "invalid repository name 'Bad/Name'" in bad.err
    nobody = cli("image-access", "allow", "nobody", "a/b")
    assert nobody.code == 1 and "organization 'nobody' does not exist" in nobody.err


def test_gateway_admins(cli: Cli) -> None:
    assert ok(cli("user", "add", "root", "--admin", "--password-stdin", stdin="pw")).out == (
        "created gateway admin root\n"
    )
    ok(cli("user", "add", "alice", "--password-stdin", stdin="pw"))
    assert ok(cli("user", "admin", "alice")).out == "alice is a gateway admin\n"
    assert ok(cli("user", "admin", "alice", "--revoke")).out == (
        "alice is no longer a gateway admin\n"
    )
    missing = cli("user", "admin", "nobody")
    assert missing.code == 1 and "user 'nobody' does not exist" in missing.err
