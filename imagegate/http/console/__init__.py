"""The web console: server-rendered pages for owners and members (no JavaScript framework).

Modules, one concept each: ``sessions`` (signed cookies carrying the CSRF token and the
secret of a server-side session, ``services.sessions``), ``pages`` (what every page goes
through: session, CSRF, the route's declared ``Need``, rendering), then one module per
area: ``signin``, ``home``, ``image_access`` (with the allowlist and "try a pull"),
``members``, ``tokens`` and ``activity`` (the audit trail, with its charts drawn from
``charts``' pure geometry). Templates live in ``templates/``, the one stylesheet and the
copy button's few lines of script in ``static/``.
"""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from imagegate.audit.events import AuditSink
from imagegate.config import Settings
from imagegate.http.console.activity import Activity
from imagegate.http.console.home import Home
from imagegate.http.console.image_access import ImageAccess
from imagegate.http.console.members import Members
from imagegate.http.console.pages import Console
from imagegate.http.console.sessions import SessionCodec, SessionCookies, load_or_create_key
from imagegate.http.console.signin import SignIn
from imagegate.http.console.tokens import Tokens
from imagegate.services import Services

STATIC_DIR = Path(__file__).parent / "static"


def routes(settings: Settings, services: Services, audit: AuditSink) -> list[BaseRoute]:
    """The console's routes, under ``/console`` (and ``/``, which leads there)."""
    codec = SessionCodec(load_or_create_key(settings.keys_dir))
    console = Console(services, SessionCookies(codec, settings.public_url))
    return [
        *Home(console).routes(),
        *SignIn(console, audit).routes(),
        *ImageAccess(console).routes(),
        *Members(console).routes(),
        *Tokens(console).routes(),
        *Activity(console).routes(),
        Mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static"),
    ]
