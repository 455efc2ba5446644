"""The data directory is private: what ``imagegate`` creates there is its user's alone,
and ``serve`` warns about what others may already read (real files, real modes)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagegate.config import load_settings
from imagegate.datadir import create, exposed
from tests.support.gateway import Gateway
from tests.support.images import build_image
from tests.support.oci import OciClient, push_image

DEAD_UPSTREAM = "http://127.0.0.1:9"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _everything(root: Path) -> Iterator[Path]:
    yield root
    for directory, names, files in os.walk(root):
        for name in [*names, *files]:
            yield Path(directory) / name


def test_every_file_a_gateway_writes_is_private(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "imagegate"  # nothing there yet: the first command makes it
    with Gateway(
        tmp_path, upstream_url=DEAD_UPSTREAM, settings={"IMAGEGATE_DATA_DIR": str(data)}
    ) as gateway:
        gateway.add_user("olivia", "owner-secret")
        gateway.add_org("acme", "olivia")
        gateway.create_token("olivia")
        client = OciClient(gateway.url, ("olivia", "owner-secret"))
        push_image(client, "acme/app", "1", build_image("private-modes"))
        # an upload left open holds received bytes on disk too
        opened = client.request("POST", "/v2/acme/app/blobs/uploads/")
        assert opened.status == 202, opened.describe()
    names = {path.name for path in _everything(data)}
    assert {"imagegate.db", "keys", "token-signing-key.pem", "blobs", "uploads"} <= names
    wide = {str(path): oct(_mode(path)) for path in _everything(data) if _mode(path) & 0o077}
    assert wide == {}
    assert _mode(data) == 0o700


def test_create_makes_a_missing_directory_0700_and_leaves_an_existing_one(
    tmp_path: Path,
) -> None:
    create(tmp_path / "new")
    assert _mode(tmp_path / "new") == 0o700
    (tmp_path / "old").mkdir(mode=0o755)
    os.chmod(tmp_path / "old", 0o755)
    create(tmp_path / "old")
    assert _mode(tmp_path / "old") == 0o755


@pytest.fixture
def wide_data_dir(tmp_path: Path) -> Path:
    """A data directory as an older version left it: 0755 directories, 0644 files."""
    data = tmp_path / "old-data"
    (data / "keys").mkdir(parents=True)
    (data / "keys" / "api-signing-key").write_bytes(os.urandom(32))
    (data / "imagegate.db").write_bytes(b"")
    for path, mode in (
        (data, 0o755),
        (data / "keys", 0o750),
        (data / "keys" / "api-signing-key", 0o644),
        (data / "imagegate.db", 0o604),
    ):
        os.chmod(path, mode)
    return data


def test_exposed_names_each_path_its_mode_and_the_fix(wide_data_dir: Path) -> None:
    settings = load_settings({"IMAGEGATE_DATA_DIR": str(wide_data_dir)})
    found = {str(item.path): (item.mode, item.fix) for item in exposed(settings)}
    assert found == {
        str(wide_data_dir): (0o755, f"chmod 700 {wide_data_dir}"),
        str(wide_data_dir / "keys"): (0o750, f"chmod 700 {wide_data_dir / 'keys'}"),
        str(wide_data_dir / "keys" / "api-signing-key"): (
            0o644,
            f"chmod 600 {wide_data_dir / 'keys' / 'api-signing-key'}",
        ),
        str(wide_data_dir / "imagegate.db"): (0o604, f"chmod 600 {wide_data_dir / 'imagegate.db'}"),
    }


def test_serve_warns_about_what_others_may_read(tmp_path: Path, wide_data_dir: Path) -> None:
    os.remove(wide_data_dir / "imagegate.db")  # a real one, made by an older version:
    gateway = Gateway(
        tmp_path, upstream_url=DEAD_UPSTREAM, settings={"IMAGEGATE_DATA_DIR": str(wide_data_dir)}
    )
    gateway.add_user("olivia", "owner-secret")
    os.chmod(wide_data_dir / "imagegate.db", 0o644)
    with gateway:
        pass
    warnings = [
        entry
        for entry in map(json.loads, gateway.log_tail(100_000).splitlines())
        if entry.get("event") == "data_permissions"
    ]
    assert {(entry["level"], entry["path"], entry["mode"]) for entry in warnings} == {
        ("warning", str(wide_data_dir), "0755"),
        ("warning", str(wide_data_dir / "keys"), "0750"),
        ("warning", str(wide_data_dir / "keys" / "api-signing-key"), "0644"),
        ("warning", str(wide_data_dir / "imagegate.db"), "0644"),
    }
    database = wide_data_dir / "imagegate.db"
    [line] = [entry["message"] for entry in warnings if entry["path"] == str(database)]
    assert line == (
        f"{database} (password hashes and access token digests) has mode 0644: other users "
        f"may read it; fix it with: chmod 600 {database}"
    )
    assert _mode(database) == 0o644  # reported, not changed behind the owner's back
