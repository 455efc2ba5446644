"""``/v2/access-tokens``: the caller's personal access tokens (alias ``/v2/api_tokens``).

The secret is in the create response only; lists and reads show ``"***"``. ``scopes``
and ``expires_at`` echo as sent (Terraform compares them). Every change needs a session
signed in with a password (``manages_credentials``): an access token manages no tokens.
"""

from __future__ import annotations

import re

from starlette.responses import Response

from imagegate.core.authorization import TOKEN_SCOPES, Who, manages_credentials, reads
from imagegate.http.api.framework import (
    PAGE_QUERY,
    ApiError,
    Call,
    Endpoint,
    Json,
    PageRequest,
    json_response,
    no_content,
    page_schema,
    paginated,
    parse_date_time,
    rfc3339,
    rfc3339_short,
)
from imagegate.services import Services
from imagegate.services.credentials import MAX_TOKEN_LABEL_LENGTH, TokenInfo

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
REDACTED = "***"
TOKEN: Json = {
    "type": "object",
    "required": ["uuid", "token_label", "scopes", "is_active", "created_at", "token"],
    "properties": {
        "uuid": {"type": "string", "format": "uuid"},
        "client_id": {"type": "string"},
        "creator_ip": {"type": "string"},
        "creator_ua": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "last_used": {"type": "string", "format": "date-time", "nullable": True},
        "generated_by": {"type": "string"},
        "is_active": {"type": "boolean"},
        "token": {"type": "string"},
        "token_label": {"type": "string"},
        "scopes": {"type": "array", "items": {"type": "string"}},
        "expires_at": {"type": "string", "format": "date-time", "nullable": True},
    },
}
_LABEL: Json = {"type": "string", "minLength": 1, "maxLength": MAX_TOKEN_LABEL_LENGTH}
CREATE_BODY: Json = {
    "type": "object",
    "required": ["token_label", "scopes"],
    "properties": {
        "token_label": _LABEL,
        "scopes": {
            "type": "array",
            "items": {"type": "string", "enum": list(TOKEN_SCOPES)},
            "maxItems": 4,
        },
        "expires_at": {"type": "string", "format": "date-time", "nullable": True, "maxLength": 40},
    },
}
PATCH_BODY: Json = {
    "type": "object",
    "properties": {"token_label": _LABEL, "is_active": {"type": "boolean"}},
}


def token_body(token: TokenInfo, secret: str = REDACTED) -> Json:
    return {
        "uuid": token.uuid,
        "client_id": "HUB",
        "creator_ip": token.creator_ip,
        "creator_ua": token.creator_ua,
        "created_at": rfc3339(token.created_at),
        "last_used": rfc3339(token.last_used_at),
        "generated_by": "manual",
        "is_active": token.active,
        "token": secret,
        "token_label": token.description,
        "scopes": list(token.scopes),
        "expires_at": rfc3339_short(token.expires_at),
    }


def _uuid(call: Call) -> str:
    value = call.params["uuid"].lower()
    if _UUID.fullmatch(value) is None:
        raise ApiError(404, f"access token {call.params['uuid']!r} not found")
    return value


class TokensApi:
    def __init__(self, services: Services, public_url: str) -> None:
        self._services = services
        self._public_url = public_url

    async def create(self, call: Call) -> Response:
        expires = call.body.get("expires_at")
        if expires is not None and expires != "":
            expires_at = parse_date_time(expires, "expires_at")
        else:
            expires_at = None
        client = call.request.client
        # Audit (issue 5): AccountService.create_token is where tokens are minted.
        token, secret = await self._services.accounts.create_token(
            call.user.username,
            call.body["token_label"],
            scopes=call.body["scopes"],
            expires_at=expires_at,
            creator_ip=client.host if client else "",
            creator_ua=call.request.headers.get("user-agent", ""),
        )
        return json_response(token_body(token, secret), 201)

    async def index(self, call: Call) -> Response:
        page = PageRequest.of(call.request, default_size=10)
        tokens = await self._services.accounts.list_tokens(call.user.username)
        chosen = tokens[page.offset : page.offset + page.size]
        body = paginated(
            call.request, self._public_url, page, len(tokens), [token_body(t) for t in chosen]
        )
        body["active_count"] = sum(1 for t in tokens if t.active)
        return json_response(body)

    async def get(self, call: Call) -> Response:
        token = await self._services.accounts.get_token(call.user.username, _uuid(call))
        return json_response(token_body(token))

    async def update(self, call: Call) -> Response:
        token = await self._services.accounts.update_token(
            call.user.username,
            _uuid(call),
            active=call.body.get("is_active"),
            description=call.body.get("token_label"),
        )
        return json_response(token_body(token))

    async def delete(self, call: Call) -> Response:
        await self._services.accounts.delete_token(call.user.username, _uuid(call))
        return no_content()

    def endpoints(self) -> list[Endpoint]:
        endpoints = []
        listing = page_schema(TOKEN, active_count={"type": "integer"})
        for base in ("/v2/access-tokens", "/v2/api_tokens"):
            one = f"{base}/{{uuid}}"
            endpoints += [
                Endpoint(
                    "POST",
                    base,
                    self.create,
                    "Create a personal access token (its secret is in this response only)",
                    manages_credentials(Who.USER),
                    body=CREATE_BODY,
                    responses={201: TOKEN},
                    tag="access-tokens",
                ),
                Endpoint(
                    "GET",
                    base,
                    self.index,
                    "The caller's access tokens",
                    reads(Who.USER),
                    query=PAGE_QUERY,
                    responses={200: listing},
                    tag="access-tokens",
                ),
                Endpoint(
                    "GET",
                    one,
                    self.get,
                    "An access token",
                    reads(Who.USER),
                    responses={200: TOKEN},
                    tag="access-tokens",
                ),
                Endpoint(
                    "PATCH",
                    one,
                    self.update,
                    "Activate, revoke or relabel a token",
                    manages_credentials(Who.USER),
                    body=PATCH_BODY,
                    responses={200: TOKEN},
                    tag="access-tokens",
                ),
                Endpoint(
                    "DELETE",
                    one,
                    self.delete,
                    "Delete an access token",
                    manages_credentials(Who.USER),
                    responses={204: None},
                    tag="access-tokens",
                ),
            ]
        return endpoints
