"""``imagegate enforce-sign-in``: ``check`` says exactly what is wrong with a registry.json
(and exits 1), and the Desktop file writers print or write files Desktop can use."""

from __future__ import annotations

import codecs
import json
import os
import plistlib
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from imagegate.cli.main import main
from imagegate.deploy.desktop import POLICY_KEY
from tests.cli.conftest import Cli, Result
from tests.support.gateway import imagegate_binary
from tests.support.regfile import REG_MULTI_SZ, RegValue, parse_reg

# -- check ------------------------------------------------------------------------------


@pytest.fixture
def acme(cli: Cli) -> Cli:
    """A gateway database with the organizations acme and globex."""
    for user in ("alice", "gina"):
        assert cli("user", "add", user, "--password-stdin", stdin="pw\n").code == 0
    assert cli("org", "add", "acme", "--owner", "alice").code == 0
    assert cli("org", "add", "globex", "--owner", "gina").code == 0
    return cli


def _file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "registry.json"
    path.write_bytes(data)
    return path


def test_check_a_valid_file(acme: Cli, tmp_path: Path) -> None:
    path = _file(tmp_path, b'{"allowedOrgs": ["acme", "globex"]}\n')
    result = acme("enforce-sign-in", "check", str(path))
    assert (result.code, result.out) == (0, "OK: sign-in enforced for members of [acme globex]\n")


def _refused(result: Result, path: Path, problem: str) -> None:
    assert result.code == 1, result
    assert result.out == ""
    assert result.err == f"imagegate: error: {path}: {problem}\n"


def test_check_a_file_with_a_byte_order_mark(acme: Cli, tmp_path: Path) -> None:
    path = _file(tmp_path, codecs.BOM_UTF8 + b'{"allowedOrgs": ["acme"]}')
    _refused(
        acme("enforce-sign-in", "check", str(path)),
        path,
        "the file starts with a UTF-8 byte order mark; Docker Desktop ignores such a "
        "file. Save it as UTF-8 without a BOM",
    )


def test_check_an_organization_the_gateway_does_not_know(acme: Cli, tmp_path: Path) -> None:
    path = _file(tmp_path, b'{"allowedOrgs": ["acme", "initech"]}')
    _refused(
        acme("enforce-sign-in", "check", str(path)),
        path,
        "organization 'initech' not found on this gateway; create it or correct the name",
    )


def test_check_an_organization_in_the_wrong_case(acme: Cli, tmp_path: Path) -> None:
    path = _file(tmp_path, b'{"allowedOrgs": ["Acme"]}')
    _refused(
        acme("enforce-sign-in", "check", str(path)),
        path,
        "'Acme' is not lowercase; matching is case-sensitive, so it would sign everybody "
        "out: write 'acme'",
    )


