"""Repository permissions in the spirit of Docker Hub teams, decided without I/O.

An organization's hosted repositories are private by default. Teams get ``read``,
``write`` or ``admin`` on one repository or on the whole namespace; owners have
``admin`` everywhere. A public repository is readable by anyone, anonymous included.
Pushing needs ``write``; deleting manifests and tags needs ``admin``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Permission(enum.IntEnum):
    NONE = 0
    READ = 1
    WRITE = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Permission:
        """``read``, ``write`` or ``admin`` (``ValueError`` naming the choices otherwise)."""
        try:
            permission = cls[value.upper()]
        except KeyError:
            raise ValueError(f"invalid permission {value!r}: use read, write or admin") from None
        if permission is cls.NONE:
            raise ValueError(f"invalid permission {value!r}: use read, write or admin")
        return permission


class Visibility(enum.StrEnum):
    PRIVATE = "private"
    PUBLIC = "public"


@dataclass(frozen=True)
class HostedRepository:
    """A repository stored here (created by its first push), as one requester sees it."""

    visibility: Visibility
    permission: Permission  # the requester's effective permission on it

    @property
    def readable(self) -> bool:
        return self.visibility is Visibility.PUBLIC or self.permission >= Permission.READ


def effective_permission(is_owner: bool, grants: Iterable[Permission]) -> Permission:
    """Owners have admin; everyone else the highest grant of any team they are in."""
    if is_owner:
        return Permission.ADMIN
    return max(grants, default=Permission.NONE)
