"""An aiohttp client for the upstream registry: what a pull needs, streamed.

One ``ClientSession`` (created on first use, inside the running loop) serves every
request. Redirects are followed by hand so that ``Authorization`` never leaves the
upstream's origin (Docker Hub redirects blob GETs to a CDN). Every failure is translated
here (see ``errors``); callers see only registry errors.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from imagegate.core.digests import Digest
from imagegate.core.errors import (
    BlobUnknown,
    DigestInvalid,
    ManifestUnknown,
    NameUnknown,
    RegistryError,
    UpstreamError,
)
from imagegate.core.inputs import load_json
from imagegate.core.names import RepositoryName
from imagegate.proxy.interfaces import CHUNK_SIZE, TagPage
from imagegate.upstream.auth import UpstreamAuth
from imagegate.upstream.errors import UpstreamUnreachable, status_error
from imagegate.upstream.streams import UpstreamBlob, media_type_of, read_limited

logger = logging.getLogger("imagegate.upstream")

MANIFEST_LIMIT = 4 * 1024 * 1024  # the limit distribution and Docker Hub apply
ERROR_BODY_LIMIT = 64 * 1024
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


class _NoReferrersAPI(RegistryError):
    """The upstream 404s the referrers endpoint (distribution 2.8 has none)."""


@dataclass(frozen=True)
class ManifestHead:
    """What a manifest HEAD told us: the digest may be absent on some registries."""

    digest: Digest | None
    media_type: str
    size: int | None
    unchanged: bool = False  # a 304: the digest asked about (If-None-Match) still holds


@dataclass(frozen=True)
class UpstreamManifest:
    body: bytes
    media_type: str
    digest: Digest | None  # the upstream's Docker-Content-Digest, when it sent one


def _digest_header(headers: Mapping[str, str]) -> Digest | None:
    value = headers.get("Docker-Content-Digest")
    if not value:
        return None
    try:
        return Digest.parse(value.strip())
    except DigestInvalid:
        return None


def _manifest_name(repository: RepositoryName, reference: str) -> str:
    separator = "@" if ":" in reference else ":"
    return f"manifest {repository}{separator}{reference}"


def _scope(repository: RepositoryName) -> str:
    return f"repository:{repository.full}:pull"


class UpstreamClient:
    """The upstream registry at ``url``, anonymous or with ``credentials``."""

    def __init__(
        self,
        url: str,
        credentials: tuple[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._origin = URL(self.url).origin()
        self._auth = UpstreamAuth(self.url, credentials)
        # No total timeout: a large blob may stream for long; each connect and read may not.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=timeout, sock_read=timeout
        )
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                auto_decompress=False,  # digests are over the exact bytes
                headers={"User-Agent": "imagegate"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _send(
        self,
        method: str,
        path: str,
        *,
        repository: RepositoryName | None,
        what: str,
        not_found: type[RegistryError],
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """A 2xx response, or a 304 to a conditional request (the caller releases it),
        after auth and redirects, or raise."""
        session = self._client()
        scope = _scope(repository) if repository is not None else None
        url = URL(self.url + path)
        authorization = self._auth.authorization(scope)
        challenged = False
        for _ in range(MAX_REDIRECTS + 2):
            same_origin = url.origin() == self._origin
            request_headers = dict(headers or {})
            if authorization and same_origin:
                request_headers["Authorization"] = authorization
            try:
                response = await session.request(
                    method, url, headers=request_headers, params=params, allow_redirects=False
                )
            except _NETWORK_ERRORS as exc:
                raise UpstreamUnreachable(
                    f"upstream {self.url} is unreachable: {exc or type(exc).__name__}",
                    {"upstream": self.url},
                ) from exc
            if response.status == 401 and same_origin and not challenged:
                challenged = True
                challenge = response.headers.get("WWW-Authenticate")
                body = await self._error_body(response)
                answer = await self._auth.answer(session, challenge, scope, authorization)
                if answer is None:
                    raise status_error(self.url, 401, body, repository, what, not_found)
                authorization = answer
                continue
            location = response.headers.get("Location")
            if response.status in _REDIRECTS and location:
                response.release()
                target = URL(location, encoded=True)
                url = target if target.is_absolute() else response.url.join(target)
                params = None  # the Location carries its own query
                continue
            # A 304 answers only a conditional request: the caller knows what it means.
            if response.status < 300 or (
                response.status == 304 and "If-None-Match" in request_headers
            ):
                logger.info(
                    "upstream %s %s",
                    method,
                    what,
                    extra={
                        "upstream": self.url,
                        "method": method,
                        "repository": str(repository) if repository else None,
                        "what": what,
                        "status": response.status,
                        "redirected": url.origin() != self._origin,
                    },
                )
                return response
            body = await self._error_body(response)
            raise status_error(self.url, response.status, body, repository, what, not_found)
        raise UpstreamError(f"upstream {self.url} redirected too many times for {what}")

    @staticmethod
    async def _error_body(response: aiohttp.ClientResponse) -> bytes:
        """The start of an error answer (for its message), releasing the response."""
        try:
            return await read_limited(response, ERROR_BODY_LIMIT, truncate=True)
        except _NETWORK_ERRORS:
            return b""
        finally:
            response.release()

    async def head_manifest(
        self,
        repository: RepositoryName,
        reference: str,
        accept: Sequence[str],
        known: Digest | None = None,
    ) -> ManifestHead:
        """Resolve ``reference`` without fetching (HEADs do not count against Hub's limits).

        With ``known``, ask conditionally (``If-None-Match``, the manifest's ETag): an
        upstream that still resolves to it may answer 304, ``unchanged``.
        """
        headers = {"Accept": ", ".join(accept)}
        if known is not None:
            headers["If-None-Match"] = f'"{known}"'
        response = await self._send(
            "HEAD",
            f"/v2/{repository.full}/manifests/{reference}",
            repository=repository,
            what=_manifest_name(repository, reference),
            not_found=ManifestUnknown,
            headers=headers,
        )
        response.release()
        if response.status == 304:
            return ManifestHead(known, "", None, unchanged=True)
        return ManifestHead(
            _digest_header(response.headers), media_type_of(response), response.content_length
        )

    async def get_manifest(
        self, repository: RepositoryName, reference: str, accept: Sequence[str]
    ) -> UpstreamManifest:
        """The manifest's exact bytes and media type (at most 4 MiB)."""
        response = await self._send(
            "GET",
            f"/v2/{repository.full}/manifests/{reference}",
            repository=repository,
            what=_manifest_name(repository, reference),
            not_found=ManifestUnknown,
            headers={"Accept": ", ".join(accept)},
        )
        try:
            body = await read_limited(response, MANIFEST_LIMIT)
        except _NETWORK_ERRORS as exc:
            raise UpstreamUnreachable(
                f"upstream {self.url} broke off the {_manifest_name(repository, reference)}: {exc}"
            ) from exc
        finally:
            response.release()
        return UpstreamManifest(
            body, media_type_of(response, body), _digest_header(response.headers)
        )

    async def head_blob(self, repository: RepositoryName, digest: Digest) -> int | None:
        """The blob's size if the upstream serves it for ``repository`` (None if unsaid)."""
        response = await self._send(
            "HEAD",
            f"/v2/{repository.full}/blobs/{digest}",
            repository=repository,
            what=f"blob {repository}@{digest}",
            not_found=BlobUnknown,
        )
        response.release()
        return response.content_length

    async def open_blob(self, repository: RepositoryName, digest: Digest) -> UpstreamBlob:
        """Start streaming a blob; the caller iterates ``chunks()`` or calls ``close()``."""
        response = await self._send(
            "GET",
            f"/v2/{repository.full}/blobs/{digest}",
            repository=repository,
            what=f"blob {repository}@{digest}",
            not_found=BlobUnknown,
        )
        return UpstreamBlob(response, self.url, CHUNK_SIZE)

    async def list_tags(
        self, repository: RepositoryName, n: int | None, last: str | None
    ) -> TagPage:
        """One page of tags, passing ``n`` and ``last`` through and reading ``Link``."""
        params = {"n": str(n)} if n is not None else {}
        if last is not None:
            params["last"] = last
        response = await self._send(
            "GET",
            f"/v2/{repository.full}/tags/list",
            repository=repository,
            what=f"tags of {repository}",
            not_found=NameUnknown,
            params=params,
        )
        try:
            body = await read_limited(response, MANIFEST_LIMIT)
            next_link = response.links.get("next")
            next_url = next_link.get("url") if next_link is not None else None
        except _NETWORK_ERRORS as exc:
            raise UpstreamUnreachable(
                f"upstream {self.url} broke off tags of {repository}"
            ) from exc
        finally:
            response.release()
        tags = _tags_from(self.url, repository, body)
        next_last = URL(str(next_url)).query.get("last") if next_url else None
        return TagPage(repository, tags, next_last)

    async def referrers(
        self, repository: RepositoryName, digest: Digest, artifact_type: str | None
    ) -> tuple[bytes, bool] | None:
        """The upstream's referrers index and whether it filtered; None if it has no API."""
        params = {"artifactType": artifact_type} if artifact_type else None
        try:
            response = await self._send(
                "GET",
                f"/v2/{repository.full}/referrers/{digest}",
                repository=repository,
                what=f"referrers of {repository}@{digest}",
                not_found=_NoReferrersAPI,
                params=params,
            )
        except (_NoReferrersAPI, NameUnknown):
            return None
        try:
            body = await read_limited(response, MANIFEST_LIMIT)
        except _NETWORK_ERRORS as exc:
            raise UpstreamUnreachable(f"upstream {self.url} broke off referrers") from exc
        finally:
            response.release()
        applied = response.headers.get("OCI-Filters-Applied", "")
        return body, "artifactType" in [item.strip() for item in applied.split(",")]


def _tags_from(upstream: str, repository: RepositoryName, body: bytes) -> list[str]:
    try:
        parsed: Any = load_json(body)
        tags = parsed.get("tags") or []
    except (ValueError, AttributeError) as exc:
        raise UpstreamError(
            f"upstream {upstream} sent an unreadable tag list for {repository}"
        ) from exc
    return [str(tag) for tag in tags]
