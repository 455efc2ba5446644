"""Settings from the environment and flags, ``serve``, and the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from imagegate.config import Settings
from tests.cli.conftest import Cli


def test_help_exits_0(cli: Cli) -> None:
    result = cli("--help")
    assert result.code == 0 and "image-access" in result.out


def test_an_unknown_setting_stops_every_command(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGATE_DATABSE_URL", "sqlite:///typo.db")
    result = cli("publisher", "list")
    assert result.code == 2
    assert result.err.startswith("imagegate: error: IMAGEGATE_DATABSE_URL: unknown setting")


@pytest.mark.parametrize("url", ["mysql://db/ig", "sqlite:///:memory:"])
def test_an_unusable_database_url_is_a_config_error(cli: Cli, url: str) -> None:
    result = cli("--database-url", url, "publisher", "list")
    assert result.code == 2 and "database" in result.err.lower()


def test_an_unreachable_database_is_an_error_not_a_traceback(cli: Cli) -> None:
    result = cli("--database-url", "postgresql://nobody@127.0.0.1:9/x", "publisher", "list")
    assert result.code == 1
    assert result.err.startswith("imagegate: error: cannot prepare database")


def test_global_flags_override_the_environment_before_or_after_the_command(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], tmp_path: Path
) -> None:
    url = environment["IMAGEGATE_DATABASE_URL"]
    monkeypatch.setenv("IMAGEGATE_DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert cli("publisher", "set", "acmepub", "community", "--database-url", url).code == 0
    assert cli("--database-url", url, "publisher", "list").out == "acmepub\tcommunity\n"
    assert cli("publisher", "list").out == ""  # the environment's database is another one


def test_serve_hands_the_settings_to_bootstrap(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    served: list[Settings] = []
    fake = types.ModuleType("imagegate.bootstrap")
    fake.serve = served.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "imagegate.bootstrap", fake)
    data_dir = tmp_path / "served"
    result = cli("serve", "--host", "0.0.0.0", "--port", "5999", "--data-dir", str(data_dir))
    assert result.code == 0
    [settings] = served
    assert (settings.host, settings.port, settings.data_dir) == ("0.0.0.0", 5999, data_dir)
    assert cli("serve", "--port", "http").code == 2
    assert len(served) == 1


def test_the_console_script(tmp_path: Path) -> None:
    """The installed ``imagegate`` entry point, as an operator runs it (SQLite suffices)."""
    script = Path(sys.executable).parent / "imagegate"
    assert script.exists(), "install the package: pip install -e ."
    environment = {"IMAGEGATE_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path)}

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", **environment},
            timeout=60,
            check=False,
        )

    assert run("user", "add", "alice", "--password-stdin", stdin="pw\n").returncode == 0
    assert run("org", "add", "acme", "--owner", "alice").returncode == 0
    shown = run("image-access", "show", "acme", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["restricted_images"]["enabled"] is False
    assert (tmp_path / "data" / "imagegate.db").exists()
    refused = run("org", "add", "Acme", "--owner", "alice")
    assert refused.returncode == 1
    assert refused.stderr.startswith("imagegate: error: invalid organization name 'Acme'")
