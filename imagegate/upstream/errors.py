"""Upstream failures, translated once at this edge into the gateway's registry errors.

Unavailable (core, 503)
 +-- UpstreamUnreachable   connection refused or reset, timeout, 5xx: the proxy may
                           serve a cached copy instead
UpstreamError (core, 502)  the upstream answered something we cannot pass on
TooManyRequests            429, with the upstream's message
NameUnknown / Denied       401 / 403 after authenticating: the upstream refused
ManifestUnknown / BlobUnknown / NameUnknown   404
"""

from __future__ import annotations

from typing import Any

from imagegate.core.errors import (
    Denied,
    NameUnknown,
    RegistryError,
    TooManyRequests,
    Unavailable,
    UpstreamError,
)
from imagegate.core.inputs import load_json
from imagegate.core.names import RepositoryName


class UpstreamUnreachable(Unavailable):
    """The upstream could not answer (network, timeout, 5xx); cached content may serve."""


def upstream_message(body: bytes) -> tuple[str | None, str]:
    """The first registry error in an upstream body: (code, message); raw text otherwise."""
    try:
        parsed: Any = load_json(body)
        first = parsed["errors"][0]
        return str(first.get("code") or "") or None, str(first.get("message") or "")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None, body[:200].decode("utf-8", "replace").strip()


def status_error(
    upstream: str,
    status: int,
    body: bytes,
    repository: RepositoryName | None,
    what: str,
    not_found: type[RegistryError],
) -> RegistryError:
    """The registry error for an upstream's non-success ``status`` about ``what``."""
    code, message = upstream_message(body)
    said = f": {message}" if message else ""
    detail = {"upstream": upstream, "status": status}
    if status == 404:
        kind = NameUnknown if code == "NAME_UNKNOWN" else not_found
        return kind(f"{what} not found at upstream {upstream}{said}", detail)
    if status == 429:
        return TooManyRequests(f"upstream {upstream} is rate limiting requests{said}", detail)
    if status in (401, 403):
        target = f"repository {repository}" if repository else what
        refusal = (
            f"upstream {upstream} refused access to {target}: the repository does not exist "
            "upstream, or the upstream account may not read it"
        )
        return (NameUnknown if status == 401 else Denied)(refusal + said, detail)
    if status >= 500:
        return UpstreamUnreachable(f"upstream {upstream} failed with HTTP {status}{said}", detail)
    return UpstreamError(f"upstream {upstream} answered HTTP {status} for {what}{said}", detail)
