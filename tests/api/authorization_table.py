"""The table of who may call what, for every route of the API and of the console.

Written by hand from the README and Docker Hub's rules, never derived from the code's own
declarations: ``test_authorization_matrix`` compares the gateway with it.

The callers, one credential each:

========  ==========================================================================
anon      nobody signed in
ro        a ``repo:read`` token of ``tess`` (owner of acme and a gateway admin)
pub       a ``repo:public_read`` token of ``tess``
rw        a ``repo:write`` token of ``tess``
revoked   a ``repo:write`` token of ``tess``, deactivated after signing in with it
member    ``bob``'s password (a member of acme)
owner     ``alice``'s password (an owner of acme)
outsider  ``dave``'s password (in no organization)
admin     ``root``'s password (a gateway admin in no organization)
========  ==========================================================================

A token of ``tess`` reaches as far as its scopes let it: ``rw`` may do everything but
manage access tokens (a password session only, as on Docker Hub), ``ro`` read everything
and change nothing, ``pub`` nothing beyond what anonymous callers get (the API and the
console hold nothing public), ``revoked`` nothing at all. In paths,
bodies and forms ``{c}`` is the caller's name, so every caller acts on objects of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from imagegate.core.categories import PublisherStatus
from imagegate.services import Services

CALLERS = ("anon", "ro", "pub", "rw", "revoked", "member", "owner", "outsider", "admin")
TESS_TOKENS = {"ro": ["repo:read"], "pub": ["repo:public_read"], "rw": ["repo:write"]}
TESS_TOKENS["revoked"] = ["repo:write"]
PASSWORD_USERS = {"member": "bob", "owner": "alice", "outsider": "dave", "admin": "root"}
# Whose tokens a caller's token rows act on; anonymous names the owner's.
TOKEN_OWNER = {"anon": "alice", **dict.fromkeys(TESS_TOKENS, "tess"), **PASSWORD_USERS}
# Per-caller objects (see world): users to add, users in acme, users in acme's team qa.
NEW_USERS = ("aerin", "cerin")
MEMBERS = ("afrank", "agus", "cgus", "aivan", "civan")
QA_MEMBERS = ("ahank", "chank")

Witness = Callable[[Services, str], Awaitable[Any]]  # (services, caller) -> a state


async def settings(services: Services, caller: str) -> Any:
    return await services.access.get_settings("acme")


async def mirrored(services: Services, caller: str) -> Any:
    return await services.access.upstream_namespace("acme")


async def allowlist(services: Services, caller: str) -> Any:
    return await services.allowlist.list("acme")


async def members(services: Services, caller: str) -> Any:
    return await services.orgs.members("acme")


async def teams(services: Services, caller: str) -> Any:
    return await services.orgs.list_teams("acme")


async def tokens(services: Services, caller: str) -> Any:
    return await services.accounts.list_tokens(TOKEN_OWNER[caller])


async def publishers(services: Services, caller: str) -> Any:
    return await services.publishers.list_overrides()


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # the route's template, as the OpenAPI document or the router spells it
    expect: dict[str, int]  # caller -> status
    params: dict[str, str] = field(default_factory=dict)  # path values besides org
    body: Any = None  # the API's JSON body, or the console's form fields
    witness: Witness | None = None  # a state a refused caller must leave unchanged


def statuses(**by_caller: int) -> dict[str, int]:
    assert set(by_caller) == set(CALLERS), set(CALLERS) ^ set(by_caller)
    return by_caller


def everyone(status: int) -> dict[str, int]:
    return dict.fromkeys(CALLERS, status)


# --- the API: 401 signed out, 403 not allowed, 404 outside nothing ----------------------


def api_org_read() -> dict[str, int]:
    """Members and owners read an organization; tokens of tess (an owner) as far as they reach."""
    return statuses(
        anon=401, ro=200, pub=403, rw=200, revoked=401,
        member=200, owner=200, outsider=403, admin=403,
    )  # fmt: skip


def api_owner_read() -> dict[str, int]:
    return {**api_org_read(), "member": 403}


def api_owner_write(ok: int) -> dict[str, int]:
    return statuses(
        anon=401, ro=403, pub=403, rw=ok, revoked=401,
        member=403, owner=ok, outsider=403, admin=403,
    )  # fmt: skip


def api_own_read(ok: int) -> dict[str, int]:
    """Every signed-in user reads their own tokens; a public-read token does not."""
    return statuses(
        anon=401, ro=ok, pub=403, rw=ok, revoked=401,
        member=ok, owner=ok, outsider=ok, admin=ok,
    )  # fmt: skip


def api_own_write(ok: int) -> dict[str, int]:
    return {**api_own_read(ok), "ro": 403}


def api_own_tokens(ok: int) -> dict[str, int]:
    """Managing one's access tokens: with a password only, never with a token."""
    return {**api_own_write(ok), "rw": 403}


def api_admin_read(ok: int) -> dict[str, int]:
    return statuses(
        anon=401, ro=ok, pub=403, rw=ok, revoked=401,
        member=403, owner=403, outsider=403, admin=ok,
    )  # fmt: skip


