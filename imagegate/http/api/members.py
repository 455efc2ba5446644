"""``/v2/orgs/{org}/members``: list (search, pages), change a role, remove, add directly."""

from __future__ import annotations

from starlette.responses import Response

from imagegate.core.authorization import Who, reads, writes
from imagegate.http.api.auth import user_uuid
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
    query_text,
    rfc3339,
)
from imagegate.services import Services
from imagegate.services.orgs import MEMBERS_TEAM, MemberDetail, Page

USER_FIELDS: Json = {
    "id": {"type": "string"},
    "username": {"type": "string"},
    "full_name": {"type": "string"},
    "company": {"type": "string"},
    "location": {"type": "string"},
    "date_joined": {"type": "string", "format": "date-time"},
    "gravatar_email": {"type": "string"},
    "gravatar_url": {"type": "string"},
    "profile_url": {"type": "string"},
    "type": {"type": "string", "enum": ["User", "Org"]},
    "email": {"type": "string"},
}
MEMBER: Json = {
    "type": "object",
    "required": ["id", "username", "role", "groups", "type"],
    "properties": {
        **USER_FIELDS,
        "role": {"type": "string", "enum": ["Owner", "Member"]},
        "groups": {"type": "array", "items": {"type": "string"}},
        "is_guest": {"type": "boolean"},
        "primary_email": {"type": "string"},
    },
}
_NAME: Json = {"type": "string", "minLength": 1, "maxLength": 30}
ROLE_BODY: Json = {
    "type": "object",
    "required": ["role"],
    "properties": {"role": {"type": "string", "enum": ["owner", "member"]}},
}
ADD_BODY: Json = {
    "type": "object",
    "required": ["member"],
    "properties": {
        "member": _NAME,
        "team": {"type": "string", "maxLength": 50},
        "role": {"type": "string", "enum": ["owner", "member"]},
    },
}


def user_fields(username: str, email: str | None, joined: object, *, with_email: bool) -> Json:
    return {
        "id": user_uuid(username).hex,
        "username": username,
        "full_name": "",
        "company": "",
        "location": "",
        "date_joined": rfc3339(joined),  # type: ignore[arg-type]
        "gravatar_email": "",
        "gravatar_url": "",
        "profile_url": "",
        "type": "User",
        "email": (email or "") if with_email else "",
    }


def members_page(
    call: Call, public_url: str, page: PageRequest, found: Page[MemberDetail], viewer: MemberDetail
) -> Response:
    """A page of members as ``viewer`` may see it: emails are for owners only."""
    with_email = viewer.role == "owner"
    results = [member_body(m, with_email=with_email) for m in found.items]
    return json_response(paginated(call.request, public_url, page, found.count, results))


def member_body(member: MemberDetail, *, with_email: bool) -> Json:
    return {
        **user_fields(member.username, member.email, member.date_joined, with_email=with_email),
        "role": member.role.capitalize(),
        "groups": list(member.teams),
        "is_guest": False,
        "primary_email": (member.email or "") if with_email else "",
    }


class MembersApi:
    def __init__(self, services: Services, public_url: str) -> None:
        self._services = services
        self._public_url = public_url

    async def index(self, call: Call) -> Response:
        org = call.params["org"]
        page = PageRequest.of(call.request)
        role = query_text(call.request, "role") or None
        if role not in (None, "owner", "member", "editor"):
            raise ApiError(400, f"role: {role!r} is not one of owner, member, editor")
        search = query_text(call.request, "search")
        found: Page[MemberDetail] = Page(0, [])
        # imagegate adds members directly (no invitees) and has no editors.
        if call.request.query_params.get("type") != "invitee" and role != "editor":
            found = await self._services.orgs.list_members(
                org, search=search, role=role, offset=page.offset, limit=page.size
            )
        return members_page(call, self._public_url, page, found, call.member)

    async def add(self, call: Call) -> Response:
        org = call.params["org"]
        user = call.body["member"]
        team = call.body.get("team") or MEMBERS_TEAM
        if call.body.get("role") == "owner":
            team = "owners"
        # Audit (issue 5): OrganizationService.add_member is where members join.
        added = await self._services.orgs.add_member(org, user, team)
        member = await self._services.orgs.get_member(org, user)
        return json_response(member_body(member, with_email=True), 201 if added else 200)

    async def set_role(self, call: Call) -> Response:
        org = call.params["org"]
        member = await self._services.orgs.set_role(org, call.params["username"], call.body["role"])
        return json_response(member_body(member, with_email=True))

    async def remove(self, call: Call) -> Response:
        org = call.params["org"]
        username = call.params["username"]
        # Declared for members who write: owners remove anyone, a member only themselves.
        if username != call.user.username and call.member.role != "owner":
            raise ApiError(
                403,
                f"permission denied: only owners of organization {org} can remove other "
                "members; a member can only leave",
            )
        await self._services.orgs.remove_member(org, username)
        return no_content()

    def endpoints(self) -> list[Endpoint]:
        base = "/v2/orgs/{org}/members"
        member = f"{base}/{{username}}"
        query: dict[str, Json] = {
            "search": {"type": "string", "maxLength": 100},
            **PAGE_QUERY,
            "role": {"type": "string", "enum": ["owner", "editor", "member"]},
            "type": {"type": "string", "enum": ["all", "invitee", "member"]},
            "invites": {"type": "boolean"},
        }
        return [
            Endpoint(
                "GET",
                base,
                self.index,
                "Members, with their role and teams",
                reads(Who.MEMBER),
                query=query,
                responses={200: page_schema(MEMBER)},
                tag="members",
            ),
            Endpoint(
                "POST",
                base,
                self.add,
                "Add a user to the organization (owners)",
                writes(Who.OWNER),
                body=ADD_BODY,
                responses={201: MEMBER, 200: MEMBER},
                tag="members",
            ),
            Endpoint(
                "PUT",
                member,
                self.set_role,
                "Change a member's role (owners)",
                writes(Who.OWNER),
                body=ROLE_BODY,
                responses={200: MEMBER},
                tag="members",
            ),
            Endpoint(
                "DELETE",
                member,
                self.remove,
                "Remove a member from every team (owners; members may leave)",
                writes(Who.MEMBER),
                responses={204: None},
                tag="members",
            ),
        ]
