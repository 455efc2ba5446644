"""Enforce sign-in: Docker Desktop's ``registry.json`` (``{"allowedOrgs": [...]}``), read
stricter than Desktop reads it, and the messages a refused client shows.

Desktop silently ignores a file it cannot use (a byte order mark, a misspelt key, an
upper-case name that signs everybody out: REFERENCE.md section 2). Here every such
mistake is an error naming exactly what is wrong, so the gateway can fail closed and
``imagegate enforce-sign-in check`` can tell the admin what to fix.
"""

from __future__ import annotations

import codecs
import enum
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from imagegate.core.inputs import JsonInvalid, load_json
from imagegate.core.names import validate_account_name

ALLOWED_ORGS_KEY = "allowedOrgs"
_EXAMPLE = f'{{"{ALLOWED_ORGS_KEY}": ["myorg"]}}'
_SHAPE = f"a registry.json is one object such as {_EXAMPLE}"
_BOMS = (
    (codecs.BOM_UTF8, "a UTF-8 byte order mark"),
    (codecs.BOM_UTF16_LE, "a UTF-16 byte order mark"),
    (codecs.BOM_UTF16_BE, "a UTF-16 byte order mark"),
)


class InvalidRegistryJson(ValueError):
    """The file cannot be enforced; the message says what is wrong and how to fix it."""


def parse_registry_json(data: bytes) -> tuple[str, ...]:
    """The allowed organizations in a registry.json's bytes, in file order.

    Raises ``InvalidRegistryJson`` unless the file is UTF-8 without a byte order mark,
    one JSON object whose only key is ``allowedOrgs``, holding a non-empty list of
    distinct, lowercase organization names. Whether the organizations exist is for the
    caller to check (``missing_orgs``).
    """
    for bom, what in _BOMS:
        if data.startswith(bom):
            raise InvalidRegistryJson(
                f"the file starts with {what}; Docker Desktop ignores such a file. "
                "Save it as UTF-8 without a BOM"
            )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRegistryJson(
            f"the file is not UTF-8 (invalid byte at offset {exc.start}); save it as UTF-8"
        ) from None
    try:
        document = load_json(text)
    except JsonInvalid as exc:
        raise InvalidRegistryJson(f"the file is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidRegistryJson(f"the file must hold one JSON object such as {_EXAMPLE}")
    unknown = sorted(key for key in document if key != ALLOWED_ORGS_KEY)
    if unknown:
        hint = ""
        if any(key.lower() == ALLOWED_ORGS_KEY.lower() for key in unknown):
            hint = f" (keys are case-sensitive: write {ALLOWED_ORGS_KEY!r})"
        raise InvalidRegistryJson(
            f"unknown key {unknown[0]!r}{hint}; the only key is {ALLOWED_ORGS_KEY!r}"
        )
    if ALLOWED_ORGS_KEY not in document:
        raise InvalidRegistryJson(f"the key {ALLOWED_ORGS_KEY!r} is missing")
    orgs = document[ALLOWED_ORGS_KEY]
    if not isinstance(orgs, list):
        raise InvalidRegistryJson(
            f"{ALLOWED_ORGS_KEY!r} must be a list of organization names, not {type(orgs).__name__}"
        )
    return validate_orgs(orgs)


def validate_orgs(orgs: Iterable[object]) -> tuple[str, ...]:
    """Check a list of organization names as they would be written to registry.json."""
    names: list[str] = []
    for org in orgs:
        if not isinstance(org, str):
            raise InvalidRegistryJson(f"{org!r} is not an organization name (a string)")
        if org != org.lower():
            raise InvalidRegistryJson(
                f"{org!r} is not lowercase; matching is case-sensitive, so it would sign "
                f"everybody out: write {org.lower()!r}"
            )
        if org != org.strip() or not org:
            raise InvalidRegistryJson(f"{org!r} has spaces around it or is empty")
        try:
            validate_account_name(org, "organization name")
        except ValueError as exc:
            raise InvalidRegistryJson(str(exc)) from None
        if org in names:
            raise InvalidRegistryJson(f"{org!r} is listed twice")
        names.append(org)
    if not names:
        raise InvalidRegistryJson(
            f"{ALLOWED_ORGS_KEY!r} is empty; list at least one organization "
            "(to stop enforcing sign-in, remove the file)"
        )
    return tuple(names)


def missing_orgs_problem(missing: Iterable[str]) -> str | None:
    """The problem to report when listed organizations do not exist here, if any."""
    names = sorted(missing)
    if not names:
        return None
    listed = ", ".join(repr(name) for name in names)
    noun = "organization" if len(names) == 1 else "organizations"
    return f"{noun} {listed} not found on this gateway; create it or correct the name"


@dataclass(frozen=True)
class SignInRequirement:
    """What the gateway enforces now.

    ``allowed_orgs`` empty and ``problem`` unset: sign-in is not enforced. ``problem``
    set: the configured file cannot be enforced, and every request is refused with it
    until an admin fixes the file (fail closed).
    """

    allowed_orgs: tuple[str, ...] = ()
    problem: str | None = None
    source: str = ""  # the file, for messages and logs

    @property
    def enforced(self) -> bool:
        return bool(self.allowed_orgs) or self.problem is not None


NOT_ENFORCED = SignInRequirement()


def membership_message(allowed_orgs: Iterable[str]) -> str:
    """Docker Desktop's own words for a signed-in user outside the allowed organizations."""
    return (
        f"You must be a member of the [{' '.join(allowed_orgs)}] organization. "
        "Log in with a different account, or contact your organization owner to add "
        "your account."
    )


def sign_in_required_message(allowed_orgs: Iterable[str]) -> str:
    """What an anonymous client is told."""
    orgs = " ".join(allowed_orgs)
    return (
        f"sign-in required: this registry only serves members of the [{orgs}] "
        "organization; log in with your account (docker login / podman login)"
    )


def unenforceable_message() -> str:
    """What every client is told while the file is invalid (the reason goes to the logs)."""
    return (
        "sign-in enforcement is misconfigured on this registry (its registry.json is "
        "invalid), so every request is refused; ask your administrator to run "
        "'imagegate enforce-sign-in check'"
    )


class Refusal(enum.StrEnum):
    """Why enforce sign-in turns a client away."""

    UNENFORCEABLE = "sign_in_unenforceable"  # the file is invalid: everybody, fail closed
    SIGN_IN_REQUIRED = "sign_in_required"  # anonymous
    NOT_ALLOWED_ORG = "not_in_allowed_orgs"  # signed in, a member of none of the orgs


@dataclass(frozen=True)
class SignInRefusal:
    kind: Refusal
    message: str  # what the client shows
    reason: str  # what the logs and the audit trail keep


def sign_in_refusal(
    requirement: SignInRequirement, username: str | None, member_of: Collection[str]
) -> SignInRefusal | None:
    """Whether ``username`` (``None``: anonymous), a member of the organizations
    ``member_of``, is turned away by ``requirement``; ``None`` lets them through to the
    image access decision."""
    if requirement.problem is not None:
        reason = f"{requirement.source}: {requirement.problem}"
        return SignInRefusal(Refusal.UNENFORCEABLE, unenforceable_message(), reason)
    orgs = requirement.allowed_orgs
    if not orgs:
        return None
    if username is None:
        message = sign_in_required_message(orgs)
        return SignInRefusal(Refusal.SIGN_IN_REQUIRED, message, message)
    if any(org in member_of for org in orgs):
        return None
    message = membership_message(orgs)
    return SignInRefusal(Refusal.NOT_ALLOWED_ORG, message, message)
