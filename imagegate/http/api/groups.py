"""``/v2/orgs/{org}/groups``: teams (Hub calls them groups) and their members."""

from __future__ import annotations

import uuid

from starlette.responses import Response

from imagegate.core.authorization import Who, reads, writes
from imagegate.http.api.framework import (
    PAGE_QUERY,
    Call,
    Endpoint,
    Json,
    PageRequest,
    json_response,
    no_content,
    page_schema,
    paginated,
    query_text,
)
from imagegate.http.api.members import USER_FIELDS, members_page
from imagegate.services import Services
from imagegate.services.orgs import TeamInfo

GROUP: Json = {
    "type": "object",
    "required": ["id", "uuid", "name", "description", "member_count"],
    "properties": {
        "id": {"type": "integer"},
        "uuid": {"type": "string"},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "member_count": {"type": "integer"},
        "role": {"type": "string", "nullable": True},
    },
}
# Terraform sends the whole struct back: id, uuid and member_count are accepted, ignored.
_GROUP_FIELDS: Json = {
    "id": {"type": "integer"},
    "uuid": {"type": "string", "maxLength": 64},
    "name": {"type": "string", "minLength": 1, "maxLength": 50},
    "description": {"type": "string", "maxLength": 255},
    "member_count": {"type": "integer"},
}
CREATE_BODY: Json = {"type": "object", "required": ["name"], "properties": _GROUP_FIELDS}
PATCH_BODY: Json = {"type": "object", "properties": _GROUP_FIELDS}
MEMBER_BODY: Json = {
    "type": "object",
    "required": ["member"],
    "properties": {"member": {"type": "string", "minLength": 1, "maxLength": 30}},
}
GROUP_MEMBER: Json = {
    "type": "object",
    "required": ["id", "username"],
    "properties": {
        **USER_FIELDS,
        "role": {"type": "string"},
        "groups": {"type": "array", "items": {"type": "string"}},
        "is_guest": {"type": "boolean"},
        "primary_email": {"type": "string"},
    },
}


def group_body(org: str, team: TeamInfo) -> Json:
    return {
        "id": team.id,
        "uuid": team_uuid(org, team),
        "name": team.name,
        "description": team.description,
        "member_count": team.member_count,
        "role": None,
    }


def team_uuid(org: str, team: TeamInfo) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"imagegate:team:{org}:{team.id}"))


class GroupsApi:
    def __init__(self, services: Services, public_url: str) -> None:
        self._services = services
        self._public_url = public_url

    async def index(self, call: Call) -> Response:
        org = call.params["org"]
        page = PageRequest.of(call.request)
        found = await self._services.orgs.list_teams(
            org,
            search=query_text(call.request, "search"),
            username=query_text(call.request, "username") or None,
            offset=page.offset,
            limit=page.size,
        )
        results = [group_body(org, t) for t in found.items]
        return json_response(paginated(call.request, self._public_url, page, found.count, results))

    async def create(self, call: Call) -> Response:
        org = call.params["org"]
        team = await self._services.orgs.create_team(
            org, call.body["name"], call.body.get("description", "")
        )
        return json_response(group_body(org, team), 201)

    async def get(self, call: Call) -> Response:
        org = call.params["org"]
        return json_response(
            group_body(org, await self._services.orgs.get_team(org, call.params["group"]))
        )

    async def update(self, call: Call) -> Response:
        org = call.params["org"]
        team = await self._services.orgs.update_team(
            org,
            call.params["group"],
            name=call.body.get("name") or None,
            description=call.body.get("description"),
        )
        return json_response(group_body(org, team))

    async def delete(self, call: Call) -> Response:
        org = call.params["org"]
        await self._services.orgs.delete_team(org, call.params["group"])
        return no_content()

    async def members(self, call: Call) -> Response:
        org = call.params["org"]
        page = PageRequest.of(call.request)
        found = await self._services.orgs.list_members(
            org,
            team=call.params["group"],
            search=query_text(call.request, "search"),
            offset=page.offset,
            limit=page.size,
        )
        return members_page(call, self._public_url, page, found, call.member)

    async def add_member(self, call: Call) -> Response:
        org = call.params["org"]
        await self._services.orgs.add_team_member(org, call.params["group"], call.body["member"])
        return json_response({})

    async def remove_member(self, call: Call) -> Response:
        org = call.params["org"]
        await self._services.orgs.remove_team_member(
            org, call.params["group"], call.params["username"]
        )
        return no_content()

    def endpoints(self) -> list[Endpoint]:
        base = "/v2/orgs/{org}/groups"
        group = f"{base}/{{group}}"
        paging = {**PAGE_QUERY, "search": {"type": "string", "maxLength": 100}}
        listed = {**paging, "username": {"type": "string", "maxLength": 100}}
        out = {200: GROUP}
        return [
            Endpoint(
                "GET",
                base,
                self.index,
                "Teams, with member counts",
                reads(Who.MEMBER),
                query=listed,
                responses={200: page_schema(GROUP)},
                tag="groups",
            ),
            Endpoint(
                "POST",
                base,
                self.create,
                "Create a team (owners)",
                writes(Who.OWNER),
                body=CREATE_BODY,
                responses={201: GROUP},
                tag="groups",
            ),
            Endpoint(
                "GET", group, self.get, "A team", reads(Who.MEMBER), responses=out, tag="groups"
            ),
            Endpoint(
                "PUT",
                group,
                self.update,
                "Rename a team or change its description (owners)",
                writes(Who.OWNER),
                body=CREATE_BODY,
                responses=out,
                tag="groups",
            ),
            Endpoint(
                "PATCH",
                group,
                self.update,
                "Rename a team or change its description (owners)",
                writes(Who.OWNER),
                body=PATCH_BODY,
                responses=out,
                tag="groups",
            ),
            Endpoint(
                "DELETE",
                group,
                self.delete,
                "Delete a team (owners)",
                writes(Who.OWNER),
                responses={204: None},
                tag="groups",
            ),
            Endpoint(
                "GET",
                f"{group}/members",
                self.members,
                "A team's members",
                reads(Who.MEMBER),
                query=paging,
                responses={200: page_schema(GROUP_MEMBER)},
                tag="groups",
            ),
            Endpoint(
                "POST",
                f"{group}/members",
                self.add_member,
                "Add a user to a team (owners)",
                writes(Who.OWNER),
                body=MEMBER_BODY,
                responses={200: {"type": "object"}},
                tag="groups",
            ),
            Endpoint(
                "DELETE",
                f"{group}/members/{{username}}",
                self.remove_member,
                "Remove a user from a team (owners)",
                writes(Who.OWNER),
                responses={204: None},
                tag="groups",
            ),
        ]
