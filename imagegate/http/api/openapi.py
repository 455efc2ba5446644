"""The OpenAPI 3 document, rendered from the endpoint table the router serves."""

from __future__ import annotations

import re
from collections.abc import Sequence

from imagegate.core.authorization import Who
from imagegate.http.api.framework import Endpoint, Json

_PARAM = re.compile(r"\{(\w+)\}")
ERROR: Json = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "errinfo": {"type": "object", "nullable": True},
        "detail": {"type": "string"},
        "message": {"type": "string"},
        "fields": {"type": "object"},
        "text": {"type": "string"},
    },
}
_ERRORS = {
    400: "bad request: invalid JSON, an unknown field, a wrong type or a broken rule",
    401: "unauthorized: sign in first",
    403: "permission denied",
    404: "not found",
    409: "conflict: the name is taken",
}


def _json(schema: Json | None) -> Json:
    return {"application/json": {"schema": schema}} if schema is not None else {}


def document(endpoints: Sequence[Endpoint], version: str) -> Json:
    paths: dict[str, Json] = {}
    for endpoint in endpoints:
        parameters: list[Json] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
            for name in _PARAM.findall(endpoint.path)
        ]
        parameters += [
            {"name": name, "in": "query", "required": False, "schema": schema}
            for name, schema in endpoint.query.items()
        ]
        responses: dict[str, Json] = {}
        for status, schema in endpoint.responses.items():
            response: Json = {"description": "success"}
            if schema is not None:
                response["content"] = _json(schema)
            responses[str(status)] = response
        anyone = endpoint.need.who is Who.ANYONE
        errors = [400, 404] if anyone else [400, 401, 403, 404, 409]
        for status in errors:
            responses.setdefault(
                str(status), {"description": _ERRORS[status], "content": _json(ERROR)}
            )
        operation: Json = {
            "summary": endpoint.summary,
            # Who may call it (core.authorization): anonymous, user, member, owner or
            # admin, and whether it reads or writes.
            "x-imagegate-access": str(endpoint.need),
            "operationId": f"{endpoint.method.lower()}_{endpoint.handler.__qualname__}"
            f"_{len(paths)}",
            "tags": [endpoint.tag] if endpoint.tag else [],
            "parameters": parameters,
            "responses": responses,
        }
        if endpoint.body is not None:
            operation["requestBody"] = {"required": True, "content": _json(endpoint.body)}
        if not anyone:
            operation["security"] = [{"bearer": []}]
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "imagegate management API (Docker Hub compatible)",
            "version": version,
            "description": "Docker Hub's management API for Image Access Management, "
            "members, groups and access tokens, plus imagegate's additions. Every path "
            "is also served with a trailing slash.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
        },
    }
