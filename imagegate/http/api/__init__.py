"""The management API, compatible with Docker Hub's (``/v2/users/login``, ``/v2/orgs/...``).

Scripts written for Hub's API work against imagegate by changing the base URL. One module
per domain declares its endpoints (``framework.Endpoint``), each with who may call it;
this module serves them, with and without a trailing slash, checks that declaration
(``access.EndpointAccess``) before any handler runs, and serves the OpenAPI document
rendered from the same table at ``/v2/openapi.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from imagegate.audit.events import AuditSink
from imagegate.config import Settings
from imagegate.core.errors import RegistryError
from imagegate.http.api.access import EndpointAccess
from imagegate.http.api.auditlogs import AuditLogsApi
from imagegate.http.api.auth import ApiTokens, AuthApi, load_key
from imagegate.http.api.framework import (
    ApiError,
    Call,
    Endpoint,
    check_text,
    error_response,
    read_body,
    service_error,
)
from imagegate.http.api.groups import GroupsApi
from imagegate.http.api.members import MembersApi
from imagegate.http.api.openapi import document
from imagegate.http.api.orgs import OrgSettingsApi
from imagegate.http.api.publishers import PublishersApi
from imagegate.http.api.tokens import TokensApi
from imagegate.services import ServiceError, Services

log = logging.getLogger(__name__)
OPENAPI_PATH = "/v2/openapi.json"
API_VERSION = "1"


def endpoints(
    settings: Settings, services: Services, tokens: ApiTokens, audit: AuditSink
) -> list[Endpoint]:
    public_url = settings.public_url
    return [
        *AuthApi(services, tokens, audit).endpoints(),
        *OrgSettingsApi(services).endpoints(),
        *MembersApi(services, public_url).endpoints(),
        *GroupsApi(services, public_url).endpoints(),
        *TokensApi(services, public_url).endpoints(),
        *PublishersApi(services).endpoints(),
        *AuditLogsApi(services).endpoints(),
    ]


class _Path:
    """Every method of one path: dispatch, authorization, body checks and error translation."""

    def __init__(self, access: EndpointAccess, by_method: dict[str, Endpoint]) -> None:
        self._access = access
        self._by_method = by_method

    async def handle(self, request: Request) -> Response:
        endpoint = self._by_method.get("GET" if request.method == "HEAD" else request.method)
        if endpoint is None:
            allowed = ", ".join(sorted(self._by_method))
            response = error_response(
                ApiError(405, f"method {request.method} not allowed here; use {allowed}")
            )
            response.headers["Allow"] = allowed
            return response
        try:
            check_text(request)
            admitted = await self._access.admit(endpoint, request)
            body = await read_body(request, endpoint.body) if endpoint.body is not None else {}
            params = {k: str(v) for k, v in request.path_params.items()}
            call = Call(request, admitted.caller, admitted.membership, params, body)
            return await endpoint.handler(call)
        except ApiError as exc:
            return error_response(exc)
        except ServiceError as exc:
            return error_response(service_error(exc))
        except RegistryError as exc:  # a name that breaks the grammar
            return error_response(ApiError(400, exc.message))


def _routes(table: Sequence[Endpoint], access: EndpointAccess) -> list[BaseRoute]:
    by_path: dict[str, dict[str, Endpoint]] = {}
    for endpoint in table:
        by_path.setdefault(endpoint.path, {})[endpoint.method] = endpoint
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    routes: list[BaseRoute] = []
    for path, by_method in by_path.items():
        handler = _Path(access, by_method)
        routes.append(Route(path, handler.handle, methods=methods))
        routes.append(Route(f"{path}/", handler.handle, methods=methods))
    return routes


def routes(settings: Settings, services: Services, audit: AuditSink) -> list[BaseRoute]:
    """The API's routes; they are matched before the registry's ``/v2/`` catch-all."""
    tokens = ApiTokens(load_key(settings.keys_dir), services.sessions)
    table = endpoints(settings, services, tokens, audit)
    spec = document(table, API_VERSION)

    async def openapi(request: Request) -> Response:
        return JSONResponse(spec)

    return [
        Route(OPENAPI_PATH, openapi, methods=["GET", "HEAD"]),
        *_routes(table, EndpointAccess(services, tokens)),
    ]
