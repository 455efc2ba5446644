"""Who is asking: the bearer token on a registry request, checked for the needed scope."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from imagegate.auth.tokens import InvalidToken, TokenClaims, TokenIssuer
from imagegate.core.errors import RegistryError, Unauthorized
from imagegate.core.names import RepositoryName, parse_repository
from imagegate.http.challenge import TokenRealm


@dataclass(frozen=True)
class Identity:
    username: str | None  # None: an anonymous client
    claims: TokenClaims

    @property
    def display(self) -> str:
        return self.username or "anonymous"


class RegistryAuthenticator:
    """Verifies bearer tokens; every repository-scoped request also needs its scope."""

    def __init__(self, issuer: TokenIssuer, realm: TokenRealm) -> None:
        self._issuer = issuer
        self._realm = realm

    def identify(self, request: Request, scope: str | None = None) -> Identity:
        header = request.headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise Unauthorized(
                "authentication required: get a token from the realm in WWW-Authenticate",
                scope=scope,
            )
        try:
            claims = self._issuer.verify(token.strip(), self._realm.service)
        except InvalidToken as exc:
            raise Unauthorized(f"invalid or expired token: {exc}", scope=scope) from exc
        identity = Identity(claims.subject or None, claims)
        request.state.user = identity.display
        return identity

    def require(
        self,
        request: Request,
        repository: RepositoryName,
        raw_name: str,
        actions: tuple[str, ...],
        scope_actions: str,
        also: str = "",
    ) -> Identity:
        """The caller, whose token must grant one of ``actions`` on ``repository``.

        A token without it gets 401 naming the scope to ask for (``scope_actions``),
        followed by ``also`` (more scopes the request uses, as distribution lists them:
        space-separated in one ``scope`` parameter).
        """
        scope = " ".join(filter(None, (f"repository:{raw_name}:{scope_actions}", also)))
        identity = self.identify(request, scope)
        if not any(self.grants(identity, repository, action) for action in actions):
            raise insufficient_scope(repository, actions[0], scope)
        return identity

    @staticmethod
    def grants(identity: Identity, repository: RepositoryName, action: str) -> bool:
        return _grants(identity.claims, repository, action)


def insufficient_scope(repository: RepositoryName, action: str, scope: str) -> Unauthorized:
    """401 for a valid token that lacks ``action`` on ``repository``: ask for ``scope``."""
    return Unauthorized(
        f"the token does not grant {action} on {repository.full}; request scope {scope}",
        scope=scope,
        insufficient_scope=True,
    )


def _grants(claims: TokenClaims, repository: RepositoryName, action: str) -> bool:
    """Token names are compared canonically: a token for ``alpine`` serves ``library/alpine``."""
    for type_, name, granted in claims.access:
        if type_ != "repository" or granted not in (action, "*"):
            continue
        try:
            if parse_repository(name) == repository:
                return True
        except RegistryError:
            continue
    return False
