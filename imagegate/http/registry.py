"""The registry API (``/v2/``): routing, and the read side.

Routes match from the right, because repository names contain ``/`` (and may even hold
a component called ``manifests``). Every repository-scoped request is authorized first
(``authorize``); reads of a hosted repository are served from local storage, all other
reads from the pull-through cache; writes go to ``push``. The catalog names no
repository, so enforce sign-in is checked for it here.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from imagegate.core.categories import Category
from imagegate.core.digests import Digest
from imagegate.core.errors import (
    BlobUnknown,
    Denied,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    RegistryError,
    Unauthorized,
    Unavailable,
    Unsupported,
)
from imagegate.core.inputs import first_text_problem, text_problem
from imagegate.core.names import RepositoryName, parse_reference
from imagegate.core.policy import Decision
from imagegate.core.signin import Refusal, SignInRefusal
from imagegate.hosted.interfaces import HostedRegistry
from imagegate.http.authorize import Authorizer
from imagegate.http.push import PushAPI
from imagegate.http.zerocopy import BlobResponse
from imagegate.proxy.interfaces import RegistryContent
from imagegate.proxy.unmirrored import Unmirrored

MAX_PAGE = 1000
_UNMIRRORED = Unmirrored()
ACCEPT_SPLIT = re.compile(r"\s*,\s*")


class PaginationNumberInvalid(RegistryError):
    code = "PAGINATION_NUMBER_INVALID"
    status = 400


class QueryInvalid(RegistryError):
    """A query parameter that is not text (a NUL character): no name or tag can match it."""

    code = "UNSUPPORTED"
    status = 400


class Catalog(Protocol):
    async def readable(
        self, username: str | None, n: int | None = None, last: str | None = None
    ) -> list[str]:
        """Hosted repositories the caller may read, sorted, after ``last``, at most ``n``."""
        ...


class SignInGate(Protocol):
    async def refusal(self, username: str | None) -> SignInRefusal | None:
        """Why enforce sign-in turns ``username`` (``None``: anonymous) away, if it does."""
        ...


Handler = Callable[[Request, str, str], Awaitable[Response]]


@dataclass(frozen=True)
class _Route:
    pattern: re.Pattern[str]
    handlers: Mapping[str, str]  # HTTP method -> handler attribute name


_ROUTES = (
    _Route(
        re.compile(r"(?P<name>.+)/manifests/(?P<arg>[^/]+)"),
        {"GET": "manifest", "HEAD": "manifest", "PUT": "put_manifest", "DELETE": "delete_manifest"},
    ),
    _Route(re.compile(r"(?P<name>.+)/blobs/uploads/?"), {"POST": "start_upload"}),
    _Route(
        re.compile(r"(?P<name>.+)/blobs/uploads/(?P<arg>[^/]+)"),
        {"GET": "upload", "PATCH": "upload", "PUT": "upload", "DELETE": "upload"},
    ),
    _Route(
        re.compile(r"(?P<name>.+)/blobs/(?P<arg>[^/]+)"),
        {"GET": "blob", "HEAD": "blob", "DELETE": "delete_blob"},
    ),
    _Route(re.compile(r"(?P<name>.+)/tags/list"), {"GET": "tags"}),
    _Route(re.compile(r"(?P<name>.+)/referrers/(?P<arg>[^/]+)"), {"GET": "referrers"}),
)


class RegistryAPI:
    def __init__(
        self,
        authorizer: Authorizer,
        proxy: RegistryContent,
        hosted: HostedRegistry,
        push: PushAPI,
        catalog: Catalog,
        signin: SignInGate,
    ) -> None:
        self._authorizer = authorizer
        self._proxy = proxy
        self._hosted = hosted
        self._catalog = catalog
        self._signin = signin
        self._handlers: dict[str, Handler] = {
            "manifest": self._manifest,
            "blob": self._blob,
            "tags": self._tags,
            "referrers": self._referrers,
            "put_manifest": push.put_manifest,
            "delete_manifest": push.delete_manifest,
            "start_upload": push.start_upload,
            "upload": push.upload,
            "delete_blob": push.delete_blob,
        }

    async def base(self, request: Request) -> Response:
        """``GET /v2/``: 200 with a valid token, else the challenge that starts login."""
        self._authorizer.auth.identify(request)
        return JSONResponse({})

    async def dispatch(self, request: Request) -> Response:
        path: str = request.path_params["path"]
        # Before anything is logged, recorded or looked up (``last`` in the database).
        problem = text_problem(path)
        if problem is not None:
            raise NameInvalid(f"the path {'/v2/' + path!r} is not valid text: {problem}")
        found = first_text_problem(request.query_params.multi_items())
        if found is not None:
            parameter, problem = found
            raise QueryInvalid(
                f"query parameter {parameter} is not valid text: {problem}",
                detail={"parameter": parameter},
            )
        if path == "_catalog":
            if request.method != "GET":
                raise Unsupported(f"{request.method} is not supported on /v2/_catalog")
            return await self._list_catalog(request)
        for route in _ROUTES:
            match = route.pattern.fullmatch(path)
            if match is None:
                continue
            name = route.handlers.get(request.method)
            if name is None:
                raise Unsupported(
                    f"{request.method} is not supported on /v2/{path}",
                    detail={"allowed": sorted(route.handlers)},
                )
            groups = match.groupdict()
            return await self._handlers[name](request, groups["name"], groups.get("arg") or "")
        raise NameUnknown(f"no registry endpoint at /v2/{path}", detail={"path": path})

    def _source(self, decision: Decision) -> tuple[RegistryContent, RepositoryName]:
        """Where an allowed name is served from, and under which name: a hosted
        repository from local storage; any other name from the cache of its upstream
        name (an organization's mirrored namespace is the upstream's, and cached as
        such); a name in an organization's namespace that is neither, from nowhere."""
        location = decision.location
        if location is None:
            return _UNMIRRORED, decision.repository
        return (self._hosted if location.hosted else self._proxy), location.name

    async def _manifest(self, request: Request, raw_name: str, ref: str) -> Response:
        decision = await self._authorizer.pull(request, raw_name, "manifest", ref)
        try:
            reference = parse_reference(ref)
        except NameInvalid as exc:
            # No manifest can have such a name: unknown, as distribution and the OCI
            # conformance suite answer (a PUT under it is refused as invalid instead).
            raise ManifestUnknown(exc.message, detail=exc.detail) from exc
        content, name = self._source(decision)
        manifest = await content.get_manifest(name, reference, _accept(request))
        headers = {
            "Docker-Content-Digest": str(manifest.digest),
            "Content-Length": str(len(manifest.body)),
            "ETag": f'"{manifest.digest}"',
        }
        body = b"" if request.method == "HEAD" else manifest.body
        return Response(body, headers=headers, media_type=manifest.media_type)

    async def _blob(self, request: Request, raw_name: str, ref: str) -> Response:
        digest = Digest.parse(ref)
        try:
            decision = await self._authorizer.pull(request, raw_name, "blob", ref)
        except (Denied, Unauthorized) as exc:
            # A pushing client asks HEAD before each upload, and a HEAD answer has no body
            # for the reason: "unknown" sends it on to the upload, which refuses with one.
            if request.method == "HEAD" and self._authorizer.holds_push_token(request, raw_name):
                raise BlobUnknown(
                    f"blob {digest} is unknown", detail={"digest": str(digest)}
                ) from exc
            raise
        content, repository = self._source(decision)
        headers = {
            "Docker-Content-Digest": str(digest),
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "ETag": f'"{digest}"',
            "Cache-Control": "max-age=31536000",
        }
        if request.method == "HEAD":
            size = await self._head_blob(decision, content, repository, digest)
            headers["Content-Length"] = str(size)
            return Response(b"", headers=headers)
        blob = await content.open_blob(repository, digest, request.headers.get("range"))
        status = 200
        length = blob.size
        if blob.byte_range is not None:
            status = 206
            length = blob.byte_range.length
            headers["Content-Range"] = (
                f"bytes {blob.byte_range.start}-{blob.byte_range.end}/{blob.byte_range.size}"
            )
        headers["Content-Length"] = str(length)
        return BlobResponse(blob, status, headers)

    @staticmethod
    async def _head_blob(
        decision: Decision, content: RegistryContent, repository: RepositoryName, digest: Digest
    ) -> int:
        try:
            return await content.head_blob(repository, digest)
        except Unavailable as exc:
            # A client pushing to its organization's new repository first asks whether each
            # blob is there; with the upstream down, "unknown" lets the push go on.
            if decision.category is not Category.ORGANIZATION:
                raise
            raise BlobUnknown(
                f"blob {digest} is not in {repository.full} here, and the upstream cannot be asked",
                detail={"digest": str(digest)},
            ) from exc

    async def _tags(self, request: Request, raw_name: str, _: str) -> Response:
        decision = await self._authorizer.pull(request, raw_name, "tags", "")
        repository = decision.repository
        n, last = _page(request)
        if n == 0:
            return JSONResponse({"name": repository.full, "tags": []})
        content, name = self._source(decision)
        page = await content.list_tags(name, n, last)
        headers = {}
        if page.next_last is not None:
            headers["Link"] = _next_link(f"/v2/{raw_name}/tags/list", n, page.next_last)
        return JSONResponse({"name": repository.full, "tags": page.tags}, headers=headers)

    async def _referrers(self, request: Request, raw_name: str, ref: str) -> Response:
        decision = await self._authorizer.pull(request, raw_name, "referrers", ref)
        digest = Digest.parse(ref)
        artifact_type = request.query_params.get("artifactType") or None
        content, name = self._source(decision)
        body, filtered = await content.referrers(name, digest, artifact_type)
        headers = {"OCI-Filters-Applied": "artifactType"} if filtered else {}
        return Response(body, headers=headers, media_type="application/vnd.oci.image.index.v1+json")

    async def _list_catalog(self, request: Request) -> Response:
        scope = "registry:catalog:*"
        identity = self._authorizer.auth.identify(request, scope)
        refusal = await self._signin.refusal(identity.username)
        if refusal is not None:
            if refusal.kind is Refusal.SIGN_IN_REQUIRED:
                raise Unauthorized(refusal.message, scope=scope)
            raise Denied(refusal.message)
        n, last = _page(request)
        if n == 0:
            return JSONResponse({"repositories": []})
        # A repo:public_read token lists what it may pull: the public repositories anyone
        # may read, never its user's private ones. Sign-in was checked on the user above.
        reader = None if identity.claims.public_only else identity.username
        # One more than asked tells whether another page follows.
        names = await self._catalog.readable(reader, (n or MAX_PAGE) + 1, last)
        limit = n or MAX_PAGE
        headers = {}
        if len(names) > limit:
            names = names[:limit]
            headers["Link"] = _next_link("/v2/_catalog", n, names[-1])
        return JSONResponse({"repositories": names}, headers=headers)


def _accept(request: Request) -> list[str]:
    types = []
    for header in request.headers.getlist("accept"):
        for item in ACCEPT_SPLIT.split(header):
            media_type = item.split(";", 1)[0].strip()
            if media_type and media_type != "*/*":
                types.append(media_type)
    return types


def _page(request: Request) -> tuple[int | None, str | None]:
    """``n`` (capped at MAX_PAGE) and ``last`` of a paginated listing."""
    value = request.query_params.get("n")
    last = request.query_params.get("last") or None
    if value is None or value == "":
        return None, last
    try:
        n = int(value)
    except ValueError:
        raise PaginationNumberInvalid(f"n={value!r} is not a whole number") from None
    if n < 0:
        raise PaginationNumberInvalid(f"n={value!r} must not be negative")
    return min(n, MAX_PAGE), last


def _next_link(path: str, n: int | None, last: str) -> str:
    query = f"n={n}&last={quote(last)}" if n else f"last={quote(last)}"
    return f'<{path}?{query}>; rel="next"'
