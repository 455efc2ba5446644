"""The management API, compatible with Docker Hub's (``/v2/users/login``, ``/v2/orgs/...``).

Scripts written for Hub's API work against imagegate by changing the base URL.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from imagegate.config import Settings
from imagegate.services import Services


def routes(settings: Settings, services: Services) -> list[BaseRoute]:
    """The API's routes; they are matched before the registry's ``/v2/`` catch-all."""
    return []
