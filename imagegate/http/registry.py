"""The registry API (``/v2/``), pull side.

Routes match from the right, because repository names contain ``/`` (and may even hold
a component called ``manifests``). Every repository-scoped request is authenticated,
checked against the image access policy, and only then served.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from imagegate.core.digests import Digest
from imagegate.core.errors import Denied, NameUnknown, RegistryError, Unauthorized, Unsupported
from imagegate.core.names import RepositoryName, parse_reference, parse_repository
from imagegate.core.policy import Decision, Outcome
from imagegate.http.identity import Identity, RegistryAuthenticator
from imagegate.proxy.interfaces import RegistryContent

logger = logging.getLogger("imagegate.access")

MAX_TAGS_PAGE = 1000
ACCEPT_SPLIT = re.compile(r"\s*,\s*")


class PaginationNumberInvalid(RegistryError):
    code = "PAGINATION_NUMBER_INVALID"
    status = 400


class AccessDecider(Protocol):
    async def decide_pull(self, username: str | None, repository: RepositoryName) -> Decision:
        """The image access decision for one pull request."""
        ...


Handler = Callable[[Request, str, str], Awaitable[Response]]


@dataclass(frozen=True)
class _Route:
    pattern: re.Pattern[str]
    methods: frozenset[str]
    handler_name: str


_ROUTES = (
    _Route(
        re.compile(r"(?P<name>.+)/manifests/(?P<arg>[^/]+)"), frozenset({"GET", "HEAD"}), "manifest"
    ),
    _Route(re.compile(r"(?P<name>.+)/blobs/uploads(?:/(?P<arg>[^/]*))?"), frozenset(), "upload"),
    _Route(re.compile(r"(?P<name>.+)/blobs/(?P<arg>[^/]+)"), frozenset({"GET", "HEAD"}), "blob"),
    _Route(re.compile(r"(?P<name>.+)/tags/list(?P<arg>)"), frozenset({"GET"}), "tags"),
    _Route(re.compile(r"(?P<name>.+)/referrers/(?P<arg>[^/]+)"), frozenset({"GET"}), "referrers"),
)


class RegistryAPI:
    def __init__(
        self, auth: RegistryAuthenticator, access: AccessDecider, content: RegistryContent
    ) -> None:
        self._auth = auth
        self._access = access
        self._content = content

    async def base(self, request: Request) -> Response:
        """``GET /v2/``: 200 with a valid token, else the challenge that starts login."""
        self._auth.identify(request)
        return JSONResponse({})

    async def dispatch(self, request: Request) -> Response:
        path: str = request.path_params["path"]
        if path == "_catalog":
            raise Unsupported("listing the catalog is not supported by this gateway yet")
        for route in _ROUTES:
            match = route.pattern.fullmatch(path)
            if match is None:
                continue
            if request.method not in route.methods:
                raise Unsupported(
                    f"{request.method} is not supported here: this gateway serves pulls only; "
                    "repositories are read-only"
                )
            handler: Handler = getattr(self, "_" + route.handler_name)
            return await handler(request, match["name"], match["arg"] or "")
        raise NameUnknown(f"no registry endpoint at /v2/{path}", detail={"path": path})

    async def _authorize(
        self, request: Request, raw_name: str, kind: str, ref: str
    ) -> RepositoryName:
        repository = parse_repository(raw_name)
        identity = self._auth.require_pull(request, repository, raw_name)
        decision = await self._access.decide_pull(identity.username, repository)
        _log_decision(request, identity, decision, kind, ref)
        if decision.outcome is Outcome.UNAUTHENTICATED:
            raise Unauthorized(decision.message, scope=f"repository:{raw_name}:pull")
        if not decision.allowed:
            raise Denied(
                decision.message, detail={"repository": repository.full, "org": decision.org}
            )
        return repository

    async def _manifest(self, request: Request, raw_name: str, ref: str) -> Response:
        repository = await self._authorize(request, raw_name, "manifest", ref)
        reference = parse_reference(ref)
        manifest = await self._content.get_manifest(repository, reference, _accept(request))
        headers = {
            "Docker-Content-Digest": str(manifest.digest),
            "Content-Length": str(len(manifest.body)),
            "ETag": f'"{manifest.digest}"',
        }
        body = b"" if request.method == "HEAD" else manifest.body
        return Response(body, headers=headers, media_type=manifest.media_type)

    async def _blob(self, request: Request, raw_name: str, ref: str) -> Response:
        repository = await self._authorize(request, raw_name, "blob", ref)
        digest = Digest.parse(ref)
        headers = {
            "Docker-Content-Digest": str(digest),
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "ETag": f'"{digest}"',
            "Cache-Control": "max-age=31536000",
        }
        if request.method == "HEAD":
            size = await self._content.head_blob(repository, digest)
            headers["Content-Length"] = str(size)
            return Response(b"", headers=headers)
        blob = await self._content.open_blob(repository, digest, request.headers.get("range"))
        status = 200
        length = blob.size
        if blob.byte_range is not None:
            status = 206
            length = blob.byte_range.length
            headers["Content-Range"] = (
                f"bytes {blob.byte_range.start}-{blob.byte_range.end}/{blob.byte_range.size}"
            )
        headers["Content-Length"] = str(length)
        return StreamingResponse(blob.chunks, status, headers=headers)

    async def _tags(self, request: Request, raw_name: str, _: str) -> Response:
        repository = await self._authorize(request, raw_name, "tags", "")
        n = _page_size(request.query_params.get("n"))
        last = request.query_params.get("last") or None
        if n == 0:
            return JSONResponse({"name": repository.full, "tags": []})
        page = await self._content.list_tags(repository, n, last)
        headers = {}
        if page.next_last is not None:
            query = f"n={n}&last={quote(page.next_last)}" if n else f"last={quote(page.next_last)}"
            headers["Link"] = f'</v2/{raw_name}/tags/list?{query}>; rel="next"'
        return JSONResponse({"name": repository.full, "tags": page.tags}, headers=headers)

    async def _referrers(self, request: Request, raw_name: str, ref: str) -> Response:
        repository = await self._authorize(request, raw_name, "referrers", ref)
        digest = Digest.parse(ref)
        artifact_type = request.query_params.get("artifactType") or None
        body, filtered = await self._content.referrers(repository, digest, artifact_type)
        headers = {"OCI-Filters-Applied": "artifactType"} if filtered else {}
        return Response(body, headers=headers, media_type="application/vnd.oci.image.index.v1+json")

    async def _upload(self, request: Request, raw_name: str, _: str) -> Response:
        repository = parse_repository(raw_name)
        raise Unsupported(
            f"pushing to {repository.full} is not supported: this gateway serves pulls only",
            detail={"repository": repository.full},
        )


def _accept(request: Request) -> list[str]:
    types = []
    for header in request.headers.getlist("accept"):
        for item in ACCEPT_SPLIT.split(header):
            media_type = item.split(";", 1)[0].strip()
            if media_type and media_type != "*/*":
                types.append(media_type)
    return types


def _page_size(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        n = int(value)
    except ValueError:
        raise PaginationNumberInvalid(f"n={value!r} is not a whole number") from None
    if n < 0:
        raise PaginationNumberInvalid(f"n={value!r} must not be negative")
    return min(n, MAX_TAGS_PAGE)


def _log_decision(
    request: Request, identity: Identity, decision: Decision, kind: str, ref: str
) -> None:
    logger.info(
        "access %s",
        decision.outcome.value,
        extra={
            "event": "access",
            "user": identity.display,
            "repository": decision.repository.full,
            "request": kind,
            "reference": ref,
            "category": decision.category.value,
            "decision": "allowed" if decision.allowed else "denied",
            "outcome": decision.outcome.value,
            "org": decision.org,
            "reason": decision.reason,
            "client": request.client.host if request.client else None,
        },
    )


__all__ = ["RegistryAPI"]
