"""Where clients get tokens, and the ``WWW-Authenticate`` challenges that point there."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

SERVICE_NAME = "imagegate"


@dataclass(frozen=True)
class TokenRealm:
    """Builds the challenge; ``public_url`` empty means "derive from the request"."""

    public_url: str
    service: str = SERVICE_NAME

    def realm(self, request: Request) -> str:
        if self.public_url:
            return f"{self.public_url}/token"
        return f"{request.url.scheme}://{request.url.netloc}/token"

    def challenge(
        self,
        request: Request,
        scope: str | None = None,
        error: str | None = None,
        description: str | None = None,
    ) -> str:
        parts = [f'realm="{self.realm(request)}"', f'service="{self.service}"']
        if scope:
            parts.append(f'scope="{scope}"')
        if error:
            parts.append(f'error="{error}"')
        if description:
            parts.append(f'error_description="{_quote(description)}"')
        return "Bearer " + ",".join(parts)


def _quote(text: str) -> str:
    # A quoted-string may not hold '"' or '\' unescaped, nor line breaks.
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")
