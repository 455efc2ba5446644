"""A minimal Docker token server, so a real distribution registry can require Bearer auth.

distribution's ``auth.token`` verifies ES256 JWTs against a certificate bundle and finds
the key by a libtrust-style ``kid`` (REFERENCE.md section 3). This issuer signs tokens for
one account, granting whatever repository actions it asks for; anonymous requests and
wrong passwords get tokens granting nothing, which the registry then refuses.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ISSUER = "imagegate-e2e-token-issuer"
SERVICE = "upstream-registry"


def libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """base32 of the first 240 bits of SHA-256 of the DER public key, in 12 groups of 4."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


class TokenIssuer:
    """``GET /auth?service=...&scope=...`` with optional Basic auth, on a free local port."""

    def __init__(self, directory: Path, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self.requests: list[tuple[str | None, list[str]]] = []  # (user, scopes) asked for
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._kid = libtrust_key_id(self._key.public_key())
        self.certificate_path = directory / "token-issuer.pem"
        self.certificate_path.write_bytes(self._certificate())
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def realm(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/auth"

    def registry_auth(self) -> dict[str, Any]:
        """The ``auth`` section of the registry's config."""
        return {
            "token": {
                "realm": self.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(self.certificate_path),
            }
        }

    def _certificate(self) -> bytes:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self._key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM)

    def _authenticated_user(self, header: str | None) -> str | None:
        if not header or not header.lower().startswith("basic "):
            return None
        decoded = base64.b64decode(header[6:].strip()).decode(errors="replace")
        user, _, password = decoded.partition(":")
        if user == self.username and secrets.compare_digest(password, self.password):
            return user
        return ""  # wrong credentials: known to be nobody

    def issue(self, authorization: str | None, query: str) -> tuple[int, dict[str, Any]]:
        params = urllib.parse.parse_qs(query)
        scopes = [s for value in params.get("scope", []) for s in value.split(" ") if s]
        user = self._authenticated_user(authorization)
        self.requests.append((user, scopes))
        if user == "":
            return 401, {"details": "incorrect username or password"}
        access = []
        if user:
            for scope in scopes:
                kind, _, rest = scope.partition(":")
                name, _, actions = rest.rpartition(":")
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user or "",
            "aud": params.get("service", [SERVICE])[0],
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        token = jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self._kid})
        return 200, {"token": token, "access_token": token, "expires_in": 300}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                if path != "/auth":
                    status, body = 404, {"details": "not found"}
                else:
                    status, body = issuer.issue(self.headers.get("Authorization"), query)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def start(self) -> TokenIssuer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="token-issuer", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> TokenIssuer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
