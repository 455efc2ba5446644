"""A real CNCF distribution registry (``docker-registry serve``) as a test upstream.

It listens on a free 127.0.0.1 port, stores content on the filesystem under a temporary
directory, allows deletes, and can require Basic (htpasswd) or Bearer (token) auth::

    with UpstreamRegistry(tmp_path) as upstream:
        push_image(upstream.url, "library/alpine", "3", image)

``htpasswd_auth`` and ``token_auth`` build the ``auth`` config section. With
``proxy_remote_url`` it is a pull-through cache of that registry (distribution's
``proxy:`` section), the peer the benchmark measures imagegate against.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from email.message import Message
from pathlib import Path
from typing import Any

from tests.support.process import ServerProcess

REGISTRY_BINARY = "docker-registry"


def htpasswd_auth(
    directory: Path, users: Mapping[str, str], realm: str = "upstream"
) -> dict[str, Any]:
    """Write a bcrypt htpasswd file (distribution accepts only bcrypt) and return the section."""
    import bcrypt

    path = directory / "htpasswd"
    lines = [
        f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}"
        for user, password in users.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return {"htpasswd": {"realm": realm, "path": str(path)}}


def token_auth(realm: str, service: str, issuer: str, rootcertbundle: Path) -> dict[str, Any]:
    """The ``auth.token`` section: distribution verifies JWTs signed by the bundle's keys."""
    return {
        "token": {
            "realm": realm,
            "service": service,
            "issuer": issuer,
            "rootcertbundle": str(rootcertbundle),
        }
    }


class UpstreamRegistry(ServerProcess):
    """One ``docker-registry`` process; ``start``/``stop`` or use it as a context manager.

    Content on disk survives a restart.
    """

    name = REGISTRY_BINARY
    ready_path = "/v2/"
    ready_statuses = frozenset({200, 401})  # 401: auth is configured, and it answers

    def __init__(
        self,
        directory: Path,
        auth: Mapping[str, Any] | None = None,
        extra_config: Mapping[str, Any] | None = None,
        *,
        proxy_remote_url: str | None = None,
        name: str = "upstream",
    ) -> None:
        """``extra_config``: more top-level config sections (say, ``validation``).

        ``proxy_remote_url``: serve as a pull-through cache of that registry. ``name``
        prefixes the log, config and storage under ``directory``, so several registries
        can share it.
        """
        super().__init__(directory, f"{name}.log")
        self.auth = dict(auth) if auth else None
        self.extra_config = dict(extra_config or {})
        self.proxy_remote_url = proxy_remote_url
        self.storage_dir = directory / f"{name}-storage"
        self.config_path = directory / f"{name}-config.yml"

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage_dir)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": self.host, "secret": "imagegate-tests"},
        }
        if self.auth:
            config["auth"] = self.auth
        if self.proxy_remote_url:
            config["proxy"] = {"remoteurl": self.proxy_remote_url}
        return {**config, **self.extra_config}

    def prepare(self) -> None:
        if shutil.which(REGISTRY_BINARY) is None:
            raise RuntimeError(
                f"{REGISTRY_BINARY} is not installed (Debian package docker-registry)"
            )
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        # JSON is YAML, so no YAML writer is needed.
        self.config_path.write_text(json.dumps(self.config()))

    def command(self) -> list[str]:
        return [REGISTRY_BINARY, "serve", str(self.config_path)]


def _challenge_params(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="r",service="s"`` -> ("bearer", {"realm": "r", "service": "s"})."""
    scheme, _, rest = header.partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


class RegistryHttp:
    """A tiny synchronous distribution client for one repository, for seeding test registries.

    It answers one 401 challenge per request: Basic with ``credentials``, or Bearer by
    fetching a token (with ``credentials`` as Basic auth when given) for pull and push.
    """

    def __init__(
        self, url: str, repository: str, credentials: tuple[str, str] | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.repository = repository
        self.credentials = credentials
        self._authorization: str | None = None

    def _basic(self) -> str:
        assert self.credentials is not None
        user, password = self.credentials
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def _authorize(self, challenge: str) -> None:
        scheme, params = _challenge_params(challenge)
        if scheme == "basic":
            if self.credentials is None:
                raise RuntimeError(f"{self.url} asks for Basic auth and no credentials were given")
            self._authorization = self._basic()
            return
        query = urllib.parse.urlencode(
            {
                "service": params.get("service", ""),
                "scope": f"repository:{self.repository}:pull,push",
            }
        )
        request = urllib.request.Request(f"{params['realm']}?{query}")
        if self.credentials is not None:
            request.add_header("Authorization", self._basic())
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
        self._authorization = "Bearer " + (body.get("token") or body["access_token"])

    def request(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Message, bytes]:
        """Send once, answer a 401 challenge, send again; errors come back as statuses."""
        for attempt in range(2):
            request = urllib.request.Request(url, data=body, method=method)
            for name, value in (headers or {}).items():
                request.add_header(name, value)
            if self._authorization:
                request.add_header("Authorization", self._authorization)
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status, response.headers, response.read()
            except urllib.error.HTTPError as exc:
                challenge = exc.headers.get("WWW-Authenticate")
                if exc.code == 401 and challenge and attempt == 0:
                    self._authorize(challenge)
                    continue
                return exc.code, exc.headers, exc.read()
        raise AssertionError("unreachable")

    def _expect(self, what: str, answer: tuple[int, Message, bytes], *statuses: int) -> Message:
        status, headers, body = answer
        if status not in statuses:
            raise RuntimeError(f"{what}: HTTP {status}: {body[:500]!r}")
        return headers

    def upload_blob(self, digest: str, data: bytes) -> None:
        """Monolithic upload (POST, then PUT with the bytes), skipped if the blob exists."""
        base = f"{self.url}/v2/{self.repository}/blobs"
        if self.request("HEAD", f"{base}/{digest}")[0] == 200:
            return
        started = self._expect(
            f"start upload of {digest}", self.request("POST", f"{base}/uploads/", b""), 202
        )
        location = urllib.parse.urljoin(self.url, started["Location"])
        separator = "&" if "?" in location else "?"
        self._expect(
            f"upload {digest}",
            self.request(
                "PUT",
                f"{location}{separator}digest={urllib.parse.quote(digest)}",
                data,
                {"Content-Type": "application/octet-stream"},
            ),
            201,
        )

    def put_manifest(self, reference: str, manifest: bytes, media_type: str) -> None:
        url = f"{self.url}/v2/{self.repository}/manifests/{reference}"
        answer = self.request("PUT", url, manifest, {"Content-Type": media_type})
        self._expect(f"put manifest {self.repository}:{reference}", answer, 201)

    def delete_manifest(self, digest: str) -> None:
        url = f"{self.url}/v2/{self.repository}/manifests/{digest}"
        self._expect(f"delete {self.repository}@{digest}", self.request("DELETE", url), 202)
