"""The console's problem page for a request refused before any console route ran.

``http.limits.BodyLimit`` refuses a body that is too large before the console reads
the form, so no session was read: the page is the signed-out problem page.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse

from imagegate.core.errors import RegistryError
from imagegate.http.console.pages import SECURITY_HEADERS, templates


class ProblemPages:
    def __init__(self) -> None:
        self._template = templates().get_template("problem.html")

    def too_large(self, request: Request, error: RegistryError) -> HTMLResponse:
        html = self._template.render(
            user=None,
            read_only=False,
            csrf_token="",
            org=None,
            tab=None,
            notice=None,
            error=None,
            title="Too large",
            message=f"This was too large to accept: {error.message}. Nothing was changed.",
        )
        return HTMLResponse(html, status_code=error.status, headers=SECURITY_HEADERS)
