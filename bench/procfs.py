"""What the kernel says about a server: CPU time and memory of its whole process tree.

A server may run several worker processes (``imagegate serve --workers N``), so every
figure is summed over the process and all its descendants, read from ``/proc``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str]:
    """``/proc/PID/stat`` after the command name (which may hold spaces and parentheses)."""
    return (_PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = _stat_fields(pid)
    # Fields 14 and 15 (utime, stime) sit at 11 and 12 once pid and comm are cut off.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live descendant of it."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int(_stat_fields(int(entry.name))[1])  # field 4, ppid
        except (OSError, IndexError, ValueError):
            continue  # it exited while we looked
        children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(children.get(current, ()))
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its live descendants (workers included)."""
    total = 0.0
    for child in process_tree(pid):
        with contextlib.suppress(OSError):  # it exited since the tree was read
            total += cpu_seconds(child)
    return total


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (``VmRSS``), 0 for a kernel thread."""
    for line in (_PROC / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def tree_rss_bytes(pid: int) -> int:
    """RSS summed over ``pid`` and its live descendants.

    Pages shared between forked workers count once per worker, so this is an upper
    bound of what the tree costs the machine: the figure issue 10's goal is stated in.
    """
    total = 0
    for child in process_tree(pid):
        with contextlib.suppress(OSError):  # it exited since the tree was read
            total += rss_bytes(child)
    return total
