"""How every console page runs: session, CSRF check, who may see it, and rendering.

Authorization is declared per route (a ``Need`` of ``core.authorization``: who, and
whether it writes) and checked here, before the handler, with the same rule as the
management API: member pages answer 404 to anyone outside the organization (its
existence is not disclosed), owner routes 403 to members, routes that write 403 to a
session made with a read-only access token, and every POST must carry the session's
CSRF token (403 otherwise, before the form is looked at any further).

The signed-in user comes from the cookie's server-side session, checked against its
credential on every request: a session whose token was revoked or whose password
changed is signed out at once, and enforce sign-in turns away a user outside the
allowed organizations.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from imagegate.audit.context import set_actor
from imagegate.core.authorization import (
    Need,
    Reach,
    Verdict,
    Who,
    credential_message,
    credential_verdict,
    membership_verdict,
)
from imagegate.core.inputs import first_text_problem
from imagegate.http.console.sessions import Session, SessionCookies
from imagegate.services import NotFound, Services
from imagegate.services.orgs import MemberInfo
from imagegate.services.sessions import Checked, Ended, SessionUser

CSRF_FIELD = "csrf_token"
# The problem page's title when a session's credential cannot do what was asked.
_CREDENTIAL_TITLES = {
    Verdict.PUBLIC_ONLY: "Public-read session",
    Verdict.TOKEN_SESSION: "Access token session",
    Verdict.READ_ONLY: "Read-only session",
}

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def templates() -> jinja2.Environment:
    """The console's templates: autoescaped, and a missing variable is an error."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("imagegate.http.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass(frozen=True)
class Org:
    """The organization in the path, as the signed-in member sees it."""

    name: str
    members: list[MemberInfo]
    teams: list[str]
    me: MemberInfo

    @property
    def is_owner(self) -> bool:
        return self.me.is_owner


@dataclass(frozen=True)
class Visit:
    """One request to a console page, with everything checked so far."""

    request: Request
    session: Session
    user: SessionUser | None  # None: nobody is signed in (or their session ended)
    form: FormData | None
    org_info: Org | None

    @property
    def username(self) -> str:
        assert self.user is not None, "a route for signed-in users was declared for anyone"
        return self.user.username

    @property
    def org(self) -> Org:
        assert self.org_info is not None, "a member or owner route was not declared"
        return self.org_info

    def field(self, name: str) -> str:
        """A text field of the posted form, stripped; empty when absent."""
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else ""

    def query(self, name: str) -> str:
        return self.request.query_params.get(name, "").strip()


Handler = Callable[[Visit], Awaitable[Response]]


