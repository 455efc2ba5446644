"""Who is acting, and from where, for the request or command being served.

Set once at the edge (the request middleware sets the client's address and user agent;
the API, the console and the CLI say who acts) and read where an event is recorded, so
no service signature has to carry them. Context variables follow each request's task.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Origin:
    client_ip: str | None = None
    user_agent: str | None = None


_actor: ContextVar[str | None] = ContextVar("imagegate_audit_actor", default=None)
_NOWHERE = Origin()
_origin: ContextVar[Origin] = ContextVar("imagegate_audit_origin", default=_NOWHERE)


def current_actor() -> str | None:
    """The user (or ``cli:<os user>``) acting now; ``None`` when nobody is known."""
    return _actor.get()


def current_origin() -> Origin:
    return _origin.get()


def set_actor(actor: str | None) -> None:
    """Say who acts for the rest of the current request or command."""
    _actor.set(actor)


def set_origin(origin: Origin) -> None:
    _origin.set(origin)


@contextlib.contextmanager
def acting_as(actor: str | None, origin: Origin | None = None) -> Iterator[None]:
    """Act as ``actor`` (from ``origin``) inside the block, and restore after."""
    actor_token = _actor.set(actor)
    origin_token = _origin.set(origin) if origin is not None else None
    try:
        yield
    finally:
        _actor.reset(actor_token)
        if origin_token is not None:
            _origin.reset(origin_token)
