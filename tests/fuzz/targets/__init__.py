"""The fuzz targets: one harness module each, and what the runner must know before it
imports one (which modules to instrument is decided before they are loaded).

A module here without an entry in ``TARGETS`` is an error (``test_fuzz.py`` checks).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    instrument: tuple[str, ...]  # the modules whose coverage guides the fuzzer
    max_len: int = 4096  # the longest input tried
    # Also report regular expression matches (the grammar is a regex). Opt-in: the hook
    # wraps every pattern compiled from then on, and building the wrappers takes seconds.
    regex_hook: bool = False


TARGETS = {
    "names": Target(("imagegate.core.names", "imagegate.core.digests"), 512, regex_hook=True),
    "scopes": Target(("imagegate.core.scopes",), 1024),
    "challenges": Target(("imagegate.upstream.auth", "imagegate.http.challenge"), 2048),
    "manifests": Target(("imagegate.proxy.descriptors", "imagegate.hosted.validation"), 16384),
    "registry_json": Target(("imagegate.core.signin",), 8192),
    "api_bodies": Target(("imagegate.http.api.framework",), 8192),
    "api_queries": Target(("imagegate.http.api.framework",), 1024),
    "basic_auth": Target(("imagegate.http.token",), 1024),
    "console_sessions": Target(("imagegate.http.console.sessions",), 4096),
}
