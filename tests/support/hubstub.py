"""A stand-in for Docker Hub's organization API, which the tests cannot reach.

imagegate asks ``GET {IMAGEGATE_HUB_API_URL}/v2/orgs/{namespace}/`` for a namespace's
publisher badge. This server answers that one route from a table set by the test::

    with HubStub({"verifiedco": "verified_publisher", "ossproject": "open_source"}) as hub:
        ...  # IMAGEGATE_HUB_API_URL=hub.url

A namespace missing from the table gets 404, as Hub answers for an unknown namespace.
Every request path is recorded in ``requests``, so a test can see what was asked.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

_ORG_PATH = re.compile(r"^/v2/orgs/(?P<namespace>[^/?]+)/?(?:\?.*)?$")


class HubStub:
    """Docker Hub's ``/v2/orgs/{namespace}/`` on a free 127.0.0.1 port, in a thread."""

    def __init__(self, badges: Mapping[str, str] | None = None) -> None:
        self.badges: dict[str, str] = dict(badges or {})
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def set_badge(self, namespace: str, badge: str | None) -> None:
        """Set (or, with ``None``, forget) a namespace's badge."""
        with self._lock:
            if badge is None:
                self.badges.pop(namespace, None)
            else:
                self.badges[namespace] = badge

    def _answer(self, path: str) -> tuple[int, dict[str, object]]:
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

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = stub._answer(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # requests are recorded in ``stub.requests``; keep test output quiet

        return Handler

    def start(self) -> HubStub:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="hub-stub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HubStub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
