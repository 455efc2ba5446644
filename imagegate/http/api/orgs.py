"""``/v2/orgs/{org}/settings``: Image Access Management settings and the allowlist.

``restricted_images`` is exactly Docker Hub's object; ``allow_community_images``, the
allowlist routes and ``settings/upstream-namespace`` (the upstream namespace mirrored
into the organization's) are imagegate's additions, which a Hub client can ignore.
"""

from __future__ import annotations

from starlette.responses import Response

from imagegate.core.authorization import Who, reads, writes
from imagegate.http.api.framework import ApiError, Call, Endpoint, Json, json_response, no_content
from imagegate.services import Services
from imagegate.services.access import settings_document
from imagegate.services.allowlist import canonical_repository

_FLAGS = ("enabled", "allow_official_images", "allow_verified_publishers")
RESTRICTED: Json = {
    "type": "object",
    "required": list(_FLAGS),
    "properties": {name: {"type": "boolean"} for name in _FLAGS},
}
SETTINGS: Json = {
    "type": "object",
    "required": ["restricted_images"],
    "properties": {
        "restricted_images": RESTRICTED,
        "allow_community_images": {"type": "boolean"},
    },
}
ALLOWLIST: Json = {
    "type": "object",
    "required": ["count", "results"],
    "properties": {
        "count": {"type": "integer"},
        "results": {"type": "array", "items": {"type": "string"}},
    },
}
ALLOWLIST_ADD: Json = {
    "type": "object",
    "required": ["repository"],
    "properties": {"repository": {"type": "string", "minLength": 1, "maxLength": 255}},
}
UPSTREAM_NAMESPACE: Json = {
    "type": "object",
    "required": ["upstream_namespace"],
    "properties": {
        # null: the namespace serves hosted repositories only (the default)
        "upstream_namespace": {"type": "string", "nullable": True, "maxLength": 100},
    },
}
ENTRY: Json = {
    "type": "object",
    "required": ["repository"],
    "properties": {"repository": {"type": "string"}},
}


class OrgSettingsApi:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def get(self, call: Call) -> Response:
        org = call.params["org"]
        return json_response(settings_document(await self._services.access.get_settings(org)))

    async def put(self, call: Call) -> Response:
        org = call.params["org"]
        restricted = call.body["restricted_images"]
        # Audit (issue 5): AccessService.set_settings is the one place settings change.
        settings = await self._services.access.set_settings(
            org,
            enabled=restricted["enabled"],
            allow_official=restricted["allow_official_images"],
            allow_verified_publishers=restricted["allow_verified_publishers"],
            allow_community=call.body.get("allow_community_images"),
        )
        return json_response(settings_document(settings))

    async def upstream_namespace(self, call: Call) -> Response:
        mirrored = await self._services.access.upstream_namespace(call.params["org"])
        return json_response({"upstream_namespace": mirrored})

    async def set_upstream_namespace(self, call: Call) -> Response:
        mirrored = await self._services.access.set_upstream_namespace(
            call.params["org"], call.body["upstream_namespace"]
        )
        return json_response({"upstream_namespace": mirrored})

    async def allowlist(self, call: Call) -> Response:
        org = call.params["org"]
        entries = await self._services.allowlist.list(org)
        return json_response({"count": len(entries), "results": entries})

    async def allow(self, call: Call) -> Response:
        org = call.params["org"]
        repository = canonical_repository(call.body["repository"])
        added = await self._services.allowlist.add(org, repository)
        return json_response({"repository": repository}, 201 if added else 200)

    async def disallow(self, call: Call) -> Response:
        org = call.params["org"]
        repository = canonical_repository(f"{call.params['namespace']}/{call.params['repo']}")
        if not await self._services.allowlist.remove(org, repository):
            raise ApiError(404, f"{repository} not found on the allowlist of {org}")
        return no_content()

    def endpoints(self) -> list[Endpoint]:
        base = "/v2/orgs/{org}/settings"
        allowlist = f"{base}/image-access/allowlist"
        return [
            Endpoint(
                "GET",
                base,
                self.get,
                "Image Access Management settings",
                reads(Who.MEMBER),
                responses={200: SETTINGS},
                tag="settings",
            ),
            Endpoint(
                "PUT",
                base,
                self.put,
                "Change the settings (owners)",
                writes(Who.OWNER),
                body=SETTINGS,
                responses={200: SETTINGS},
                tag="settings",
            ),
            Endpoint(
                "GET",
                f"{base}/upstream-namespace",
                self.upstream_namespace,
                "The upstream namespace mirrored into the organization's",
                reads(Who.MEMBER),
                responses={200: UPSTREAM_NAMESPACE},
                tag="settings",
            ),
            Endpoint(
                "PUT",
                f"{base}/upstream-namespace",
                self.set_upstream_namespace,
                "Mirror an upstream namespace of the organization's own, or stop (owners)",
                writes(Who.OWNER),
                body=UPSTREAM_NAMESPACE,
                responses={200: UPSTREAM_NAMESPACE},
                tag="settings",
            ),
            Endpoint(
                "GET",
                allowlist,
                self.allowlist,
                "The repository allowlist",
                reads(Who.MEMBER),
                responses={200: ALLOWLIST},
                tag="settings",
            ),
            Endpoint(
                "POST",
                allowlist,
                self.allow,
                "Allowlist a repository (owners)",
                writes(Who.OWNER),
                body=ALLOWLIST_ADD,
                responses={201: ENTRY, 200: ENTRY},
                tag="settings",
            ),
            Endpoint(
                "DELETE",
                f"{allowlist}/{{namespace}}/{{repo}}",
                self.disallow,
                "Take a repository off the allowlist (owners)",
                writes(Who.OWNER),
                responses={204: None},
                tag="settings",
            ),
        ]
