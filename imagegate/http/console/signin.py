"""Signing in (password or personal access token) and out."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imagegate.audit.events import AuditSink, signed_in_event
from imagegate.http.console.pages import Console, Need, Visit
from imagegate.services import TooManyAttempts

_MAX_FIELD = 1024


def _safe_next(target: str) -> str:
    """Only a console path: never another site (``//evil``) or a header injection."""
    if target.startswith("/console/") and not target.startswith("//") and target.isprintable():
        return target
    return "/console/"


class SignIn:
    def __init__(self, console: Console, audit: AuditSink) -> None:
        self.console = console
        self._audit = audit

    async def form(self, visit: Visit) -> Response:
        if visit.session.signed_in:
            return self.console.redirect(_safe_next(visit.query("next")))
        notice = "You are signed out." if visit.query("signed_out") else None
        return self.console.render(
            visit,
            "sign_in.html",
            username="",
            next=_safe_next(visit.query("next")),
            notice=notice,
        )

    async def submit(self, visit: Visit) -> Response:
        username = visit.field("username")
        secret = visit.field("secret")
        target = _safe_next(visit.field("next"))
        error = None
        if not username or not secret:
            error = "Enter your username and your password or access token."
        elif len(username) > _MAX_FIELD or len(secret) > _MAX_FIELD:
            error = "That username or password is too long."
        name = None
        if error is None:
            client = visit.request.client.host if visit.request.client else None
            try:
                name = await self.console.services.accounts.authenticate(
                    username, secret, client=client
                )
            except TooManyAttempts as exc:
                page = self.console.problem(visit, 429, "Too many sign-in attempts", exc.message)
                page.headers["Retry-After"] = str(exc.retry_after)
                return page
            self._audit.record(signed_in_event(username, name, via="console"))
        if name is None:
            return self.console.render(
                visit,
                "sign_in.html",
                status=401 if error is None else 400,
                username=username[:_MAX_FIELD],
                next=target,
                error=error or "Incorrect username, password or access token.",
            )
        response = self.console.redirect(target)
        self.console.cookies.write(visit.request, response, self.console.cookies.codec.new(name))
        return response

    async def sign_out(self, visit: Visit) -> Response:
        response = self.console.redirect("/console/sign-in?signed_out=1")
        self.console.cookies.clear(visit.request, response)
        return response

    def routes(self) -> list[BaseRoute]:
        page = self.console.page
        return [
            Route("/console/sign-in", page(self.form, Need.ANYONE), methods=["GET"]),
            Route("/console/sign-in", page(self.submit, Need.ANYONE), methods=["POST"]),
            Route("/console/sign-out", page(self.sign_out, Need.ANYONE), methods=["POST"]),
        ]
