"""Names: repositories, tags, references and account names, parsed once at the edge.

Repository names follow the OCI distribution grammar; a bare name means ``library/NAME``
as on Docker Hub, and the first component is the namespace (a user or organization).
Account names (users, organizations, teams) follow Docker Hub's rules: lowercase.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imagegate.core.digests import Digest, is_digest
from imagegate.core.errors import NameInvalid

OFFICIAL_NAMESPACE = "library"

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_COMPONENT_RE = re.compile(_COMPONENT)
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
# Docker Hub: usernames and organization names are 4 to 30 lowercase letters and digits.
# We also accept 2-3 characters and inner '-'/'_' so that self-hosted names like "qa"
# or "platform-team" work; uppercase is never accepted (matching is case-sensitive).
_ACCOUNT_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,28}[a-z0-9]")
_TEAM_RE = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,48}[a-z0-9])?")

# Clients cap "host[:port]/name" at 255 characters; leave room for the host.
MAX_REPOSITORY_LENGTH = 200
MAX_UPSTREAM_NAMESPACE_LENGTH = 100
RESERVED_ACCOUNT_NAMES = frozenset({OFFICIAL_NAMESPACE})


@dataclass(frozen=True, order=True)
class RepositoryName:
    """A canonical repository name: ``namespace/path`` with at least two components."""

    namespace: str
    path: str

    @property
    def full(self) -> str:
        return f"{self.namespace}/{self.path}"

    @property
    def is_official(self) -> bool:
        return self.namespace == OFFICIAL_NAMESPACE

    def __str__(self) -> str:
        return self.full


def parse_repository(name: str) -> RepositoryName:
    """Parse and canonicalize a repository name (``nginx`` -> ``library/nginx``)."""
    if not name:
        raise NameInvalid("repository name is empty")
    # The limit holds for the canonical name, so that what parses always parses again.
    bare = "/" not in name
    length = len(name) + (len(OFFICIAL_NAMESPACE) + 1 if bare else 0)
    if length > MAX_REPOSITORY_LENGTH:
        raise NameInvalid(
            f"repository name is {length} characters long{' as library/NAME' if bare else ''}; "
            f"at most {MAX_REPOSITORY_LENGTH} are allowed",
            detail={"name": name[:MAX_REPOSITORY_LENGTH]},
        )
    if _REPOSITORY_RE.fullmatch(name) is None:
        raise NameInvalid(
            f"invalid repository name {name!r}: use lowercase letters, digits and "
            "separators ('.', '_', '__', '-') in '/'-separated components",
            detail={"name": name},
        )
    namespace, _, path = name.partition("/")
    if not path:
        return RepositoryName(OFFICIAL_NAMESPACE, namespace)
    return RepositoryName(namespace, path)


def validate_upstream_namespace(name: str) -> str:
    """Check an upstream namespace to mirror: one repository name component (the first
    of ``NAME/app``); raise ``ValueError`` with the rule broken."""
    if len(name) > MAX_UPSTREAM_NAMESPACE_LENGTH or _COMPONENT_RE.fullmatch(name) is None:
        raise ValueError(
            f"invalid upstream namespace {name[:MAX_UPSTREAM_NAMESPACE_LENGTH]!r}: use one "
            f"name component of at most {MAX_UPSTREAM_NAMESPACE_LENGTH} lowercase letters, "
            "digits and separators ('.', '_', '__', '-'), such as acme-inc"
        )
    return name


def is_tag(reference: str) -> bool:
    return _TAG_RE.fullmatch(reference) is not None


@dataclass(frozen=True)
class Reference:
    """A manifest reference: exactly one of a tag or a digest."""

    tag: str | None = None
    digest: Digest | None = None

    def __str__(self) -> str:
        return self.tag if self.tag is not None else str(self.digest)


def parse_reference(reference: str) -> Reference:
    if is_digest(reference):
        return Reference(digest=Digest.parse(reference))
    if is_tag(reference):
        return Reference(tag=reference)
    raise NameInvalid(
        f"invalid reference {reference!r}: expected a tag (letters, digits, '_', '.', '-', "
        "at most 128 characters) or a digest such as sha256:<64 hex digits>",
        detail={"reference": reference},
    )


def validate_account_name(name: str, kind: str = "name") -> str:
    """Check a user or organization name; raise ``ValueError`` with the rule broken."""
    if name in RESERVED_ACCOUNT_NAMES:
        raise ValueError(f"{kind} {name!r} is reserved")
    if _ACCOUNT_RE.fullmatch(name) is None:
        raise ValueError(
            f"invalid {kind} {name!r}: use 2 to 30 lowercase letters, digits, '-' or '_', "
            "starting and ending with a letter or digit"
        )
    return name


def validate_team_name(name: str) -> str:
    if _TEAM_RE.fullmatch(name) is None:
        raise ValueError(
            f"invalid team name {name!r}: use 1 to 50 lowercase letters, digits, '-' or '_', "
            "starting and ending with a letter or digit"
        )
    return name
