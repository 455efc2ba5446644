"""Personal access tokens: every user creates, lists and deactivates their own.

A new token's secret is shown once, on the page that answers the creating POST (never
in a URL, never again); the list shows only what ``TokenInfo`` holds. Creating and
deactivating need a session signed in with a password (``MANAGE``); a session signed in
with an access token sees its tokens, with the form disabled and a note saying why.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imagegate.core.authorization import (
    Verdict,
    Who,
    credential_verdict,
    manages_credentials,
    reads,
)
from imagegate.core.inputs import whole_number
from imagegate.http.console.pages import Console, Visit
from imagegate.services import InvalidInput, NotFound

EXPIRY_CHOICES = (("", "Never"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year"))
MANAGE = manages_credentials(Who.USER)  # what creating and deactivating need


class Tokens:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.accounts = console.services.accounts

    async def show(self, visit: Visit, *, status: int = 200, **context: Any) -> Response:
        tokens = await self.accounts.list_tokens(visit.username)
        context.setdefault("new_token", None)
        context.setdefault("description", "")
        caller = visit.user.caller if visit.user is not None else None
        context["can_manage"] = credential_verdict(MANAGE, caller) is Verdict.ALLOWED
        if visit.query("done") == "deactivated":
            context.setdefault("notice", "Token deactivated: it no longer signs in.")
        return self.console.render(
            visit,
            "tokens.html",
            status=status,
            tab="tokens",
            org=None,
            tokens=sorted(tokens, key=lambda t: (not t.active, -t.id)),
            expiry_choices=EXPIRY_CHOICES,
            **context,
        )

    async def page(self, visit: Visit) -> Response:
        return await self.show(visit)

    async def create(self, visit: Visit) -> Response:
        description = visit.field("description")
        expiry = visit.field("expires_in_days")
        if expiry not in {value for value, _ in EXPIRY_CHOICES}:
            return await self.show(visit, status=400, error="Choose when the token expires.")
        try:
            info, secret = await self.accounts.create_token(
                visit.username, description, int(expiry) if expiry else None
            )
        except InvalidInput as exc:
            text = str(exc)
            return await self.show(
                visit, status=400, error=text[:1].upper() + text[1:] + ".", description=""
            )
        return await self.show(visit, new_token=(info, secret))

    async def deactivate(self, visit: Visit) -> Response:
        raw = str(visit.request.path_params["token_id"])
        # Read here, not by the route: Starlette's int converter fails with a 500 past
        # 4300 digits, and the database past 64 bits.
        token_id = whole_number(raw)
        if token_id is None:
            return await self.show(visit, status=400, error=f"{raw[:40]!r} is no token number.")
        try:
            await self.accounts.deactivate_token(visit.username, token_id)
        except NotFound:
            return await self.show(visit, status=404, error="You have no such token.")
        return self.console.redirect("/console/tokens?done=deactivated")

    def routes(self) -> list[BaseRoute]:
        page = self.console.page
        return [
            Route("/console/tokens", page(self.page, reads(Who.USER)), methods=["GET"]),
            Route("/console/tokens", page(self.create, MANAGE), methods=["POST"]),
            Route(
                "/console/tokens/{token_id}/deactivate",
                page(self.deactivate, MANAGE),
                methods=["POST"],
            ),
        ]