class Console:
    """The console's shared machinery: services, templates and session cookies."""

    def __init__(self, services: Services, cookies: SessionCookies) -> None:
        self.services = services
        self.cookies = cookies
        self._templates = templates()

    # -- rendering ----------------------------------------------------------------------

    def render(
        self, visit: Visit, template: str, *, status: int = 200, **context: Any
    ) -> HTMLResponse:
        context.setdefault("error", None)
        context.setdefault("notice", None)
        context.setdefault("org", visit.org_info)
        context.setdefault("tab", None)
        user = visit.user
        html = self._templates.get_template(template).render(
            user=user.username if user is not None else None,
            # A read-only session sees the pages but changes nothing: the layout says so.
            read_only=user is not None and user.reach is not Reach.WRITE,
            csrf_token=visit.session.csrf_token,
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def problem(self, visit: Visit, status: int, title: str, message: str) -> HTMLResponse:
        return self.render(visit, "problem.html", status=status, title=title, message=message)

    @staticmethod
    def redirect(url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)

    # -- the checks every route goes through ----------------------------------------------

    def page(self, handler: Handler, need: Need) -> Callable[[Request], Awaitable[Response]]:
        """The route's endpoint: ``handler`` behind the checks ``need`` declares."""

        async def endpoint(request: Request) -> Response:
            session = self.cookies.read(request)
            fresh = session is None
            if session is None:
                session = self.cookies.codec.new(None)
            checked = Checked(None)
            if session.secret is not None:
                checked = await self.services.sessions.check(session.secret)
            if checked.ended is not None:  # forget the dead session; keep the form token
                session, fresh = Session(None, session.csrf_token, session.expires_at), True
            refusal, user = checked.refusal, checked.user
            if refusal is not None and need.who is Who.ANYONE:
                user = None  # signing out, or in as someone else, stays possible
            visit = Visit(request, session, user, None, None)
            if refusal is not None and user is not None:  # enforce sign-in: Docker's words
                response: Response = self.problem(visit, 403, "Sign-in refused", refusal.message)
            else:
                response = await self._checked(visit, handler, need, checked.ended)
            if fresh:
                self.cookies.write(request, response, session)
            return response

        return endpoint

    async def _checked(
        self, visit: Visit, handler: Handler, need: Need, ended: Ended | None
    ) -> Response:
        request = visit.request
        inputs = [*request.path_params.items(), *request.query_params.multi_items()]
        if request.method == "POST":
            refused = await self._read_form(visit)
            if isinstance(refused, Response):
                return refused
            visit = refused
            assert visit.form is not None
            inputs += [(k, v) for k, v in visit.form.multi_items() if isinstance(v, str)]
        found = first_text_problem(inputs)
        if found is not None:  # before any of it reaches the database
            return self.problem(visit, 400, "Not valid text", "{}: {}.".format(*found))
        verdict = credential_verdict(need, visit.user.caller if visit.user else None)
        if verdict is Verdict.SIGN_IN:
            if request.method == "GET":
                query = {"next": request.url.path, **({"ended": ended.value} if ended else {})}
                return self.redirect(f"/console/sign-in?{urlencode(query, quote_via=quote)}")
            why = f"{ended.message[:1].upper()}{ended.message[1:]}. " if ended else ""
            return self.problem(visit, 401, "Signed out", f"{why}Sign in again, then retry.")
        if verdict is not Verdict.ALLOWED:
            return self._refusal(visit, verdict, need)
        if need.in_org:
            org = await self._org(visit)
            # No such organization and not a member look alike here: 404 for both.
            role = ("owner" if org.is_owner else "member") if org is not None else None
            visit = Visit(visit.request, visit.session, visit.user, visit.form, org)
            verdict = membership_verdict(need, org is not None, role)
            if verdict is not Verdict.ALLOWED:
                return self._refusal(visit, verdict, need)
        set_actor(visit.username if visit.user else None)  # who changes anything, for audit
        return await handler(visit)

    def _refusal(self, visit: Visit, verdict: Verdict, need: Need) -> HTMLResponse:
        if verdict in (Verdict.NO_ORG, Verdict.NOT_MEMBER):
            return self.problem(
                visit, 404, "Not found", "There is no organization of yours by that name."
            )
        if verdict is Verdict.NOT_OWNER:
            what = "change this. Nothing was changed" if need.write else "see this page"
            return self.problem(
                visit, 403, "Owners only", f"Only owners of {visit.org.name} can {what}."
            )
        if verdict is Verdict.NOT_ADMIN:
            return self.problem(visit, 403, "Admins only", "Only gateway admins can do this.")
        message = credential_message(verdict)
        title = _CREDENTIAL_TITLES[verdict]
        text = f"{message[:1].upper()}{message[1:]}. Nothing was changed."
        return self.problem(visit, 403, title, text)

    async def _read_form(self, visit: Visit) -> Visit | Response:
        request = visit.request
        form = await request.form(max_files=0)  # at most 64 KiB: http.limits.BodyLimit
        given = form.get(CSRF_FIELD)
        if not isinstance(given, str) or not hmac.compare_digest(
            given.encode(), visit.session.csrf_token.encode()
        ):
            return self.problem(
                visit,
                403,
                "Form expired",
                "This form was not sent from this session of the console (it may have "
                "expired). Nothing was changed; reload the page and try again.",
            )
        return Visit(request, visit.session, visit.user, form, None)

    async def _org(self, visit: Visit) -> Org | None:
        name = str(visit.request.path_params.get("org", ""))
        try:
            members = await self.services.orgs.members(name)
            teams = await self.services.orgs.teams(name)
        except NotFound:
            return None
        me = next((m for m in members if m.username == visit.username), None)
        if me is None:
            return None
        return Org(name, members, teams, me)
