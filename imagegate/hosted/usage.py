"""What an organization's hosted repositories hold on disk, for its storage usage.

An organization's namespace is the top directory of its repositories (``layout``), so
what it holds is every blob and manifest linked under that directory, each digest once,
at the size the store has it. ``holds`` answers for one digest by looking in each of the
organization's repositories (a delete asks it, to know whether the digest left the last
one); ``held`` lists everything (a recount), and ``count_held`` does so while no push can
change it. All blocking: run them in a worker thread.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from imagegate.core.digests import Digest
from imagegate.hosted.layout import HostedLayout
from imagegate.hosted.locking import GcLock
from imagegate.hosted.metadata import list_links, repository_dirs
from imagegate.storage import files

_KINDS = ("_blobs", "_manifests")  # a manifest's bytes are stored as a blob too


def holds(layout: HostedLayout, org: str, digest: Digest) -> bool:
    """Whether any repository of ``org`` links ``digest`` (as a blob or a manifest)."""
    for repository in repository_dirs(layout.repositories / org):
        for kind in _KINDS:
            if (repository / kind / digest.algorithm / digest.encoded).exists():
                return True
    return False


def held(layout: HostedLayout, org: str) -> dict[Digest, int]:
    """Every digest the repositories of ``org`` link and the store has, with its size."""
    found: dict[Digest, int] = {}
    for repository in repository_dirs(layout.repositories / org):
        for kind in _KINDS:
            for digest in list_links(repository / kind):
                if digest in found:
                    continue
                try:
                    found[digest] = layout.store.blob(digest).stat().st_size
                except FileNotFoundError:
                    continue  # linked, but collected: it takes no space
    return found


@dataclass(frozen=True)
class Held:
    """What organizations' repositories held (``held``) at ``looked_at``."""

    by_org: Mapping[str, Mapping[Digest, int]]
    looked_at: dt.datetime


def held_now(layout: HostedLayout, orgs: list[str] | None = None) -> Held:
    """``held`` for ``orgs`` (default: every namespace). The caller holds the gc lock
    exclusive: every push that counted a digest has linked it by now, and every one
    that counts one later does so after ``looked_at``."""
    looked_at = dt.datetime.now(dt.UTC)
    names = files.list_directories(layout.repositories) if orgs is None else orgs
    return Held({org: held(layout, org) for org in names}, looked_at)


def count_held(layout: HostedLayout, orgs: list[str] | None = None) -> Held:
    """``held_now`` under the gc lock, held exclusive for the count (pushes wait)."""
    with GcLock(layout.gc_gate, layout.gc_lock).exclusive():
        return held_now(layout, orgs)
