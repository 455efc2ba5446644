"""The audit event, and the catalog of actions it can record (no I/O; ``login`` and
``change`` read who acts and from where from ``context``).

Action names follow Docker Hub's audit logs: a group and a name, written together
(``org.member.add``). Hub has no pull or login events; ours are in the ``registry``
and ``auth`` groups.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from imagegate.audit.context import current_actor, current_origin
from imagegate.auth.passwords import looks_like_access_token


@dataclass(frozen=True)
class Action:
    group: str
    name: str  # inside the group: "member.add"
    label: str
    description: str  # completes "<actor> ...", e.g. "added a member"

    @property
    def full(self) -> str:
        return f"{self.group}.{self.name}"


GROUPS = MappingProxyType(
    {
        "registry": "Registry",
        "auth": "Authentication",
        "org": "Organization",
        "repo": "Repository",
        "user": "User",
        "publisher": "Publisher",
    }
)

_CATALOG = (
    Action("registry", "pull", "Pull", "pulled from a repository"),
    Action("registry", "push", "Push", "pushed to a repository"),
    Action("registry", "delete", "Delete", "deleted from a repository"),
    Action("auth", "login", "Login", "signed in"),
    Action("org", "create", "Organization Created", "created the organization"),
    Action("org", "settings.update", "Image Access Updated", "changed image access settings"),
    Action(
        "org",
        "upstream_namespace.update",
        "Upstream Namespace Updated",
        "changed the upstream namespace mirrored into the organization's",
    ),
    Action("org", "quota.update", "Storage Quota Updated", "changed the storage quota"),
    Action("org", "allowlist.add", "Allowlist Entry Added", "allowlisted a repository"),
    Action("org", "allowlist.remove", "Allowlist Entry Removed", "took a repository off"),
    Action("org", "member.add", "Member Added", "added a member"),
    Action("org", "member.remove", "Member Removed", "removed a member"),
    Action("org", "member.role.change", "Member Role Changed", "changed a member's role"),
    Action("org", "team.create", "Team Created", "created a team"),
    Action("org", "team.update", "Team Updated", "updated a team"),
    Action("org", "team.delete", "Team Deleted", "deleted a team"),
    Action("org", "team.member.add", "Team Member Added", "added a member to a team"),
    Action("org", "team.member.remove", "Team Member Removed", "removed a member from a team"),
    Action("repo", "create", "Repository Created", "created a repository"),
    Action("repo", "change_privacy", "Privacy Changed", "changed a repository's visibility"),
    Action("repo", "delete", "Repository Deleted", "deleted a repository"),
    Action("repo", "permission.set", "Team Permission Set", "gave a team a permission"),
    Action("repo", "permission.remove", "Team Permission Removed", "took a permission away"),
    Action("user", "create", "User Created", "created a user"),
    Action("user", "admin.change", "Admin Changed", "changed a user's admin rights"),
    Action("user", "password.change", "Password Changed", "changed a password"),
    Action("user", "access_token.create", "Access Token Created", "created an access token"),
    Action("user", "access_token.update", "Access Token Updated", "updated an access token"),
    Action("user", "access_token.delete", "Access Token Deleted", "deleted an access token"),
    Action("publisher", "override.set", "Publisher Override Set", "set a publisher status"),
    Action("publisher", "override.remove", "Publisher Override Removed", "dropped an override"),
)
ACTIONS: Mapping[str, Action] = MappingProxyType({a.full: a for a in _CATALOG})

PULL = "registry.pull"
PUSH = "registry.push"
DELETE = "registry.delete"
LOGIN = "auth.login"
ALLOWED = "allowed"
INCORRECT_CREDENTIALS = "incorrect username or password"
REDACTED_NAME = "(an access token given as the username)"
DENIED = "denied"


class AuditSink(Protocol):
    """Where events go: ``recorder.AuditRecorder`` queues them for the database."""

    def record(self, event: AuditEvent) -> None:
        """Queue ``event`` for the audit trail, without waiting."""
        ...


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class AuditEvent:
    """One thing that happened. ``actor`` ``None`` is an anonymous client.

    Registry decisions and logins carry ``decision`` (allowed or denied) and why;
    changes carry ``data["before"]`` and ``data["after"]``. ``id`` is set once stored.
    """

    action: str
    timestamp: dt.datetime = field(default_factory=utcnow)
    actor: str | None = None
    account: str | None = None
    orgs: tuple[str, ...] = ()
    name: str = ""
    repository: str | None = None
    reference: str | None = None
    digest: str | None = None
    category: str | None = None
    decision: str | None = None
    outcome: str | None = None
    reason: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None

    def to_row(self) -> dict[str, Any]:
        """The ``audit_events`` columns (without ``id``: the database assigns it).

        Text a client chose (a reference, a user agent, a name tried at login) is cut to
        its column's length: PostgreSQL refuses a longer value, and one such event must
        not cost a batch or be lost.
        """
        row: dict[str, Any] = {
            "timestamp": self.timestamp,
            "orgs": "".join(f",{org}" for org in self.orgs) + "," if self.orgs else "",
            "name": self.name[:_NAME_LENGTH],
            "reason": self.reason,
            "data": json.dumps(dict(self.data), sort_keys=True, default=str),
        }
        for column, length in _BOUNDED.items():
            value = getattr(self, column)
            row[column] = value[:length] if isinstance(value, str) else value
        return row

    @property
    def subject(self) -> str:
        """What the event was about: ``repo:tag``, ``repo@digest``, else its name."""
        if self.repository is None:
            return self.name
        if self.reference:
            separator = "@" if ":" in self.reference else ":"
            return f"{self.repository}{separator}{self.reference}"
        return self.repository

    @property
    def time_text(self) -> str:
        """The timestamp in RFC 3339, UTC (``2026-11-27T06:00:00.123456Z``)."""
        return self.timestamp.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AuditEvent:
        values = {key: row[key] for key in _COLUMNS if key in row}
        values["orgs"] = tuple(org for org in str(row.get("orgs") or "").split(",") if org)
        values["data"] = json.loads(row.get("data") or "{}")
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """The JSON-lines export shape: every field, timestamps in RFC 3339 UTC."""
        body: dict[str, Any] = {"id": self.id, "timestamp": self.time_text}
        for key in _COLUMNS:
            if key not in ("id", "timestamp"):
                body[key] = getattr(self, key)
        body["orgs"] = list(self.orgs)
        body["data"] = dict(self.data)
        return body


_NAME_LENGTH = 255
# Columns of a bounded length (db.models.AuditRecord), for ``to_row``.
_BOUNDED = {
    "action": 64,
    "actor": 255,
    "account": 255,
    "repository": 255,
    "reference": 255,
    "digest": 160,
    "category": 32,
    "decision": 16,
    "outcome": 32,
    "client_ip": 45,
    "user_agent": 255,
}
_COLUMNS = tuple(name for name in AuditEvent.__dataclass_fields__ if name not in ("orgs", "data"))


def login(user: str, *, signed_in: bool, outcome: str, reason: str, via: str) -> AuditEvent:
    """A sign-in attempt with credentials, from where the current request comes.

    ``user`` is the name given, so a failed attempt shows which account was tried;
    ``via`` says where: ``registry`` (a token request: docker/podman login and pulls),
    ``api`` or ``console``.
    """
    origin = current_origin()
    if looks_like_access_token(user):  # a secret typed as the name must not be kept
        user = REDACTED_NAME
    return AuditEvent(
        LOGIN,
        actor=user,
        name=user,
        decision=ALLOWED if signed_in else DENIED,
        outcome=outcome,
        reason=reason,
        client_ip=origin.client_ip,
        user_agent=origin.user_agent,
        data={"via": via},
    )


def signed_in_event(name: str, user: str | None, *, via: str) -> AuditEvent:
    """A password or token sign-in of ``name`` that gave ``user`` (``None``: refused)."""
    if user is None:
        return login(
            name, signed_in=False, outcome="failure", reason=INCORRECT_CREDENTIALS, via=via
        )
    return login(user, signed_in=True, outcome="success", reason="", via=via)


def change(
    action: str,
    *,
    account: str | None,
    name: str,
    before: Any = None,
    after: Any = None,
    **data: Any,
) -> AuditEvent:
    """A change made by whoever acts now (``context``), with its before and after."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    origin = current_origin()
    # A change to one repository (its visibility, a team's permission on it, its place on
    # an allowlist) names it in the repository column too, so a filter on it finds them.
    about_repository = action.startswith(("repo.", "org.allowlist.")) and "/" in name
    return AuditEvent(
        action,
        actor=current_actor(),
        account=account,
        name=name,
        repository=name if about_repository else None,
        client_ip=origin.client_ip,
        user_agent=origin.user_agent,
        data={"before": before, "after": after, **data},
    )
