"""Writing a deployment file: atomically, root-owned with mode 0644 whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagegate.deploy.files import write_atomically

OTHER_ID = 4321  # an owner that is not root


@pytest.fixture
def restrictive_umask() -> Iterator[None]:
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def as_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("ownership is only changed when run as root")


def test_a_new_file_is_0644_whatever_the_umask(tmp_path: Path, restrictive_umask: None) -> None:
    target = tmp_path / "registry.json"
    write_atomically(target, b'{"allowedOrgs": ["acme"]}\n')
    assert target.read_bytes() == b'{"allowedOrgs": ["acme"]}\n'
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_as_root_an_existing_file_becomes_root_owned(
    tmp_path: Path, restrictive_umask: None, as_root: None
) -> None:
    # A user-owned, private file (as someone's editor might leave it) ...
    target = tmp_path / "registry.json"
    target.write_bytes(b"old")
    os.chown(target, OTHER_ID, OTHER_ID)
    target.chmod(0o600)
    write_atomically(target, b"new")
    # ... is replaced by one only root can change and everybody (Desktop) can read.
    info = target.stat()
    assert (info.st_uid, info.st_gid) == (0, 0)
    assert stat.S_IMODE(info.st_mode) == 0o644
    assert target.read_bytes() == b"new"


def test_as_root_the_group_is_root_even_in_a_setgid_directory(
    tmp_path: Path, as_root: None
) -> None:
    # A setgid directory would otherwise hand the file its own group.
    directory = tmp_path / "shared"
    directory.mkdir()
    os.chown(directory, 0, OTHER_ID)
    directory.chmod(0o2775)
    target = directory / "registry.json"
    write_atomically(target, b"{}")
    assert target.stat().st_gid == 0


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    target = tmp_path / "registry.json"
    write_atomically(target, b"one")
    write_atomically(target, b"two")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["registry.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "registry.json"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_atomically(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["registry.json"]


def test_missing_parents_are_created_0755_when_asked(
    tmp_path: Path, restrictive_umask: None
) -> None:
    target = tmp_path / "usr" / "share" / "docker-desktop" / "registry" / "registry.json"
    write_atomically(target, b"{}", create_parents=True)
    for directory in (target.parent, target.parent.parent, tmp_path / "usr"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755
    with pytest.raises(FileNotFoundError):
        write_atomically(tmp_path / "absent" / "registry.json", b"{}")


def test_parents_cannot_be_made_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "usr").write_bytes(b"")
    target = tmp_path / "usr" / "share" / "registry.json"
    with pytest.raises(NotADirectoryError) as raised:
        write_atomically(target, b"{}", create_parents=True)
    assert str(raised.value) == (
        f"cannot create {tmp_path / 'usr' / 'share'}: {tmp_path / 'usr'} is not a directory"
    )