def api_admin_write(ok: int) -> dict[str, int]:
    return {**api_admin_read(ok), "ro": 403}


STRICT = {
    "restricted_images": {
        "enabled": True,
        "allow_official_images": False,
        "allow_verified_publishers": False,
    }
}
ORG = "/v2/orgs/{org}"
GROUP = f"{ORG}/groups/{{group}}"
ALLOWLIST = f"{ORG}/settings/image-access/allowlist"


def _token_rows(base: str) -> list[Row]:
    """Self-service: every user signed in with a password manages their own tokens; a
    token session reads them."""
    one = f"{base}/{{uuid}}"
    return [
        Row("GET", base, api_own_read(200)),
        Row(
            "POST",
            base,
            api_own_tokens(201),
            body={"token_label": "matrix", "scopes": ["repo:read"]},
            witness=tokens,
        ),
        Row("GET", one, api_own_read(200), params={"uuid": "kept"}),
        Row(
            "PATCH",
            one,
            api_own_tokens(200),
            params={"uuid": "kept"},
            body={"token_label": "renamed", "is_active": False},
            witness=tokens,
        ),
        Row("DELETE", one, api_own_tokens(204), params={"uuid": f"doomed{base}"}, witness=tokens),
    ]


TOKEN_BASES = ("/v2/access-tokens", "/v2/api_tokens")  # Hub's path and hub-tool's alias
API_ROWS = [
    Row(
        "POST",
        "/v2/users/login",
        everyone(200),
        body={"username": "dave", "password": "dave-password"},
    ),
    Row(
        "POST",
        "/v2/auth/token",
        everyone(200),
        body={"identifier": "dave", "secret": "dave-password"},
    ),
    Row("GET", f"{ORG}/settings", api_org_read()),
    Row("PUT", f"{ORG}/settings", api_owner_write(200), body=STRICT, witness=settings),
    Row("GET", f"{ORG}/settings/upstream-namespace", api_org_read()),
    Row(
        "PUT",
        f"{ORG}/settings/upstream-namespace",
        api_owner_write(200),
        body={"upstream_namespace": "acme-api-{c}"},
        witness=mirrored,
    ),
    Row("GET", ALLOWLIST, api_org_read()),
    Row(
        "POST",
        ALLOWLIST,
        api_owner_write(201),
        body={"repository": "matrix/api-{c}"},
        witness=allowlist,
    ),
    Row(
        "DELETE",
        f"{ALLOWLIST}/{{namespace}}/{{repo}}",
        api_owner_write(204),
        params={"namespace": "someone", "repo": "api-{c}"},
        witness=allowlist,
    ),
    Row("GET", f"{ORG}/members", api_org_read()),
    Row(
        "POST",
        f"{ORG}/members",
        api_owner_write(201),
        body={"member": "aerin-{c}"},
        witness=members,
    ),
    Row(
        "PUT",
        f"{ORG}/members/{{username}}",
        api_owner_write(200),
        params={"username": "afrank-{c}"},
        body={"role": "owner"},
        witness=members,
    ),
    # Removing someone else is for owners (a member may only leave: test_sessions).
    Row(
        "DELETE",
        f"{ORG}/members/{{username}}",
        api_owner_write(204),
        params={"username": "agus-{c}"},
        witness=members,
    ),
    Row("GET", f"{ORG}/groups", api_org_read()),
    Row(
        "POST",
        f"{ORG}/groups",
        api_owner_write(201),
        body={"name": "new-{c}"},
        witness=teams,
    ),
    Row("GET", GROUP, api_org_read()),
    Row(
        "PUT",
        GROUP,
        api_owner_write(200),
        body={"name": "devs", "description": "put by the matrix"},
        witness=teams,
    ),
    Row(
        "PATCH",
        GROUP,
        api_owner_write(200),
        body={"description": "patched by the matrix"},
        witness=teams,
    ),
    Row("DELETE", GROUP, api_owner_write(204), params={"group": "doomed-{c}"}, witness=teams),
    Row("GET", f"{GROUP}/members", api_org_read()),
    Row(
        "POST",
        f"{GROUP}/members",
        api_owner_write(200),
        body={"member": "aivan-{c}"},
        witness=members,
    ),
    Row(
        "DELETE",
        f"{GROUP}/members/{{username}}",
        api_owner_write(204),
        params={"group": "qa", "username": "ahank-{c}"},
        witness=members,
    ),
    *[row for base in TOKEN_BASES for row in _token_rows(base)],
    Row("GET", "/v2/publishers", api_admin_read(200)),
    Row(
        "PUT",
        "/v2/publishers/{namespace}",
        api_admin_write(200),
        params={"namespace": "newpub"},
        body={"status": PublisherStatus.VERIFIED_PUBLISHER.value},
        witness=publishers,
    ),
    Row(
        "DELETE",
        "/v2/publishers/{namespace}",
        api_admin_write(204),
        params={"namespace": "oldpub-{c}"},
        witness=publishers,
    ),
    # Audit logs are read by owners only; the organization is the account in the path.
    Row("GET", "/v2/auditlogs/{account}", api_owner_read()),
    Row("GET", "/v2/auditlogs/{account}/actions", api_owner_read()),
]


