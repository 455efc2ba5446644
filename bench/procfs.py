"""What the kernel says about a server process: its CPU time."""

from __future__ import annotations

import os
from pathlib import Path

_PROC = Path("/proc")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = (_PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()
    # Fields 14 and 15 (utime, stime) sit at 11 and 12 once pid and comm are cut off.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
