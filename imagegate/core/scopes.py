"""Token scopes (``repository:NAME:pull,push``) as the Docker token spec writes them."""

from __future__ import annotations

from dataclasses import dataclass

from imagegate.core.errors import RegistryError

# Scopes one token request may name. Clients ask for one (a pull) or a few (a push that
# mounts layers from other repositories); every scope makes the token, and every
# request that carries it, larger.
MAX_SCOPES = 50


class TooManyScopes(RegistryError):
    """A token request names more than ``MAX_SCOPES`` scopes."""

    code = "UNSUPPORTED"
    status = 400


@dataclass(frozen=True)
class Scope:
    type: str
    name: str
    actions: frozenset[str]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


def parse_scope(value: str) -> Scope | None:
    """Parse one scope; ``None`` when it is malformed (clients then get no access for it).

    The name may hold ``host:port``: the type ends at the first colon, the actions
    start after the last one, and the name is everything between.
    """
    type_, sep, rest = value.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not type_ or not name:
        return None
    return Scope(type_, name, frozenset(a for a in actions.split(",") if a))


def parse_scopes(values: list[str]) -> list[Scope]:
    """Parse every ``scope`` parameter; a parameter may itself hold space-separated scopes.

    Raises ``TooManyScopes`` beyond ``MAX_SCOPES``, malformed ones included: they are
    counted before anything is parsed.
    """
    items = [item for value in values for item in value.split()]
    if len(items) > MAX_SCOPES:
        raise TooManyScopes(
            f"a token request may name at most {MAX_SCOPES} scopes; this one names "
            f"{len(items)}: ask for the repositories you use now",
            detail={"scopes": len(items), "limit": MAX_SCOPES},
        )
    scopes = []
    for item in items:
        scope = parse_scope(item)
        if scope is not None:
            scopes.append(scope)
    return scopes