def test_check_a_missing_file(acme: Cli, tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    _refused(acme("enforce-sign-in", "check", str(path)), path, "the file does not exist")


def test_check_reads_the_configured_file_by_default(
    acme: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _file(tmp_path, b'{"allowedOrgs": ["globex"]}')
    monkeypatch.setenv("IMAGEGATE_REGISTRY_JSON", str(path))
    assert acme("enforce-sign-in", "check").out == (
        "OK: sign-in enforced for members of [globex]\n"
    )


def test_check_with_nothing_configured_says_how_to_configure_it(
    acme: Cli, environment: dict[str, str]
) -> None:
    result = acme("enforce-sign-in", "check")
    default = Path(environment["IMAGEGATE_DATA_DIR"]) / "registry.json"
    assert result.code == 2
    assert result.err == (
        "imagegate: error: no registry.json to check: give its PATH, set "
        f"IMAGEGATE_REGISTRY_JSON, or put it at {default}\n"
    )


# -- the Docker Desktop files -------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    code: int
    out: bytes  # exactly the bytes written: a .reg file is UTF-16
    err: str


Run = Callable[..., Output]  # (*args) -> Output


@pytest.fixture
def run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> Run:
    """``imagegate ARGS`` in this process; these commands need no database."""
    for key in list(os.environ):
        if key.startswith("IMAGEGATE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("IMAGEGATE_DATA_DIR", str(tmp_path / "data"))

    def invoke(*args: str) -> Output:
        code = main(list(args))
        captured = capsysbinary.readouterr()
        return Output(code, captured.out, captured.err.decode())

    return invoke


def test_registry_json_goes_to_stdout(run: Run) -> None:
    result = run("enforce-sign-in", "registry-json", "--org", "acme", "--org", "globex")
    assert result.code == 0, result
    assert not result.out.startswith(codecs.BOM_UTF8)
    assert json.loads(result.out) == {"allowedOrgs": ["acme", "globex"]}


def test_registry_json_for_windows_has_crlf(run: Run) -> None:
    result = run("enforce-sign-in", "registry-json", "--org", "acme", "--os", "windows")
    assert b"\r\n" in result.out and json.loads(result.out) == {"allowedOrgs": ["acme"]}


def test_registry_json_written_to_a_file(run: Run, tmp_path: Path) -> None:
    target = tmp_path / "registry.json"
    old = os.umask(0o077)
    try:
        result = run("enforce-sign-in", "registry-json", "--org", "acme", "--output", str(target))
    finally:
        os.umask(old)
    assert (result.code, result.out, result.err) == (0, b"", f"wrote {target}\n")
    assert json.loads(target.read_bytes()) == {"allowedOrgs": ["acme"]}
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    if os.geteuid() == 0:
        assert (target.stat().st_uid, target.stat().st_gid) == (0, 0)


@pytest.mark.parametrize("action", ["registry-json", "mobileconfig", "plist", "reg"])
def test_an_invalid_organization_writes_nothing(run: Run, tmp_path: Path, action: str) -> None:
    target = tmp_path / "out" / "file"
    target.parent.mkdir()
    result = run(
        "enforce-sign-in", action, "--org", "acme", "--org", "Globex", "--output", str(target)
    )
    assert result.code == 2
    assert result.err == (
        "imagegate: error: 'Globex' is not lowercase; matching is case-sensitive, so it "
        "would sign everybody out: write 'globex'\n"
    )
    assert list(target.parent.iterdir()) == []


@pytest.mark.parametrize("action", ["registry-json", "mobileconfig", "plist", "reg"])
def test_output_into_a_missing_directory_names_it(run: Run, tmp_path: Path, action: str) -> None:
    target = tmp_path / "absent" / "file"
    result = run("enforce-sign-in", action, "--org", "acme", "--output", str(target))
    assert (result.code, result.out) == (1, b"")
    assert result.err == (
        f"imagegate: error: cannot write {target}: the directory {target.parent} does not "
        f"exist; create it first (mkdir -p {target.parent})\n"
    )
    assert not target.parent.exists()


def test_output_onto_a_directory_or_under_a_file_says_so(run: Run, tmp_path: Path) -> None:
    onto = run("enforce-sign-in", "plist", "--org", "acme", "--output", str(tmp_path))
    assert (
        onto.err
        == f"imagegate: error: cannot write {tmp_path}: it is a directory; give a file name\n"
    )
    a_file = tmp_path / "plain"
    a_file.write_bytes(b"")
    under = run("enforce-sign-in", "reg", "--org", "acme", "--output", str(a_file / "x.reg"))
    assert (
        under.err
        == f"imagegate: error: cannot write {a_file / 'x.reg'}: {a_file} is not a directory\n"
    )
    assert (onto.code, under.code) == (1, 1)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["plain"]


def test_install_is_only_for_this_machines_os(run: Run) -> None:
    result = run(
        "enforce-sign-in", "registry-json", "--org", "acme", "--os", "windows", "--install"
    )
    assert result.code == 2
    assert result.err == (
        "imagegate: error: --install writes this machine's file, and this is not windows: "
        "use --output PATH and deploy it to C:\\ProgramData\\DockerDesktop\\registry.json "
        "on the windows machines\n"
    )


def test_install_refuses_without_root() -> None:
    # In a user namespace of its own, without a mapping, the process is uid 65534 to
    # itself: a real non-root caller, while it can still read the root-owned venv.
    if subprocess.run(["unshare", "--user", "true"], check=False).returncode != 0:
        pytest.skip("no user namespaces here (unshare --user) to run as non-root")
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMAGEGATE_")}
    command = ["enforce-sign-in", "registry-json", "--org", "acme", "--os", "linux", "--install"]
    completed = subprocess.run(
        ["unshare", "--user", imagegate_binary(), *command],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 1, completed
    assert completed.stderr == (
        "imagegate: error: --install writes /usr/share/docker-desktop/registry/registry.json, "
        "which only an administrator may write: run it as root (sudo), or elevated on "
        "Windows\n"
    )


def test_mobileconfig_and_plist_files(run: Run, tmp_path: Path) -> None:
    orgs = ("--org", "acme", "--org", "globex")
    profile, desktop_plist = tmp_path / "docker.mobileconfig", tmp_path / "desktop.plist"
    assert run("enforce-sign-in", "mobileconfig", *orgs, "--output", str(profile)).code == 0
    assert run("enforce-sign-in", "plist", *orgs, "--output", str(desktop_plist)).code == 0
    [payload] = plistlib.loads(profile.read_bytes())["PayloadContent"]
    assert payload["allowedOrgs"] == "acme;globex"
    assert plistlib.loads(desktop_plist.read_bytes()) == {"allowedOrgs": ["acme", "globex"]}


def test_mobileconfig_with_a_bad_identifier(run: Run) -> None:
    result = run("enforce-sign-in", "mobileconfig", "--org", "acme", "--identifier", "my profile")
    assert result.code == 2
    assert result.err.startswith("imagegate: error: 'my profile' is not a profile identifier")


def test_reg_file_to_stdout_is_the_file_itself(run: Run, tmp_path: Path) -> None:
    target = tmp_path / "allowed-orgs.reg"
    printed = run("enforce-sign-in", "reg", "--org", "acme", "--org", "globex")
    assert (
        run(
            "enforce-sign-in", "reg", "--org", "acme", "--org", "globex", "--output", str(target)
        ).code
        == 0
    )
    assert printed.out == target.read_bytes()  # `> allowed-orgs.reg` gives the same file
    assert parse_reg(printed.out) == {
        POLICY_KEY: {"allowedOrgs": RegValue(REG_MULTI_SZ, ["acme", "globex"])}
    }
