"""An HTTP client for the OCI distribution API, with the Docker token flow, for tests.

It shows the registry's answers as they are (status, headers, body): nothing is retried
except the one authentication round, redirects are not followed, and bodies go out
exactly as given (``bytes`` with a Content-Length; any other iterable of ``bytes`` with
``Transfer-Encoding: chunked``, as Go clients send manifests and streamed PATCHes)::

    client = OciClient(gateway.url, ("pusher", "pw"))
    answer = client.request("POST", "/v2/conf/repo1/blobs/uploads/")
    assert answer.status == 202, answer.describe()

Tokens: before each request the client asks ``/token`` (the realm of the registry's
challenge) for the scope the request needs: ``pull`` for GET and HEAD, ``pull,push`` for
POST, PATCH and PUT and any request to an upload session, ``pull,push,delete`` for
other DELETEs, plus ``pull`` on ``from`` for a
mount and ``registry:catalog:*`` for the catalog. Tokens are cached per scope until
shortly before they expire. ``authenticate=False`` sends a request with no token at all.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import socket
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.support.images import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Image

Body = bytes | Iterable[bytes] | None
Credentials = tuple[str, str]

_REPOSITORY_PATH = re.compile(r"/v2/(?P<name>.+)/(?:manifests|blobs|tags|referrers)/")
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
OCTET_STREAM = "application/octet-stream"
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to whatever query it already has (kept verbatim)."""
    extra = urllib.parse.urlencode(params)
    return f"{url}{'&' if '?' in url else '?'}{extra}"


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange: what was asked and what the registry answered."""

    method: str
    url: str
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def header_values(self, name: str) -> list[str]:
        return list(self.headers.get_all(name) or [])

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_codes(self) -> list[str]:
        """The ``code`` of each error in a JSON error body ([] when there is none)."""
        try:
            errors = json.loads(self.body).get("errors", [])
        except (ValueError, AttributeError):
            return []
        return [str(error.get("code")) for error in errors if isinstance(error, dict)]

    @property
    def error_messages(self) -> str:
        try:
            errors = json.loads(self.body).get("errors", [])
        except (ValueError, AttributeError):
            return ""
        return " | ".join(str(error.get("message", "")) for error in errors)

    def describe(self) -> str:
        headers = "".join(f"  {name}: {value}\n" for name, value in self.headers.items())
        body = self.body[:1500].decode(errors="replace")
        return f"{self.method} {self.url} -> {self.status}\n{headers}  body: {body}"


@dataclass
class _Token:
    value: str
    expires_at: float


@dataclass
class OciClient:
    """A registry client acting as one user (``credentials``) or anonymously (``None``)."""

    base_url: str
    credentials: Credentials | None = None
    timeout: float = 60.0
    _realm: tuple[str, str] | None = field(default=None, repr=False)
    _tokens: dict[tuple[str, ...], _Token] = field(default_factory=dict, repr=False)

    # -- URLs and scopes ----------------------------------------------------------------

    def url(self, target: str) -> str:
        """An absolute URL for a path, a relative ``Location`` or an absolute one."""
        return urllib.parse.urljoin(self.base_url.rstrip("/") + "/", target)

    @staticmethod
    def scopes_for(method: str, url: str) -> tuple[str, ...]:
        parsed = urllib.parse.urlsplit(url)
        if parsed.path.rstrip("/") == "/v2/_catalog":
            return ("registry:catalog:*",)
        match = _REPOSITORY_PATH.match(parsed.path)
        if match is None:
            return ()
        if "/blobs/uploads" in parsed.path:  # every request of an upload session pushes
            actions = "pull,push"
        else:
            actions = {"GET": "pull", "HEAD": "pull", "DELETE": "pull,push,delete"}.get(
                method, "pull,push"
            )
        scopes = [f"repository:{match['name']}:{actions}"]
        source = urllib.parse.parse_qs(parsed.query).get("from")
        if source:
            scopes.append(f"repository:{source[0]}:pull")
        return tuple(scopes)

    # -- tokens -------------------------------------------------------------------------

    def _basic(self) -> dict[str, str]:
        if self.credentials is None:
            return {}
        user, password = self.credentials
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {encoded}"}

    def _challenge(self) -> tuple[str, str]:
        """``(realm, service)`` from the registry's ``GET /v2/`` challenge; an empty realm
        when the registry asks for no authentication at all."""
        if self._realm is None:
            answer = self._send("GET", self.url("/v2/"), None, {})
            if answer.status == 200:
                self._realm = ("", "")
                return self._realm
            header = answer.header("WWW-Authenticate") or ""
            params = dict(_CHALLENGE_PARAM.findall(header))
            if answer.status != 401 or "realm" not in params:
                raise AssertionError(f"expected a Bearer challenge on /v2/\n{answer.describe()}")
            self._realm = (params["realm"], params.get("service", ""))
        return self._realm

    def token(self, scopes: tuple[str, ...]) -> str:
        """A token for ``scopes`` (cached until 10 s before it expires)."""
        cached = self._tokens.get(scopes)
        if cached is not None and cached.expires_at > time.monotonic():
            return cached.value
        realm, service = self._challenge()
        if not realm:
            return ""
        query = urllib.parse.urlencode([("service", service)] + [("scope", s) for s in scopes])
        answer = self._send("GET", f"{realm}?{query}", None, self._basic())
        if answer.status != 200:
            raise AssertionError(f"token request refused\n{answer.describe()}")
        body = answer.json()
        value = str(body.get("token") or body["access_token"])
        lifetime = float(body.get("expires_in", 60))
        self._tokens[scopes] = _Token(value, time.monotonic() + max(lifetime - 10, 1))
        return value

    # -- requests -----------------------------------------------------------------------

    def request(
        self,
        method: str,
        target: str,
        body: Body = None,
        headers: Mapping[str, str] | None = None,
        *,
        authenticate: bool = True,
    ) -> Answer:
        url = self.url(target)
        all_headers = dict(headers or {})
        token = self.token(self.scopes_for(method, url)) if authenticate else ""
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        return self._send(method, url, body, all_headers)

    def _send(self, method: str, url: str, body: Body, headers: Mapping[str, str]) -> Answer:
        parsed = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection(
            parsed.hostname or "127.0.0.1", parsed.port or 80, timeout=self.timeout
        )
        path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
        try:
            connection.request(method, path, body=body, headers=dict(headers))
            response = connection.getresponse()
            data = response.read()
            return Answer(method, url, response.status, response.headers, data)
        finally:
            connection.close()

    # -- conveniences -------------------------------------------------------------------

    def get(self, target: str, headers: Mapping[str, str] | None = None) -> Answer:
        return self.request("GET", target, headers=headers)

    def head(self, target: str, headers: Mapping[str, str] | None = None) -> Answer:
        return self.request("HEAD", target, headers=headers)

    def delete(self, target: str) -> Answer:
        return self.request("DELETE", target)


def expect(answer: Answer, *statuses: int) -> Answer:
    """``answer`` if its status is one of ``statuses``; else an AssertionError showing it."""
    if answer.status not in statuses:
        raise AssertionError(
            f"expected HTTP {' or '.join(map(str, statuses))}\n{answer.describe()}"
        )
    return answer


def location(answer: Answer) -> str:
    value = answer.header("Location")
    if not value:
        raise AssertionError(f"no Location header\n{answer.describe()}")
    return value


# -- pushing, one upload method each ---------------------------------------------------


def start_upload(client: OciClient, repository: str) -> str:
    """POST an empty upload session; its ``Location``."""
    answer = client.request(
        "POST", f"/v2/{repository}/blobs/uploads/", b"", {"Content-Length": "0"}
    )
    return location(expect(answer, 202))


def upload_post_put(
    client: OciClient, repository: str, data: bytes, digest: str | None = None
) -> Answer:
    """POST, then PUT ``<loc>?digest=`` with the whole blob."""
    session = start_upload(client, repository)
    return client.request(
        "PUT",
        with_query(session, digest=digest or digest_of(data)),
        data,
        {"Content-Type": OCTET_STREAM},
    )


def upload_single_post(
    client: OciClient, repository: str, data: bytes, digest: str | None = None
) -> Answer:
    """``POST ?digest=`` with the blob as the body (monolithic in one request)."""
    url = with_query(f"/v2/{repository}/blobs/uploads/", digest=digest or digest_of(data))
    return client.request("POST", url, data, {"Content-Type": OCTET_STREAM})


def upload_chunked(
    client: OciClient,
    repository: str,
    data: bytes,
    chunk_size: int,
    digest: str | None = None,
    *,
    last_in_put: bool = False,
) -> Answer:
    """POST, PATCH each chunk with ``Content-Range`` (following each new ``Location``),
    then PUT ``?digest=`` (carrying the last chunk when ``last_in_put``)."""
    session = start_upload(client, repository)
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] or [b""]
    final = chunks.pop() if last_in_put else b""
    offset = 0
    for chunk in chunks:
        answer = expect(patch_chunk(client, session, chunk, offset), 202)
        session = location(answer)
        offset += len(chunk)
    headers = {"Content-Type": OCTET_STREAM}
    if final:
        headers["Content-Range"] = f"{offset}-{offset + len(final) - 1}"
    return client.request(
        "PUT", with_query(session, digest=digest or digest_of(data)), final, headers
    )


def patch_chunk(client: OciClient, session: str, chunk: bytes, start: int) -> Answer:
    return client.request(
        "PATCH",
        session,
        chunk,
        {"Content-Type": OCTET_STREAM, "Content-Range": f"{start}-{start + len(chunk) - 1}"},
    )


def upload_stream(
    client: OciClient, repository: str, data: bytes, digest: str | None = None
) -> Answer:
    """POST, one PATCH with the whole blob (chunked transfer encoding, no Content-Range),
    then an empty PUT ``?digest=``."""
    session = start_upload(client, repository)
    pieces = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    answer = expect(
        client.request("PATCH", session, iter(pieces), {"Content-Type": OCTET_STREAM}), 202
    )
    return client.request(
        "PUT", with_query(location(answer), digest=digest or digest_of(data)), b""
    )


def push_blob(client: OciClient, repository: str, data: bytes) -> str:
    """Push ``data`` (POST then PUT); its digest."""
    expect(upload_post_put(client, repository, data), 201)
    return digest_of(data)


def put_manifest(
    client: OciClient, repository: str, reference: str, manifest: bytes, media_type: str
) -> Answer:
    return client.request(
        "PUT", f"/v2/{repository}/manifests/{reference}", manifest, {"Content-Type": media_type}
    )


def get_manifest(client: OciClient, repository: str, reference: str, method: str = "GET") -> Answer:
    """A manifest GET (or HEAD) accepting every manifest and index type."""
    url = f"/v2/{repository}/manifests/{reference}"
    return client.request(method, url, headers={"Accept": MANIFEST_ACCEPT})


def push_image(client: OciClient, repository: str, tag: str | None, image: Image) -> str:
    """Blobs, child manifests by digest, then the manifest under ``tag`` (or by digest)."""
    for data in image.blobs.values():
        if client.head(f"/v2/{repository}/blobs/{digest_of(data)}").status != 200:
            push_blob(client, repository, data)
    for child in image.children:
        expect(
            put_manifest(client, repository, child.digest, child.manifest, child.media_type), 201
        )
    reference = tag or image.digest
    expect(put_manifest(client, repository, reference, image.manifest, image.media_type), 201)
    return image.digest


def raw_request(
    client: OciClient, method: str, target: str, headers: Mapping[str, str], content_length: int
) -> socket.socket:
    """Open a connection and send only the request line and headers (with a token).

    The caller sends as much of the promised ``content_length`` bytes as it likes, slowly
    or not at all, and closes the socket: a dropped connection, or a request in flight
    while the server is killed.
    """
    url = client.url(target)
    parsed = urllib.parse.urlsplit(url)
    path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    token = client.token(client.scopes_for(method, url))
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {parsed.netloc}",
        *([f"Authorization: Bearer {token}"] if token else []),
        f"Content-Length: {content_length}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    sock = socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 80), 30)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock
