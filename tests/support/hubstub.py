"""A stand-in for Docker Hub's organization API, which the tests cannot reach.

imagegate asks ``GET {IMAGEGATE_HUB_API_URL}/v2/orgs/{namespace}/`` for a namespace's
publisher badge. This server answers that one route from a table set by the test::

    with HubStub({"verifiedco": "verified_publisher", "ossproject": "open_source"}) as hub:
        ...  # IMAGEGATE_HUB_API_URL=hub.url

A namespace missing from the table gets 404, as Hub answers for an unknown namespace.
Every request path is recorded in ``requests``, so a test can see what was asked.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from email.message import Message

from tests.support.jsonserver import JSONServer

_ORG_PATH = re.compile(r"^/v2/orgs/(?P<namespace>[^/?]+)/?(?:\?.*)?$")


class HubStub(JSONServer):
    """Docker Hub's ``/v2/orgs/{namespace}/`` on a free 127.0.0.1 port, in a thread."""

    def __init__(self, badges: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.badges: dict[str, str] = dict(badges or {})
        self.requests: list[str] = []
        self._lock = threading.Lock()

    def set_badge(self, namespace: str, badge: str | None) -> None:
        """Set (or, with ``None``, forget) a namespace's badge."""
        with self._lock:
            if badge is None:
                self.badges.pop(namespace, None)
            else:
                self.badges[namespace] = badge

    def answer(self, path: str, headers: Message) -> tuple[int, dict[str, object]]:
        with self._lock:
            self.requests.append(path)
            match = _ORG_PATH.match(path)
            if match is None:
                return 404, {"message": "page not found"}
            namespace = match["namespace"]
            if namespace not in self.badges:
                return 404, {"message": "Not Found", "errinfo": {"namespace": namespace}}
            return 200, {
                "id": f"stub-{namespace}",
                "orgname": namespace,
                "full_name": namespace,
                "type": "Organization",
                "badge": self.badges[namespace],
            }
