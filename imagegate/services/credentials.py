"""Credentials as the rest of the gateway sees them, apart from checking them.

``SignedIn`` is who ``AccountService.authenticate`` signed in and with what: the
credential's ``Reach`` (``core.authorization``, the one vocabulary for how far a
credential goes, at ``/token`` as on the API and the console), and the access token's
uuid or the password version that verified, so that a session or a registry token made
with it is tied to that credential. ``TokenInfo`` is what may be shown about a personal
access token; ``check_scopes`` says which scopes one may have (Docker Hub's).
``MAX_CREDENTIAL_LENGTH`` bounds every name and secret.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from imagegate.core.authorization import TOKEN_SCOPES, Reach
from imagegate.services.errors import InvalidInput

# No password is longer (``create_user`` and ``set_password`` refuse it), nor any name or
# access token: a longer name or secret never signs anyone in, and is refused unread.
MAX_CREDENTIAL_LENGTH = 1024
DEFAULT_SCOPES = ("repo:write",)
MAX_TOKEN_LABEL_LENGTH = 100


class SignedIn(str):
    """The canonical username ``authenticate`` returns, telling how the user signed in.

    A ``str``, so callers that only need the name use it as one. ``reach``: how far the
    credential goes (``WRITE`` for a password or a write token; a ``READ`` token may
    pull, never push or delete; a ``PUBLIC`` one pulls public repositories only).
    ``token_uuid``: the access token, ``None`` for a password. ``password_version``: the
    version of the password that verified, read with the hash it was checked against
    (``None`` for a token): a session made with it ends if the password changed since.
    """

    reach: Reach
    token_uuid: str | None
    password_version: int | None

    def __new__(
        cls,
        name: str,
        reach: Reach,
        *,
        token_uuid: str | None = None,
        password_version: int | None = None,
    ) -> SignedIn:
        signed_in = super().__new__(cls, name)
        signed_in.reach = reach
        signed_in.token_uuid = token_uuid
        signed_in.password_version = password_version
        return signed_in


def check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``scopes`` if an access token may have them (at least one, each known)."""
    if not scopes:
        raise InvalidInput(f"give at least one scope: {', '.join(TOKEN_SCOPES)}")
    for scope in scopes:
        if scope not in TOKEN_SCOPES:
            raise InvalidInput(f"unknown scope {scope!r}: use {', '.join(TOKEN_SCOPES)}")
    return tuple(scopes)


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a personal access token; never its secret."""

    id: int
    username: str
    description: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    active: bool
    uuid: str = ""
    scopes: tuple[str, ...] = DEFAULT_SCOPES  # as given, in order
    creator_ip: str = ""
    creator_ua: str = ""

    def expired(self, now: dt.datetime | None = None) -> bool:
        """Past its expiry date: it no longer signs anyone in, active or not."""
        moment = now or dt.datetime.now(dt.UTC)
        return self.expires_at is not None and self.expires_at <= moment

    @property
    def usable(self) -> bool:
        return self.active and not self.expired()

    def audit(self) -> dict[str, Any]:
        """What the audit trail keeps of the token: never its secret or its hash."""
        expires_at = self.expires_at.isoformat() if self.expires_at is not None else None
        return {
            "uuid": self.uuid,
            "label": self.description,
            "scopes": list(self.scopes),
            "active": self.active,
            "expires_at": expires_at,
        }
