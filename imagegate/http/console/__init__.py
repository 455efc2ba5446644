"""The web console: server-rendered pages for owners and members (no JavaScript framework)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from imagegate.config import Settings
from imagegate.services import Services


def routes(settings: Settings, services: Services) -> list[BaseRoute]:
    """The console's routes, under ``/console``."""
    return []
