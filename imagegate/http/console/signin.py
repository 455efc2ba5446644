"""Signing in (password or personal access token) and out.

Signing in makes a server-side session (``services.sessions``) and a new cookie naming
it; signing out deletes the session, so a copy of the cookie is dead too. A
``repo:public_read`` token is not signed in at all: nothing in the console is public
(``core.authorization``), and enforce sign-in turns away users outside the allowed
organizations with Docker's own words.
"""

from __future__ import annotations

import datetime as dt

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from imagegate.audit.events import AuditSink, login
from imagegate.core.authorization import (
    ANYONE,
    Verdict,
    Who,
    credential_message,
    credential_verdict,
    reads,
)
from imagegate.http.console.pages import Console, Visit
from imagegate.services import TooManyAttempts
from imagegate.services.credentials import MAX_CREDENTIAL_LENGTH
from imagegate.services.sessions import Ended

VIA = "console"  # where logins here come from, in the audit trail
_ENDED_NOTICES = {
    Ended.UNKNOWN: "You were signed out, or the access token you signed in with was "
    "deactivated or deleted.",
    Ended.EXPIRED: "Your session expired. Sign in again.",
    Ended.PASSWORD_CHANGED: "Your password was changed, which signed you out. Sign in again.",
    Ended.TOKEN_REVOKED: "The access token you signed in with was deactivated, "
    "which signed you out. Sign in again.",
    Ended.TOKEN_EXPIRED: "The access token you signed in with expired, which signed you out.",
}


def _safe_next(target: str) -> str:
    """Only a console path: never another site (``//evil``) or a header injection."""
    if target.startswith("/console/") and not target.startswith("//") and target.isprintable():
        return target
    return "/console/"


def _notice(visit: Visit) -> str | None:
    if visit.query("signed_out"):
        return "You are signed out."
    try:
        return _ENDED_NOTICES[Ended(visit.query("ended"))]
    except ValueError:
        return None


class SignIn:
    def __init__(self, console: Console, audit: AuditSink) -> None:
        self.console = console
        self._audit = audit

    async def form(self, visit: Visit) -> Response:
        if visit.user is not None:
            return self.console.redirect(_safe_next(visit.query("next")))
        return self.console.render(
            visit,
            "sign_in.html",
            username="",
            next=_safe_next(visit.query("next")),
            notice=_notice(visit),
        )

    async def submit(self, visit: Visit) -> Response:
        username = visit.field("username")
        secret = visit.field("secret")
        target = _safe_next(visit.field("next"))
        if not username or not secret:
            error = "Enter your username and your password or access token."
            return self._again(visit, 400, username, target, error)
        if len(username) > MAX_CREDENTIAL_LENGTH or len(secret) > MAX_CREDENTIAL_LENGTH:
            return self._again(
                visit, 400, username, target, "That username or password is too long."
            )
        sessions = self.console.services.sessions
        lifetime = dt.timedelta(seconds=self.console.cookies.codec.lifetime)
        client = visit.request.client.host if visit.request.client else None
        try:
            signed_in = await sessions.sign_in(username, secret, lifetime=lifetime, client=client)
        except TooManyAttempts as exc:
            page = self.console.problem(visit, 429, "Too many sign-in attempts", exc.message)
            page.headers["Retry-After"] = str(exc.retry_after)
            return page
        user = signed_in.user
        if (
            user is not None
            and credential_verdict(reads(Who.USER), user.caller) is not Verdict.ALLOWED
        ):
            # The credential is right but reaches nothing here (a public-read token).
            await sessions.end(signed_in.secret)
            message = credential_message(Verdict.PUBLIC_ONLY)
            self._audit.record(
                login(
                    user.username, signed_in=False, outcome="public_read", reason=message, via=VIA
                )
            )
            return self._again(visit, 403, username, target, f"{message[:1].upper()}{message[1:]}.")
        self._audit.record(signed_in.audit_event(username, via=VIA))
        if user is None:
            if signed_in.refusal is not None:  # enforce sign-in: Docker's own words
                return self._again(visit, 403, username, target, signed_in.refusal.message)
            error = "Incorrect username, password or access token."
            return self._again(visit, 401, username, target, error)
        response = self.console.redirect(target)
        expires_at = int(user.expires_at.timestamp())
        cookie = self.console.cookies.codec.new(signed_in.secret, expires_at=expires_at)
        self.console.cookies.write(visit.request, response, cookie)
        return response

    def _again(self, visit: Visit, status: int, username: str, target: str, error: str) -> Response:
        """The form again, with what went wrong."""
        return self.console.render(
            visit,
            "sign_in.html",
            status=status,
            username=username[:MAX_CREDENTIAL_LENGTH],
            next=target,
            error=error,
        )

    async def sign_out(self, visit: Visit) -> Response:
        if visit.session.secret is not None:
            await self.console.services.sessions.end(visit.session.secret)
        response = self.console.redirect("/console/sign-in?signed_out=1")
        self.console.cookies.clear(visit.request, response)
        return response

    def routes(self) -> list[BaseRoute]:
        page = self.console.page
        return [
            Route("/console/sign-in", page(self.form, ANYONE), methods=["GET"]),
            Route("/console/sign-in", page(self.submit, ANYONE), methods=["POST"]),
            Route("/console/sign-out", page(self.sign_out, ANYONE), methods=["POST"]),
        ]
