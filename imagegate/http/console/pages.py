"""How every console page runs: session, CSRF check, who may see it, and rendering.

Authorization is declared per route (``Need``) and checked here, before the handler:
``MEMBER`` pages answer 404 to anyone outside the organization (its existence is not
disclosed), ``OWNER`` routes answer 403 to members, and every POST must carry the
session's CSRF token (403 otherwise, before the form is looked at any further).
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from imagegate.audit.context import set_actor
from imagegate.core.inputs import text_problem
from imagegate.http.console.sessions import Session, SessionCookies
from imagegate.services import NotFound, Services
from imagegate.services.orgs import MemberInfo

CSRF_FIELD = "csrf_token"
MAX_FORM_BYTES = 64 * 1024

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


class Need(enum.IntEnum):
    """What a visitor must be for a route; each level includes the ones before it."""

    ANYONE = 0
    USER = 1  # signed in
    MEMBER = 2  # a member of the organization in the path
    OWNER = 3  # an owner of it


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
    form: FormData | None
    org_info: Org | None

    @property
    def username(self) -> str:
        assert self.session.username is not None, "a Need.USER route was not declared"
        return self.session.username

    @property
    def org(self) -> Org:
        assert self.org_info is not None, "a Need.MEMBER route was not declared"
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
        self._templates = jinja2.Environment(
            loader=jinja2.PackageLoader("imagegate.http.console", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    # -- rendering ----------------------------------------------------------------------

    def render(
        self, visit: Visit, template: str, *, status: int = 200, **context: Any
    ) -> HTMLResponse:
        context.setdefault("error", None)
        context.setdefault("notice", None)
        context.setdefault("org", visit.org_info)
        context.setdefault("tab", None)
        html = self._templates.get_template(template).render(
            user=visit.session.username, csrf_token=visit.session.csrf_token, **context
        )
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def problem(self, visit: Visit, status: int, title: str, message: str) -> HTMLResponse:
        return self.render(visit, "problem.html", status=status, title=title, message=message)

    @staticmethod
    def redirect(url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)

    # -- the checks every route goes through ----------------------------------------------

    def page(
        self, handler: Handler, need: Need = Need.USER
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = self.cookies.read(request)
            fresh = session is None
            if session is None:
                session = self.cookies.codec.new(None)
            visit = Visit(request, session, None, None)
            response = await self._checked(visit, handler, need)
            if fresh:
                self.cookies.write(request, response, session)
            return response

        return endpoint

    async def _checked(self, visit: Visit, handler: Handler, need: Need) -> Response:
        request = visit.request
        inputs = [*request.path_params.items(), *request.query_params.multi_items()]
        if request.method == "POST":
            refused = await self._read_form(visit)
            if isinstance(refused, Response):
                return refused
            visit = refused
            assert visit.form is not None
            inputs += [(k, v) for k, v in visit.form.multi_items() if isinstance(v, str)]
        for name, value in inputs:
            problem = text_problem(str(value))
            if problem is not None:  # before any of it reaches the database
                return self.problem(visit, 400, "Not valid text", f"{name}: {problem}.")
        if need >= Need.USER and not visit.session.signed_in:
            if request.method == "GET":
                return self.redirect(f"/console/sign-in?next={quote(request.url.path)}")
            return self.problem(visit, 401, "Signed out", "Sign in again, then retry.")
        if need >= Need.MEMBER:
            org = await self._org(visit)
            if org is None:
                return self.problem(
                    visit, 404, "Not found", "There is no organization of yours by that name."
                )
            visit = Visit(visit.request, visit.session, visit.form, org)
            if need >= Need.OWNER and not org.is_owner:
                what = (
                    "see this page"
                    if visit.request.method == "GET"
                    else "change this. Nothing was changed"
                )
                return self.problem(
                    visit, 403, "Owners only", f"Only owners of {org.name} can {what}."
                )
        set_actor(visit.session.username)  # the audit trail names who changes anything
        return await handler(visit)

    async def _read_form(self, visit: Visit) -> Visit | Response:
        request = visit.request
        length = request.headers.get("content-length", "")
        if not length.isdigit() or int(length) > MAX_FORM_BYTES:
            return self.problem(visit, 413, "Form too large", "The form was too large to accept.")
        form = await request.form(max_files=0)
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
        return Visit(request, visit.session, form, None)

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
