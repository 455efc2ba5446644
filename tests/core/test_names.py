import pytest

from imagegate.core.digests import Digest
from imagegate.core.errors import DigestInvalid, NameInvalid
from imagegate.core.names import (
    RepositoryName,
    parse_reference,
    parse_repository,
    validate_account_name,
    validate_team_name,
)

SHA = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("raw", "namespace", "path"),
    [
        ("nginx", "library", "nginx"),
        ("library/nginx", "library", "nginx"),
        ("acme/app", "acme", "app"),
        ("acme/team/app", "acme", "team/app"),
        ("a.b/c_d/e__f/g-h", "a.b", "c_d/e__f/g-h"),
        ("x--y/z", "x--y", "z"),
        ("acme/manifests", "acme", "manifests"),
    ],
)
def test_repository_names_are_canonical(raw: str, namespace: str, path: str) -> None:
    name = parse_repository(raw)
    assert name == RepositoryName(namespace, path)
    assert name.full == f"{namespace}/{path}"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "Nginx",
        "acme/App",
        "/acme",
        "acme/",
        "acme//app",
        "-acme/app",
        "acme/app-",
        "a_.b",
        "acme/a___b",
        "acme/a..b",
        "a" * 201,
        "acme/app:latest",
        "acme app",
    ],
)
def test_invalid_repository_names_are_refused_with_a_message(raw: str) -> None:
    with pytest.raises(NameInvalid) as info:
        parse_repository(raw)
    assert info.value.message
    assert info.value.status == 400


def test_a_bare_name_counts_its_library_prefix_against_the_limit() -> None:
    # Found by fuzzing: a bare name of 193 to 200 characters parsed, to a canonical name
    # (library/NAME) that no longer did, so the same repository had no name to store.
    longest = "a" * (200 - len("library/"))
    assert parse_repository(parse_repository(longest).full).path == longest
    with pytest.raises(NameInvalid) as info:
        parse_repository(longest + "a")
    assert info.value.message == (
        "repository name is 201 characters long as library/NAME; at most 200 are allowed"
    )


def test_official_namespace() -> None:
    assert parse_repository("alpine").is_official
    assert not parse_repository("acme/alpine").is_official


@pytest.mark.parametrize(
    "tag", ["latest", "1.0", "v1_2-3", "A", "_x", "a" * 128, "sha256-" + "a" * 64]
)
def test_tags(tag: str) -> None:
    assert parse_reference(tag).tag == tag


@pytest.mark.parametrize("bad", [".hidden", "-x", "a" * 129, "a/b", "", "tag with space"])
def test_bad_references(bad: str) -> None:
    with pytest.raises(NameInvalid):
        parse_reference(bad)


def test_digest_references() -> None:
    reference = parse_reference(SHA)
    assert reference.digest == Digest("sha256", "a" * 64)
    assert str(reference) == SHA


@pytest.mark.parametrize(
    "bad",
    [
        "sha256:" + "A" * 64,
        "sha256:abc",
        "md5:" + "a" * 32,
        "sha512:" + "a" * 64,
        "sha256" + "a" * 64,
    ],
)
def test_bad_digests(bad: str) -> None:
    with pytest.raises(DigestInvalid):
        Digest.parse(bad)


def test_digest_of_bytes_and_hasher_agree() -> None:
    hasher = Digest.parse(SHA).hasher()
    hasher.update(b"hello ")
    hasher.update(b"world")
    assert hasher.digest() == Digest.of(b"hello world")
    assert hasher.size == 11
    assert Digest.parse(str(Digest.of(b"x", "sha512"))).algorithm == "sha512"


@pytest.mark.parametrize("name", ["acme", "qa", "a1", "platform-team", "build_bot", "x" * 30])
def test_account_names(name: str) -> None:
    assert validate_account_name(name) == name


@pytest.mark.parametrize(
    "name", ["Acme", "a", "x" * 31, "-acme", "acme-", "ac me", "library", "ac.me", ""]
)
def test_bad_account_names(name: str) -> None:
    with pytest.raises(ValueError, match=r"acme|library|name"):
        validate_account_name(name, "organization name")


def test_team_names() -> None:
    assert validate_team_name("owners") == "owners"
    with pytest.raises(ValueError):
        validate_team_name("Owners")
