"""An organization's storage quota: sizes as people write them, and the refusal.

Usage counts every blob and manifest of the organization's hosted repositories once per
digest (a layer pushed to three of its repositories counts once), which is what an owner
pays for on disk. A push that would take usage past the quota is refused with ``DENIED``,
naming the quota and the usage, so the person pushing knows what to delete or ask for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imagegate.core.errors import Denied

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"(\d{1,15}(?:\.\d{1,6})?)\s*([a-z]*)")
MAX_SIZE = 2**62  # far past any disk, and inside every database's 64-bit integer


def parse_size(text: str) -> int:
    """``20GiB``, ``500 MB``, ``1.5TiB`` or a number of bytes; ``ValueError`` otherwise."""
    match = _SIZE.fullmatch(text.strip().lower())
    if match is None or match[2] not in _UNITS:
        raise ValueError(
            f"{text!r} is not a size: write a number of bytes or one with a unit, "
            "such as 500MB, 20GiB or 1.5TiB"
        )
    whole, _, fraction = match[1].partition(".")
    scale = _UNITS[match[2]]
    size: int = int(whole) * scale + int(fraction or "0") * scale // pow(10, len(fraction))
    if size > MAX_SIZE:
        raise ValueError(f"{text!r} is larger than any quota can be")
    return size


def format_size(count: int) -> str:
    """Bytes as a person reads them: ``512 bytes``, ``1.5 MiB``, ``20.0 GiB``."""
    if count < 1024:
        return f"{count} bytes"
    size = count / 1024
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            break
        size /= 1024
    return f"{size:.1f} {unit}"


@dataclass(frozen=True)
class StorageUsage:
    """What an organization's hosted repositories hold, and its quota (``None``: none)."""

    org: str
    used: int
    quota: int | None = None

    @property
    def remaining(self) -> int | None:
        """Bytes that may still be added; ``None`` without a quota."""
        return None if self.quota is None else max(self.quota - self.used, 0)

    def describe(self) -> str:
        if self.quota is None:
            return f"{format_size(self.used)} used, no quota"
        share = self.used * 100 // self.quota if self.quota else 100
        return f"{format_size(self.used)} used of a {format_size(self.quota)} quota ({share}%)"


def over_quota(usage: StorageUsage, needed: int | None = None) -> Denied:
    """The refusal of a push that needs ``needed`` more bytes than ``usage`` leaves
    (``None``: a push that has not said how much, refused because nothing is left)."""
    assert usage.quota is not None
    org = usage.org
    what = (
        f"storage quota of {org} exceeded: this push needs {format_size(needed)} more, and"
        if needed is not None
        else f"storage quota of {org} used up:"
    )
    return Denied(
        f"{what} {org} uses {format_size(usage.used)} of its {format_size(usage.quota)} "
        f"quota; delete images {org} no longer needs (their layers are freed at the next "
        f"garbage collection) or ask the gateway's administrator for more "
        f"(imagegate org set {org} --quota SIZE)",
        detail={"org": org, "quota": usage.quota, "used": usage.used, "needed": needed},
    )
