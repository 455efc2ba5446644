"""What the kernel says about a server process: which one it is and its CPU time."""

from __future__ import annotations

import os
from pathlib import Path

_PROC = Path("/proc")


def child_pid(*argv_words: str) -> int:
    """The pid of this process's child whose command line holds every one of ``argv_words``.

    The support ``Gateway`` does not expose its process; the server is our direct child
    (its console script is exec'd in place), so its ``--port`` finds it.
    """
    wanted = [word.encode() for word in argv_words]
    me = os.getpid()
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # exited meanwhile
            continue
        # The command name in field 2 may hold spaces and parentheses: split after it.
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == me and all(word in argv for word in wanted):
            return int(entry.name)
    raise LookupError(f"no child process of {me} runs with {argv_words}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = (_PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()
    # Fields 14 and 15 (utime, stime) sit at 11 and 12 once pid and comm are cut off.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
