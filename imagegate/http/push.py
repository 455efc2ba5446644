"""The registry API's write side for hosted repositories: uploads, manifests, deletes.

Flows follow the OCI distribution specification (section 2 of OCI-DISTRIBUTION.md):
monolithic, chunked and streamed uploads, status, cancel, cross-repository mounts,
manifest PUT by tag or digest, and deletes. Only organization namespaces hold hosted
repositories; everything else is read-only.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Protocol

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from imagegate.core.digests import Digest
from imagegate.core.errors import (
    BlobUploadInvalid,
    BlobUploadUnknown,
    Denied,
    DigestInvalid,
    SizeInvalid,
)
from imagegate.core.inputs import whole_number
from imagegate.core.names import RepositoryName, parse_reference
from imagegate.core.permissions import Permission
from imagegate.hosted.errors import ManifestTooLarge
from imagegate.hosted.interfaces import MAX_MANIFEST_BYTES, HostedRegistry, UploadStatus
from imagegate.http.authorize import Authorizer

logger = logging.getLogger("imagegate.push")
MAX_DRAINED_BYTES = 1024**3
_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/\d+|/\*)?")


class RepositoryCreator(Protocol):
    async def ensure(self, repository: RepositoryName) -> bool:
        """Create the hosted repository on first push (idempotent). Called once content
        is stored in it: a push refused before that (too many uploads, the quota used
        up) leaves no empty repository behind."""
        ...


class PushAPI:
    def __init__(
        self, authorizer: Authorizer, hosted: HostedRegistry, repositories: RepositoryCreator
    ) -> None:
        self._authorizer = authorizer
        self._hosted = hosted
        self._repositories = repositories

    async def _writable(
        self, request: Request, raw_name: str, kind: str, ref: str
    ) -> RepositoryName:
        _, decision = await self._authorizer.write(request, raw_name, kind, ref, Permission.WRITE)
        return decision.repository

    async def start_upload(self, request: Request, raw_name: str, _: str = "") -> Response:
        """``POST /v2/<name>/blobs/uploads/`` (plain, ``?digest=`` or ``?mount=&from=``)."""
        query = request.query_params
        mount, source = query.get("mount"), query.get("from")
        identity, decision = await self._authorizer.write(
            request, raw_name, "upload", "", Permission.WRITE, mount_from=mount and source
        )
        repository = decision.repository
        if mount and source:
            digest = Digest.parse(mount)
            # Looked up only where the source name's content lives: a mirrored name's is
            # cached under its upstream name, and a name its organization neither hosts
            # nor mirrors holds nothing, whatever the cache kept under it before.
            held = await self._authorizer.mount_source(request, identity, source, str(digest))
            if held is not None and await self._hosted.mount(repository, digest, held):
                await self._repositories.ensure(repository)
                return _blob_created(raw_name, digest)
        whole = Digest.parse(query["digest"]) if query.get("digest") else None
        upload = await self._hosted.start_upload(repository, by=identity.username or "")
        if whole is not None:
            try:
                async with _heard_out(request):
                    stored = await self._hosted.finish(
                        repository,
                        upload.upload_id,
                        whole,
                        request.stream(),
                        None,
                        _length(request),
                    )
            except BaseException:
                # The client never saw this session: do not let it hold a slot (a refusal
                # of the quota has dropped it already).
                with contextlib.suppress(BlobUploadUnknown):
                    await self._hosted.cancel(repository, upload.upload_id)
                raise
            await self._repositories.ensure(repository)
            return _blob_created(raw_name, stored)
        return _upload_response(raw_name, upload, 202)

    async def upload(self, request: Request, raw_name: str, upload_id: str) -> Response:
        """``GET|PATCH|PUT|DELETE <location>``: status, append, finish, cancel."""
        if not upload_id:
            raise BlobUploadInvalid("an upload session id is missing from the URL")
        repository = await self._writable(request, raw_name, "upload", upload_id)
        if request.method == "GET":
            status = await self._hosted.upload_status(repository, upload_id)
            return _upload_response(raw_name, status, 204)
        if request.method == "DELETE":
            await self._hosted.cancel(repository, upload_id)
            return Response(status_code=204)
        start = _range_start(request)
        if request.method == "PATCH":
            try:
                async with _heard_out(request):
                    status = await self._hosted.append(
                        repository, upload_id, request.stream(), start, _length(request)
                    )
            except ClientDisconnect:
                # What arrived is kept; the client asks the upload's status and resumes.
                logger.info(
                    "upload interrupted: the client disconnected",
                    extra={"repository": repository.full, "upload_id": upload_id},
                )
                return Response(status_code=400)  # nobody is listening any more
            return _upload_response(raw_name, status, 202)
        digest_value = request.query_params.get("digest")
        if not digest_value:
            raise DigestInvalid("the final PUT of an upload needs ?digest=<algorithm:hex>")
        digest = Digest.parse(digest_value)
        body = request.stream() if _has_body(request) else None
        async with _heard_out(request):
            stored = await self._hosted.finish(
                repository, upload_id, digest, body, start, _length(request)
            )
        await self._repositories.ensure(repository)
        return _blob_created(raw_name, stored)

    async def put_manifest(self, request: Request, raw_name: str, ref: str) -> Response:
        repository = await self._writable(request, raw_name, "manifest", ref)
        reference = parse_reference(ref)
        body = await _read_limited(request.stream(), MAX_MANIFEST_BYTES)
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip()
        pushed = await self._hosted.put_manifest(repository, reference, media_type, body)
        await self._repositories.ensure(repository)
        headers = {
            "Location": f"/v2/{raw_name}/manifests/{pushed.digest}",
            "Docker-Content-Digest": str(pushed.digest),
        }
        if pushed.subject is not None:
            headers["OCI-Subject"] = str(pushed.subject)
        return Response(status_code=201, headers=headers)

    async def delete_manifest(self, request: Request, raw_name: str, ref: str) -> Response:
        _, decision = await self._authorizer.write(
            request, raw_name, "manifest", ref, Permission.ADMIN
        )
        reference = parse_reference(ref)
        if reference.digest is not None:
            await self._hosted.delete_manifest(decision.repository, reference.digest)
        else:
            assert reference.tag is not None
            await self._hosted.delete_tag(decision.repository, reference.tag)
        return Response(status_code=202)

    async def delete_blob(self, request: Request, raw_name: str, ref: str) -> Response:
        _, decision = await self._authorizer.write(request, raw_name, "blob", ref, Permission.ADMIN)
        await self._hosted.delete_blob(decision.repository, Digest.parse(ref))
        return Response(status_code=202)


@contextlib.asynccontextmanager
async def _heard_out(request: Request) -> AsyncIterator[None]:
    """Read the rest of the body of an upload refused midway (the quota), discarding it,
    before the refusal is sent: a server that closes a connection with unread bytes
    resets it, and the client, still writing, never reads why ("broken pipe")."""
    try:
        yield
    except Denied:
        drained = 0
        with contextlib.suppress(ClientDisconnect, RuntimeError):  # RuntimeError: all read
            async for chunk in request.stream():
                drained += len(chunk)
                if drained > MAX_DRAINED_BYTES:
                    break  # past this, the client has to do without the reason
        raise


def _blob_created(raw_name: str, digest: Digest) -> Response:
    headers = {"Location": f"/v2/{raw_name}/blobs/{digest}", "Docker-Content-Digest": str(digest)}
    return Response(status_code=201, headers=headers)


def _upload_response(raw_name: str, upload: UploadStatus, status: int) -> Response:
    headers = {
        "Location": f"/v2/{raw_name}/blobs/uploads/{upload.upload_id}",
        "Docker-Upload-UUID": upload.upload_id,
        # The spec's form, without "bytes="; no bytes yet is conventionally "0-0".
        "Range": f"0-{max(upload.offset - 1, 0)}",
    }
    return Response(status_code=status, headers=headers)


def _length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    length = whole_number(value)
    if length is None:
        raise SizeInvalid(f"Content-Length {value[:40]!r} is not a number of bytes")
    return length


def _has_body(request: Request) -> bool:
    length = _length(request)
    return (length is not None and length > 0) or "chunked" in request.headers.get(
        "transfer-encoding", ""
    ).lower()


def _range_start(request: Request) -> int | None:
    """The start of ``Content-Range: <start>-<end>`` (the spec's form, no unit)."""
    value = request.headers.get("content-range")
    if value is None:
        return None
    match = _CONTENT_RANGE.fullmatch(value.strip())
    start, end = (whole_number(match[1]), whole_number(match[2])) if match else (None, None)
    if start is None or end is None:
        raise BlobUploadInvalid(
            f"Content-Range {value[:80]!r} is not <start>-<end>",
            detail={"content_range": value[:80]},
        )
    if end < start:
        raise BlobUploadInvalid(f"Content-Range {value!r} ends before it starts")
    return start


async def _read_limited(stream: AsyncIterator[bytes], limit: int) -> bytes:
    body = bytearray()
    async for chunk in stream:
        body += chunk
        if len(body) > limit:
            raise ManifestTooLarge(
                f"manifest is larger than {limit} bytes", detail={"limit": limit}
            )
    return bytes(body)


__all__ = ["PushAPI"]
