"""``wrk``, the native load generator, for request loops (``wrk -t1 -c4`` as issue 10).

A load generator in Python would spend the two cores the servers need on itself and
understate the faster server's rate; wrk costs a fraction of that. Its report comes back
through ``wrk_summary.lua`` as JSON; a loop that met any error status or socket error
raises instead of passing for a rate.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.client import BenchError

WRK = "wrk"
THREADS = 1
CONNECTIONS = 4
_SUMMARY_SCRIPT = Path(__file__).with_name("wrk_summary.lua")


def wrk_missing() -> str | None:
    """Why the wrk cases cannot run here, or None if they can."""
    if shutil.which(WRK) is None:
        return "wrk is not installed (Debian: apt-get install -y wrk): its cases are skipped"
    return None


@dataclass(frozen=True)
class WrkRate:
    requests: int
    seconds: float
    median_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def wrk(url: str, seconds: float, headers: Mapping[str, str] | None = None) -> WrkRate:
    """Load ``url`` with GETs from ``CONNECTIONS`` connections for ``seconds`` (whole)."""
    args = [
        WRK,
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{max(1, math.ceil(seconds))}s",
        "-s",
        str(_SUMMARY_SCRIPT),
    ]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    completed = subprocess.run(
        [*args, url], capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if completed.returncode != 0:
        raise BenchError(f"wrk {url} exited {completed.returncode}: {completed.stderr}")
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    if summary["status_errors"] or summary["socket_errors"] or not summary["requests"]:
        raise BenchError(f"wrk {url}: {summary} (error statuses or socket errors)")
    return WrkRate(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        median_ms=summary["median_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
    )
