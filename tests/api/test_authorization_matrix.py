"""Who may call what: every route of the API and the console, by every kind of credential.

The API's routes come from the served OpenAPI document, the console's from the app's
route table; the test fails when either has a route the table (``authorization_table``)
has no row for, or the table a row for a route that does not exist. Every row is called
by every caller and the status compared with the row. Refused callers go first, and a
witness read before and after each shows that a refused change changed nothing. One
gateway serves the whole walk; rows act on objects of their own (made in ``_world``).
Also: an organization that does not exist is 404, nobody reaches another user's token,
and every refusal says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.routing import Mount, Route

from imagegate.core.categories import PublisherStatus
from tests.api.authorization_table import (
    API_ROWS,
    CALLERS,
    CONSOLE_ROWS,
    MEMBERS,
    NEW_USERS,
    PASSWORD_USERS,
    QA_MEMBERS,
    TESS_TOKENS,
    TOKEN_BASES,
    TOKEN_OWNER,
    Row,
)
from tests.api.conftest import Api, Reply, Visitor

_PLACEHOLDER = re.compile(r"\{(\w+)(?::\w+)?\}")
_METHODS = {"get", "put", "post", "patch", "delete"}


@dataclass
class World:
    """What the rows act on: each caller's credentials and each user's tokens."""

    bearers: dict[str, str | None]  # caller -> API bearer token
    visitors: dict[str, Visitor]  # caller -> console visitor
    tokens: dict[tuple[str, str], tuple[str, int]]  # (user, label) -> (uuid, id)


async def _world(api: Api) -> World:
    services = api.services
    await services.accounts.create_user("tess", None, "tess-password", admin=True)
    await services.orgs.add_member("acme", "tess", "owners")
    await services.orgs.create_team("acme", "qa")
    for caller in CALLERS:
        for name in (*NEW_USERS, *MEMBERS, *QA_MEMBERS):
            await services.accounts.create_user(f"{name}-{caller}", None, "a-password")
        for name in MEMBERS:
            await services.orgs.add_member("acme", f"{name}-{caller}")
        for name in QA_MEMBERS:
            await services.orgs.add_member("acme", f"{name}-{caller}", "qa")
        await services.orgs.create_team("acme", f"doomed-{caller}")
        for place in ("api", "console"):
            await services.allowlist.add("acme", f"someone/{place}-{caller}")
        await services.publishers.set_override(f"oldpub-{caller}", PublisherStatus.COMMUNITY)
    tokens = {}
    for user in set(TOKEN_OWNER.values()):
        for label in ("kept", "doomed-console", *(f"doomed{base}" for base in TOKEN_BASES)):
            token, _ = await services.accounts.create_token(user, label)
            tokens[user, label] = (token.uuid, token.id)

    bearers: dict[str, str | None] = {"anon": None}
    visitors = {"anon": await api.visitor()}
    for caller, user in PASSWORD_USERS.items():
        bearers[caller] = await api.login(user, f"{user}-password")
        visitors[caller] = await api.visitor(user)
    for caller, scopes in TESS_TOKENS.items():
        token, secret = await services.accounts.create_token("tess", caller, scopes=scopes)
        bearers[caller] = await api.login("tess", secret)
        visitors[caller] = await api.visitor()
        signed_in = await visitors[caller].sign_in("tess", secret)
        # The console signs in no public-read token: that visitor stays signed out.
        assert signed_in.status == (403 if caller == "pub" else 303), (caller, signed_in)
        if caller == "revoked":
            await services.accounts.update_token("tess", token.uuid, active=False)
    return World(bearers, visitors, tokens)


def _url(row: Row, caller: str, world: World, org: str = "acme") -> str:
    values = {"org": org, "account": org, "group": "devs", **row.params}
    owner = TOKEN_OWNER[caller]
    if "uuid" in values:
        values["uuid"] = world.tokens[owner, values["uuid"]][0]
    if "token_id" in values:
        values["token_id"] = str(world.tokens[owner, values["token_id"]][1])

    def value(match: re.Match[str]) -> str:
        return values[match.group(1)].replace("{c}", caller)

    return _PLACEHOLDER.sub(value, row.path)


def _filled(body: Any, caller: str) -> Any:
    """The row's body or form with ``{c}`` made the caller's name."""
    if isinstance(body, dict):
        return {key: _filled(item, caller) for key, item in body.items()}
    return body.replace("{c}", caller) if isinstance(body, str) else body


def _explains(status: int, reply: Reply, api_row: bool) -> str | None:
    """What is wrong with a refusal's body, or None."""
    if not api_row:
        ok = status == 303 or 'class="card narrow problem"' in reply.body
        return None if ok else f"no problem page: {reply.body[:200]!r}"
    body = reply.body
    text = body.get("message") or body.get("detail") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text.strip():
        return f"no message or detail: {body!r}"
    if status == 404 and "not found" not in text.lower():
        return f"404 without 'not found': {text!r}"
    return None


