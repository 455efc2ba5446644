"""The proxy's own wording for an upstream it could not use and a cache that cannot help."""

from __future__ import annotations

from imagegate.core.errors import RegistryError, TooManyRequests, Unavailable
from imagegate.upstream.errors import UpstreamUnreachable

# Failures after which a cached copy may serve instead: the upstream is down, or it
# limits us (a stale tag beats no pull at all).
FALLBACK_ERRORS = (UpstreamUnreachable, TooManyRequests)


def not_cached(
    upstream: str, what: str, cause: RegistryError, missing: str = "is not cached"
) -> RegistryError:
    """The error for ``what`` when the upstream failed with ``cause`` and the cache cannot
    answer instead: the upstream's ``TooManyRequests`` as it is, else ``Unavailable``
    saying what is ``missing`` (not cached, or not known to belong to the repository).

    ``cause`` names the upstream and what went wrong ("upstream URL is unreachable: ...").
    """
    if isinstance(cause, TooManyRequests):
        return cause
    return Unavailable(
        f"{what} {missing}, and {cause.message}",
        detail={"upstream": upstream},
    )
