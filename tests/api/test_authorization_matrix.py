"""Who may call what, for every endpoint of the served OpenAPI document.

One table row per (method, path) of ``/v2/openapi.json``; the test fails when the document
lists an endpoint the table does not (or the other way round). Each row is called by an org
owner (``alice``), a member (``bob``), a signed-in outsider (``dave``) and anonymously, and
by the gateway admin (``root``) where the row says so. Refused callers go first, and a
read taken before and after them shows that a refused mutation changed nothing. Every row
acts on objects of its own (made in ``_world``), so rows run in table order on one gateway.
Also: an organization that does not exist is 404, and nobody reaches another user's token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from imagegate.core.categories import PublisherStatus
from tests.api.conftest import Api

ORG_PREFIX = "/v2/orgs/"
CALLERS: dict[str, str | None] = {
    "anonymous": None,
    "outsider": "dave",
    "member": "bob",
    "owner": "alice",
    "admin": "root",
}
# Token rows act on each caller's own token; anonymous names the owner's.
TOKEN_OWNER = {
    "anonymous": "alice",
    "outsider": "dave",
    "member": "bob",
    "owner": "alice",
    "admin": "root",
}
STRICT = {
    "restricted_images": {
        "enabled": True,
        "allow_official_images": False,
        "allow_verified_publishers": False,
    }
}


def members_read() -> dict[str, int]:
    """Org reads: members and owners, not outsiders."""
    return {"anonymous": 401, "outsider": 403, "member": 200, "owner": 200}


def owners_only(success: int) -> dict[str, int]:
    return {"anonymous": 401, "outsider": 403, "member": 403, "owner": success}


def self_service(success: int) -> dict[str, int]:
    return {"anonymous": 401, "outsider": success, "member": success, "owner": success}


def admins_only(success: int) -> dict[str, int]:
    return {"anonymous": 401, "outsider": 403, "member": 403, "owner": 403, "admin": success}


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # the OpenAPI template
    expect: dict[str, int]  # caller -> status
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None
    # (path, user): a read that a refused caller must leave unchanged
    witness: tuple[str, str] | None = None


TOKEN_BASES = ("/v2/access-tokens", "/v2/api_tokens")  # Hub's path and hub-tool's alias


def token_rows(base: str) -> list[Row]:
    """Self-service: every signed-in user manages their own tokens."""
    one = f"{base}/{{uuid}}"
    return [
        Row("GET", base, self_service(200)),
        Row(
            "POST",
            base,
            self_service(201),
            body={"token_label": "matrix", "scopes": ["repo:read"]},
            witness=(base, "alice"),
        ),
        Row("GET", one, self_service(200)),
        Row(
            "PATCH",
            one,
            self_service(200),
            body={"token_label": "renamed", "is_active": False},
            witness=(base, "alice"),
        ),
        Row(
            "DELETE",
            one,
            self_service(204),
            params={"uuid": f"doomed{base}"},
            witness=(base, "alice"),
        ),
    ]


GROUP = "/v2/orgs/{org}/groups/{group}"
ALLOWLIST = "/v2/orgs/acme/settings/image-access/allowlist"
ROWS = [
    Row(
        "POST",
        "/v2/users/login",
        {c: 200 for c in CALLERS if c != "admin"},
        body={"username": "dave", "password": "dave-password"},
    ),
    Row(
        "POST",
        "/v2/auth/token",
        {c: 200 for c in CALLERS if c != "admin"},
        body={"identifier": "dave", "secret": "dave-password"},
    ),
    Row("GET", "/v2/orgs/{org}/settings", members_read()),
    Row(
        "PUT",
        "/v2/orgs/{org}/settings",
        owners_only(200),
        body=STRICT,
        witness=("/v2/orgs/acme/settings", "alice"),
    ),
    Row("GET", "/v2/orgs/{org}/settings/upstream-namespace", members_read()),
    Row(
        "PUT",
        "/v2/orgs/{org}/settings/upstream-namespace",
        owners_only(200),
        body={"upstream_namespace": "acme-inc"},
        witness=("/v2/orgs/acme/settings/upstream-namespace", "alice"),
    ),
    Row("GET", "/v2/orgs/{org}/settings/image-access/allowlist", members_read()),
    Row(
        "POST",
        "/v2/orgs/{org}/settings/image-access/allowlist",
        owners_only(201),
        body={"repository": "nginx"},
        witness=(ALLOWLIST, "alice"),
    ),
    Row(
        "DELETE",
        "/v2/orgs/{org}/settings/image-access/allowlist/{namespace}/{repo}",
        owners_only(204),
        params={"namespace": "someone", "repo": "tool"},
        witness=(ALLOWLIST, "alice"),
    ),
    Row("GET", "/v2/orgs/{org}/members", members_read()),
    Row(
        "POST",
        "/v2/orgs/{org}/members",
        owners_only(201),
        body={"member": "erin"},
        witness=("/v2/orgs/acme/members", "alice"),
    ),
    Row(
        "PUT",
        "/v2/orgs/{org}/members/{username}",
        owners_only(200),
        params={"username": "frank"},
        body={"role": "owner"},
        witness=("/v2/orgs/acme/members", "alice"),
    ),
    Row(
        "DELETE",
        "/v2/orgs/{org}/members/{username}",
        owners_only(204),
        params={"username": "gus"},
        witness=("/v2/orgs/acme/members", "alice"),
    ),
    Row("GET", "/v2/orgs/{org}/groups", members_read()),
    Row(
        "POST",
        "/v2/orgs/{org}/groups",
        owners_only(201),
        body={"name": "newteam"},
        witness=("/v2/orgs/acme/groups", "alice"),
    ),
    Row("GET", GROUP, members_read()),
    Row(
        "PUT",
        GROUP,
        owners_only(200),
        body={"name": "devs", "description": "put by the matrix"},
        witness=("/v2/orgs/acme/groups/devs", "alice"),
    ),
    Row(
        "PATCH",
        GROUP,
        owners_only(200),
        body={"description": "patched by the matrix"},
        witness=("/v2/orgs/acme/groups/devs", "alice"),
    ),
    Row(
        "DELETE",
        GROUP,
        owners_only(204),
        params={"group": "doomed"},
        witness=("/v2/orgs/acme/groups", "alice"),
    ),
    Row("GET", f"{GROUP}/members", members_read()),
    Row(
        "POST",
        f"{GROUP}/members",
        owners_only(200),
        body={"member": "frank"},
        witness=("/v2/orgs/acme/groups/devs/members", "alice"),
    ),
    Row(
        "DELETE",
        f"{GROUP}/members/{{username}}",
        owners_only(204),
        params={"group": "qa", "username": "hank"},
        witness=("/v2/orgs/acme/groups/qa/members", "alice"),
    ),
    *[row for base in TOKEN_BASES for row in token_rows(base)],
    Row("GET", "/v2/publishers", admins_only(200)),
    Row(
        "PUT",
        "/v2/publishers/{namespace}",
        admins_only(200),
        params={"namespace": "newpub"},
        body={"status": PublisherStatus.VERIFIED_PUBLISHER.value},
        witness=("/v2/publishers", "root"),
    ),
    Row(
        "DELETE",
        "/v2/publishers/{namespace}",
        admins_only(204),
        params={"namespace": "oldpub"},
        witness=("/v2/publishers", "root"),
    ),
    # Audit logs are read by owners only; the organization is the account in the path.
    Row("GET", "/v2/auditlogs/{account}", owners_only(200), params={"account": "acme"}),
    Row("GET", "/v2/auditlogs/{account}/actions", owners_only(200), params={"account": "acme"}),
]


async def _world(api: Api) -> dict[tuple[str, str], str]:
    """The objects rows act on; answers each user's token uuids by (user, label)."""
    services = api.services
    for name in ("erin", "frank", "gus", "hank"):
        await services.accounts.create_user(name, f"{name}@example.com", f"{name}-password")
    for name in ("frank", "gus"):
        await services.orgs.add_member("acme", name)
    await services.orgs.create_team("acme", "doomed")
    await services.orgs.add_member("acme", "hank", "qa")
    await services.allowlist.add("acme", "someone/tool")
    await services.publishers.set_override("oldpub", PublisherStatus.SPONSORED_OSS)
    tokens = {}
    for user in set(TOKEN_OWNER.values()):
        for label in ("kept", *(f"doomed{base}" for base in TOKEN_BASES)):
            token, _ = await services.accounts.create_token(user, label)
            tokens[user, label] = token.uuid
    return tokens