# --- the console: pages redirect to sign-in, forms answer 401; outsiders get 404 -----------


def console_page() -> dict[str, int]:
    """A page for any signed-in user; the signed out (and a public-read token, which the
    console does not sign in) are sent to sign in."""
    return statuses(
        anon=303, ro=200, pub=303, rw=200, revoked=303,
        member=200, owner=200, outsider=200, admin=200,
    )  # fmt: skip


def console_org_page() -> dict[str, int]:
    """An organization's page: 404 to outsiders, so its existence is not disclosed."""
    return {**console_page(), "outsider": 404, "admin": 404}


def console_owner_page() -> dict[str, int]:
    return {**console_org_page(), "member": 403}


def console_form(ok: int) -> dict[str, int]:
    """A change any signed-in user may make to their own things."""
    return statuses(
        anon=401, ro=403, pub=401, rw=ok, revoked=401,
        member=ok, owner=ok, outsider=ok, admin=ok,
    )  # fmt: skip


def console_tokens_form(ok: int) -> dict[str, int]:
    """Managing one's access tokens: with a password only, never with a token."""
    return {**console_form(ok), "rw": 403}


def console_owner_form() -> dict[str, int]:
    return {**console_form(303), "member": 403, "outsider": 404, "admin": 404}


SIGNED_OUT = ("anon", "pub", "revoked")
CONSOLE_ORG = "/console/orgs/{org}"
IMAGE_ACCESS = f"{CONSOLE_ORG}/image-access"
TEAM = f"{CONSOLE_ORG}/teams/{{team}}/members"
RESTRICTED = {"enabled": "on", "official": "restricted", "verified": "restricted"}
CONSOLE_ROWS = [
    Row("GET", "/", everyone(303)),
    Row("GET", "/console", everyone(303)),
    Row("GET", "/console/static/{path}", everyone(200), params={"path": "console.css"}),
    Row("GET", "/console/sign-in", {c: 200 if c in SIGNED_OUT else 303 for c in CALLERS}),
    Row(
        "POST",
        "/console/sign-in",
        everyone(303),
        body={"username": "dave", "secret": "dave-password"},
    ),
    Row("GET", "/console/", console_page()),
    Row("GET", CONSOLE_ORG, console_org_page()),
    Row("GET", IMAGE_ACCESS, console_org_page()),
    Row(
        "POST",
        IMAGE_ACCESS,
        console_owner_form(),
        body={**RESTRICTED, "community": "restricted"},
        witness=settings,
    ),
    Row(
        "POST",
        f"{IMAGE_ACCESS}/upstream-namespace",
        console_owner_form(),
        body={"upstream_namespace": "acme-console-{c}"},
        witness=mirrored,
    ),
    Row(
        "POST",
        f"{IMAGE_ACCESS}/allowlist/add",
        console_owner_form(),
        body={"repository": "matrix/console-{c}"},
        witness=allowlist,
    ),
    Row(
        "POST",
        f"{IMAGE_ACCESS}/allowlist/remove",
        console_owner_form(),
        body={"repository": "someone/console-{c}"},
        witness=allowlist,
    ),
    Row("GET", f"{CONSOLE_ORG}/members", console_org_page()),
    Row(
        "POST",
        f"{CONSOLE_ORG}/members/add",
        console_owner_form(),
        body={"username": "cerin-{c}"},
        witness=members,
    ),
    Row(
        "POST",
        f"{CONSOLE_ORG}/members/remove",
        console_owner_form(),
        body={"username": "cgus-{c}"},
        witness=members,
    ),
    Row(
        "POST",
        f"{CONSOLE_ORG}/teams/add",
        console_owner_form(),
        body={"team": "cnew-{c}"},
        witness=teams,
    ),
    Row(
        "POST",
        f"{TEAM}/add",
        console_owner_form(),
        params={"team": "devs"},
        body={"username": "civan-{c}"},
        witness=members,
    ),
    Row(
        "POST",
        f"{TEAM}/remove",
        console_owner_form(),
        params={"team": "qa"},
        body={"username": "chank-{c}"},
        witness=members,
    ),
    Row("GET", f"{CONSOLE_ORG}/activity", console_owner_page()),
    Row("GET", "/console/tokens", console_page()),
    Row(
        "POST",
        "/console/tokens",
        console_tokens_form(200),
        body={"description": "matrix", "expires_in_days": ""},
        witness=tokens,
    ),
    Row(
        "POST",
        "/console/tokens/{token_id}/deactivate",
        console_tokens_form(303),
        params={"token_id": "doomed-console"},
        witness=tokens,
    ),
    # Last: it ends each caller's session.
    Row("POST", "/console/sign-out", everyone(303)),
]
