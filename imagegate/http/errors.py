"""The one translation of ``RegistryError`` into the registry's JSON error envelope.

Refusals carry a ``WWW-Authenticate`` header as well as the body: a manifest HEAD has no
body, and Docker's client reports the header's ``error_description`` as ``denied: ...``.
``Docker-Distribution-API-Version`` is not set here: ``RequestLogMiddleware`` adds it to
every ``/v2`` response, errors included, once.
"""

from __future__ import annotations

import json
import logging

from starlette.requests import Request
from starlette.responses import Response

from imagegate.core.errors import (
    Denied,
    RangeInvalid,
    RegistryError,
    TooManyRequests,
    Unauthorized,
)
from imagegate.http.challenge import TokenRealm

logger = logging.getLogger("imagegate.http")


def error_body(error: RegistryError) -> bytes:
    entry: dict[str, object] = {"code": error.code, "message": error.message}
    entry["detail"] = error.detail if error.detail is not None else {}
    return json.dumps({"errors": [entry]}).encode()


def error_response(request: Request, error: RegistryError, realm: TokenRealm) -> Response:
    headers: dict[str, str] = {}
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = realm.challenge(
            request,
            scope=error.scope,
            error="insufficient_scope" if error.insufficient_scope else None,
            description=error.message if error.scope else None,
        )
    elif isinstance(error, Denied):
        headers["WWW-Authenticate"] = realm.challenge(
            request, error="insufficient_scope", description=error.message
        )
    elif (
        isinstance(error, RangeInvalid)
        and isinstance(error.detail, dict)
        and "size" in error.detail
    ):
        headers["Content-Range"] = f"bytes */{error.detail['size']}"
    elif (
        isinstance(error, TooManyRequests)
        and isinstance(error.detail, dict)
        and "retry_after" in error.detail
    ):
        headers["Retry-After"] = str(error.detail["retry_after"])
    body = error_body(error)
    headers["Content-Length"] = str(len(body))
    if request.method == "HEAD":
        body = b""
    return Response(body, error.status, headers=headers, media_type="application/json")


class InternalError(RegistryError):
    """Anything unexpected: the client gets the envelope, the log gets the traceback."""

    code = "UNKNOWN"
    status = 500


def internal_error_response(request: Request, realm: TokenRealm) -> Response:
    error = InternalError("internal server error; the gateway's log has the details")
    return error_response(request, error, realm)