async def _call(api: Api, world: World, row: Row, caller: str, url: str) -> Reply:
    body = _filled(row.body, caller)
    if row in API_ROWS:
        return await api.call(row.method, url, json=body, bearer=world.bearers[caller])
    visitor = world.visitors[caller]
    form = (body or {}) if row.method == "POST" else None
    return await visitor.request(row.method, url, form, keep_cookie=True)


async def _walk(api: Api, world: World, rows: list[Row]) -> list[str]:
    failures: list[str] = []
    for row in rows:
        # Refused callers first: until one is allowed, nothing may change.
        order = sorted(CALLERS, key=lambda c: row.expect[c] < 400)
        for caller in order:
            url = _url(row, caller, world)
            before = await row.witness(api.services, caller) if row.witness else None
            reply = await _call(api, world, row, caller, url)
            where = f"{row.method} {url} as {caller}"
            if reply.status != row.expect[caller]:
                failures.append(f"{where}: {reply.status} (expected {row.expect[caller]})")
            if reply.status >= 400 and (problem := _explains(reply.status, reply, row in API_ROWS)):
                failures.append(f"{where}: {problem}")
            refused = reply.status >= 400
            if row.witness and refused and await row.witness(api.services, caller) != before:
                failures.append(f"{where}: refused with {reply.status} but changed the state")
    return failures


def _console_routes(api: Api) -> set[tuple[str, str]]:
    routes = set()
    for route in api.app.routes:
        if isinstance(route, Mount) and route.path.startswith("/console"):
            routes.add(("GET", f"{route.path}/{{path}}"))
        elif isinstance(route, Route) and (route.path == "/" or route.path.startswith("/console")):
            routes |= {(m, route.path) for m in route.methods or () if m != "HEAD"}
    return routes


async def test_every_route_by_every_credential(api: Api) -> None:
    reply = await api.call("GET", "/v2/openapi.json")
    assert reply.status == 200
    documented = {
        (method.upper(), path)
        for path, operations in reply.body["paths"].items()
        for method in operations
        if method in _METHODS
    }
    for served, rows in ((documented, API_ROWS), (_console_routes(api), CONSOLE_ROWS)):
        listed = [(row.method, row.path) for row in rows]
        assert len(listed) == len(set(listed)), "a (method, path) has two rows"
        assert served - set(listed) == set(), "routes without a row in authorization_table"
        assert set(listed) - served == set(), "rows for routes that do not exist"

    world = await _world(api)
    failures = await _nowhere(api, world)
    failures += await _foreign_tokens(api, world)
    failures += await _walk(api, world, API_ROWS)
    failures += await _walk(api, world, CONSOLE_ROWS)  # its last row signs everyone out
    assert failures == [], "\n".join(failures)


async def _nowhere(api: Api, world: World) -> list[str]:
    """An organization that does not exist is 404 to a signed-in outsider, on both edges."""
    failures = []
    for row in [*API_ROWS, *CONSOLE_ROWS]:
        if "{org}" in row.path or "{account}" in row.path:
            url = _url(row, "outsider", world, org="nowhere")
            reply = await _call(api, world, row, "outsider", url)
            if reply.status != 404 or _explains(404, reply, row in API_ROWS):
                failures.append(f"{row.method} {url} as outsider: {reply.status}")
    return failures


async def _foreign_tokens(api: Api, world: World) -> list[str]:
    """Another user's token uuid is 404 to everyone else, and stays as it was (a token
    session's change is refused before any lookup, as for its own tokens: 403)."""
    failures = []
    for base in TOKEN_BASES:
        path = f"{base}/{world.tokens['alice', 'kept'][0]}"
        before = await api.services.accounts.list_tokens("alice")
        for caller in ("member", "outsider", "admin", "rw"):
            for method, body in (("GET", None), ("PATCH", {"is_active": True}), ("DELETE", None)):
                bearer = world.bearers[caller]
                reply = await api.call(method, path, json=body, bearer=bearer)
                status = 403 if caller == "rw" and method != "GET" else 404
                if reply.status != status or _explains(status, reply, True):
                    failures.append(f"{method} {path} as {caller}: {reply.status} {reply.body!r}")
        if await api.services.accounts.list_tokens("alice") != before:
            failures.append(f"{path}: changed by another user")
    return failures
