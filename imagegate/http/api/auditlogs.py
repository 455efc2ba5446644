"""``/v2/auditlogs/{account}``: an organization's audit trail in Docker Hub's shape.

Owners only, as on Hub (where reading activity is an owner's right): members and outsiders
get 403, a missing organization 404. Reading needs no write rights, so an owner signed in
with a read-only token may read it. Logs come newest first, ``{"logs": [...]}`` with no
counts or links (Hub's shape). The organization's events are its own and its members'
registry decisions and logins, leaving out a member's events that belong to another
organization (``AuditQuery.own_only``), so one organization never reads another's.

``data`` is a map of strings (Hub's type): a change's ``before`` and ``after`` are JSON
text, every other non-string value is JSON too, and empty fields are left out.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from imagegate.audit.events import ACTIONS, GROUPS, AuditEvent
from imagegate.core.authorization import Who, reads
from imagegate.http.api.framework import (
    PAGE_QUERY,
    Call,
    Endpoint,
    Json,
    PageRequest,
    json_response,
    parse_date_time,
    query_text,
    rfc3339_short,
)
from imagegate.services import Services
from imagegate.services.audit import AuditQuery

_STRING: Json = {"type": "string"}
LOG: Json = {
    "type": "object",
    "required": ["account", "action", "name", "actor", "data", "timestamp", "action_description"],
    "properties": {
        "account": _STRING,
        "action": _STRING,
        "name": _STRING,
        "actor": {**_STRING, "description": "the username; empty for an anonymous client"},
        "data": {"type": "object", "additionalProperties": _STRING},
        "timestamp": {"type": "string", "format": "date-time"},
        "action_description": _STRING,
    },
}
LOGS: Json = {
    "type": "object",
    "required": ["logs"],
    "properties": {"logs": {"type": "array", "items": LOG}},
}
_ACTION: Json = {
    "type": "object",
    "required": ["name", "description", "label"],
    "properties": {"name": _STRING, "description": _STRING, "label": _STRING},
}
ACTIONS_BODY: Json = {
    "type": "object",
    "required": ["actions"],
    "properties": {
        "actions": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["label", "actions"],
                "properties": {
                    "label": _STRING,
                    "actions": {"type": "array", "items": _ACTION},
                },
            },
        }
    },
}
_TEXT: Json = {"type": "string", "maxLength": 255}
_DATE_TIME: Json = {"type": "string", "format": "date-time"}
QUERY: dict[str, Json] = {
    "action": {**_TEXT, "description": "a full name (registry.pull) or a group (org)"},
    "name": {**_TEXT, "description": "a repository, organization or username"},
    "actor": {**_TEXT, "description": "the username that caused the event"},
    "from": {**_DATE_TIME, "description": "from this time (inclusive)"},
    "to": {**_DATE_TIME, "description": "up to this time (exclusive)"},
    **PAGE_QUERY,
}
# Registry decisions and logins: the columns Hub has no field for go into ``data``.
_DETAILS = (
    "decision",
    "reason",
    "repository",
    "reference",
    "digest",
    "category",
    "outcome",
    "client_ip",
    "user_agent",
)
_JSON_ALWAYS = frozenset({"before", "after"})


def _text(key: str, value: Any) -> str:
    if isinstance(value, str) and key not in _JSON_ALWAYS:
        return value
    return json.dumps(value, sort_keys=True, default=str)


def log_data(event: AuditEvent) -> dict[str, str]:
    """Every detail of the event as Hub's map of strings."""
    data = {key: _text(key, value) for key, value in event.data.items()}
    for key in _DETAILS:
        value = getattr(event, key)
        if value is not None and value != "":
            data[key] = str(value)
    return data


def description(event: AuditEvent) -> str:
    """Hub's ``action_description``: what was done (the actor is a field of its own)."""
    action = ACTIONS.get(event.action)
    text = action.description if action is not None else event.action
    if event.name:
        text = f"{text}: {event.name}"
    if event.decision is not None:
        text = f"{text} ({event.decision})"
    return text


def log_entry(account: str, event: AuditEvent) -> Json:
    return {
        # A member's event may belong to no organization (an official image); it is
        # listed here because the actor is this organization's member.
        "account": event.account or account,
        "action": event.action,
        "name": event.name,
        "actor": event.actor or "",
        "data": log_data(event),
        "timestamp": rfc3339_short(event.timestamp),
        "action_description": description(event),
    }


def actions_catalog() -> Json:
    groups: dict[str, Json] = {
        group: {"label": label, "actions": []} for group, label in GROUPS.items()
    }
    for action in ACTIONS.values():
        groups[action.group]["actions"].append(
            {"name": action.name, "description": action.description, "label": action.label}
        )
    return {"actions": groups}


class AuditLogsApi:
    def __init__(self, services: Services) -> None:
        self._services = services

    async def logs(self, call: Call) -> Response:
        account = call.params["account"]
        request = call.request
        page = PageRequest.of(request)
        bounds = {
            key: parse_date_time(request.query_params[key], key)
            for key in ("from", "to")
            if request.query_params.get(key)
        }
        query = AuditQuery(
            org=account,
            own_only=True,
            action=query_text(request, "action", 255) or None,
            name=query_text(request, "name", 255) or None,
            user=query_text(request, "actor", 255) or None,
            since=bounds.get("from"),
            until=bounds.get("to"),
            limit=page.size,
            offset=page.offset,
        )
        events = await self._services.audit.query(query, newest_first=True)
        return json_response({"logs": [log_entry(account, event) for event in events]})

    async def actions(self, call: Call) -> Response:
        return json_response(actions_catalog())

    def endpoints(self) -> list[Endpoint]:
        base = "/v2/auditlogs/{account}"
        return [
            Endpoint(
                "GET",
                base,
                self.logs,
                "An organization's audit logs, newest first (owners)",
                reads(Who.OWNER),
                org="account",
                query=QUERY,
                responses={200: LOGS},
                tag="auditlogs",
            ),
            Endpoint(
                "GET",
                f"{base}/actions",
                self.actions,
                "The actions audit logs record, by group (owners)",
                reads(Who.OWNER),
                org="account",
                responses={200: ACTIONS_BODY},
                tag="auditlogs",
            ),
        ]
