"""A Docker token server for one account, so a real distribution registry can require
Bearer auth (``auth.token``). Tokens are signed by imagegate's own token signer, which is
also a check that distribution accepts its ``kid`` and certificate.

The account gets whatever repository actions it asks for; anonymous requests get tokens
granting nothing (the registry then refuses them); wrong passwords get 401.
"""

from __future__ import annotations

import base64
import secrets
import threading
import urllib.parse
from email.message import Message
from pathlib import Path
from typing import Any

from imagegate.auth.tokens import SigningKey, TokenIssuer
from imagegate.core.scopes import parse_scopes
from tests.support.jsonserver import JSONServer
from tests.support.upstream import token_auth

ISSUER = "imagegate-test-token-issuer"
SERVICE = "upstream-registry"


class TokenServer(JSONServer):
    """``GET /auth?service=...&scope=...`` with optional Basic auth."""

    def __init__(self, directory: Path, username: str, password: str) -> None:
        super().__init__()
        self.username = username
        self.password = password
        self.requests: list[tuple[str | None, list[str]]] = []  # (user, scopes) asked for
        self._lock = threading.Lock()
        key = SigningKey.generate()
        self._issuer = TokenIssuer(key, ISSUER, ttl_seconds=300)
        self.certificate_path = directory / "token-issuer.pem"
        self.certificate_path.write_bytes(key.certificate_pem(ISSUER))

    @property
    def realm(self) -> str:
        return f"{self.url}/auth"

    def registry_auth(self) -> dict[str, Any]:
        """The ``auth`` section of the registry's config."""
        return token_auth(self.realm, SERVICE, ISSUER, self.certificate_path)

    def _user(self, header: str | None) -> str | None:
        """The account for good credentials, ``None`` for none, ``""`` for wrong ones."""
        if not header or not header.lower().startswith("basic "):
            return None
        decoded = base64.b64decode(header[6:].strip()).decode(errors="replace")
        user, _, password = decoded.partition(":")
        if user == self.username and secrets.compare_digest(password, self.password):
            return user
        return ""

    def answer(self, path: str, headers: Message) -> tuple[int, dict[str, Any]]:
        route, _, query = path.partition("?")
        if route != "/auth":
            return 404, {"details": "not found"}
        params = urllib.parse.parse_qs(query)
        scopes = [s for value in params.get("scope", []) for s in value.split(" ") if s]
        user = self._user(headers.get("Authorization"))
        with self._lock:
            self.requests.append((user, scopes))
        if user == "":
            return 401, {"details": "incorrect username or password"}
        granted = parse_scopes(scopes) if user else []
        service = params.get("service", [SERVICE])[0]
        token = self._issuer.issue(user or "", service, granted)
        return 200, {"token": token.token, "access_token": token.token, "expires_in": 300}
