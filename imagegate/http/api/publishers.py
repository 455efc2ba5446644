"""``/v2/publishers``: publisher status overrides (gateway admins only; imagegate's own)."""

from __future__ import annotations

from starlette.responses import Response

from imagegate.core.authorization import Who, reads, writes
from imagegate.core.categories import PublisherStatus
from imagegate.http.api.framework import Call, Endpoint, Json, json_response, no_content, rfc3339
from imagegate.services import Services
from imagegate.services.publishers import check_namespace

_STATUSES = [status.value for status in PublisherStatus]
OVERRIDE: Json = {
    "type": "object",
    "required": ["namespace", "status"],
    "properties": {
        "namespace": {"type": "string"},
        "status": {"type": "string", "enum": _STATUSES},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}
LIST: Json = {
    "type": "object",
    "required": ["count", "results"],
    "properties": {"count": {"type": "integer"}, "results": {"type": "array", "items": OVERRIDE}},
}
SET_BODY: Json = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string", "enum": _STATUSES}},
}


class PublishersApi:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def index(self, call: Call) -> Response:
        overrides = await self._services.publishers.list_overrides()
        results = [
            {
                "namespace": o.namespace,
                "status": o.status.value,
                "updated_at": rfc3339(o.updated_at),
            }
            for o in overrides
        ]
        return json_response({"count": len(results), "results": results})

    async def set(self, call: Call) -> Response:
        namespace = check_namespace(call.params["namespace"])
        status = PublisherStatus(call.body["status"])
        await self._services.publishers.set_override(namespace, status)
        return json_response({"namespace": namespace, "status": status.value})

    async def remove(self, call: Call) -> Response:
        await self._services.publishers.remove_override(call.params["namespace"])
        return no_content()

    def endpoints(self) -> list[Endpoint]:
        one = "/v2/publishers/{namespace}"
        return [
            Endpoint(
                "GET",
                "/v2/publishers",
                self.index,
                "Publisher overrides (admins)",
                reads(Who.ADMIN),
                responses={200: LIST},
                tag="publishers",
            ),
            Endpoint(
                "PUT",
                one,
                self.set,
                "Override a namespace's publisher status (admins)",
                writes(Who.ADMIN),
                body=SET_BODY,
                responses={200: OVERRIDE},
                tag="publishers",
            ),
            Endpoint(
                "DELETE",
                one,
                self.remove,
                "Drop an override (admins)",
                writes(Who.ADMIN),
                responses={204: None},
                tag="publishers",
            ),
        ]