def _url(row: Row, caller: str, tokens: dict[tuple[str, str], str], org: str = "acme") -> str:
    values = {"org": org, "group": "devs", "uuid": "kept", **row.params}
    if "{uuid}" in row.path:
        values["uuid"] = tokens[TOKEN_OWNER[caller], values["uuid"]]
    return row.path.format(**values)


def _explains(status: int, body: Any) -> str | None:
    """What is wrong with a refusal's body, or None."""
    if not isinstance(body, dict):
        return f"body is not a JSON object: {body!r}"
    text = body.get("message") or body.get("detail")
    if not isinstance(text, str) or not text.strip():
        return f"no message or detail: {body!r}"
    if status == 404 and "not found" not in text.lower():
        return f"404 without 'not found': {text!r}"
    return None


async def _read(api: Api, witness: tuple[str, str]) -> Any:
    reply = await api.call("GET", witness[0], witness[1])
    assert reply.status == 200, (witness, reply.status, reply.body)
    return reply.body


async def test_every_documented_endpoint_by_every_caller(api: Api) -> None:
    reply = await api.call("GET", "/v2/openapi.json")
    assert reply.status == 200
    documented = {
        (method.upper(), path)
        for path, operations in reply.body["paths"].items()
        for method in operations
        if method in {"get", "put", "post", "patch", "delete", "head", "options"}
    }
    rows = [(row.method, row.path) for row in ROWS]
    assert len(rows) == len(set(rows)), "a (method, path) has two rows"
    assert documented - set(rows) == set(), "documented endpoints without a matrix row"
    assert set(rows) - documented == set(), "matrix rows for undocumented endpoints"

    tokens = await _world(api)
    failures: list[str] = []
    for row in ROWS:
        before = await _read(api, row.witness) if row.witness else None
        changed = False  # once a caller is allowed, the state may legitimately change
        for caller, expected in row.expect.items():
            url = _url(row, caller, tokens)
            reply = await api.call(row.method, url, CALLERS[caller], json=row.body)
            where = f"{row.method} {url} as {caller}"
            if reply.status != expected:
                failures.append(f"{where}: {reply.status} (expected {expected}) {reply.body!r}")
            if reply.status in (401, 403, 404):
                problem = _explains(reply.status, reply.body)
                if problem:
                    failures.append(f"{where}: {problem}")
            if reply.status < 300:
                changed = True
            elif row.witness and not changed and await _read(api, row.witness) != before:
                failures.append(f"{where}: refused with {reply.status} but changed the state")
        if row.path.startswith(ORG_PREFIX):
            # An organization that does not exist is 404 even to a signed-in outsider.
            url = _url(row, "outsider", tokens, org="nowhere")
            reply = await api.call(row.method, url, "dave", json=row.body)
            if reply.status != 404 or _explains(404, reply.body):
                failures.append(f"{row.method} {url} as outsider: {reply.status} {reply.body!r}")
    failures += await _foreign_tokens(api, tokens)
    assert failures == [], "\n".join(failures)


async def _foreign_tokens(api: Api, tokens: dict[tuple[str, str], str]) -> list[str]:
    """Another user's token uuid is 404 to everyone else, and stays as it was."""
    failures = []
    for base in TOKEN_BASES:
        path = f"{base}/{tokens['alice', 'kept']}"
        before = await _read(api, (path, "alice"))
        for user in ("bob", "dave", "root"):
            for method, body in (("GET", None), ("PATCH", {"is_active": True}), ("DELETE", None)):
                reply = await api.call(method, path, user, json=body)
                if reply.status != 404 or _explains(404, reply.body):
                    failures.append(f"{method} {path} as {user}: {reply.status} {reply.body!r}")
        if await _read(api, (path, "alice")) != before:
            failures.append(f"{path}: changed by another user")
    return failures
