"""``wrk``, the native load generator, for every request loop (``wrk -t1 -c4`` as issue 10).

A load generator in Python would spend the two cores the servers need on itself and
understate the faster server's rate; wrk costs a fraction of that. Its report comes back
through ``wrk_summary.lua`` as JSON (requests, bytes read, exact duration, latency,
errors), so nothing is parsed from its human-readable units; a loop that met any error
status or socket error raises instead of passing for a rate. wrk is the Debian package
``wrk``; without it the cases that need it say so and are skipped.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.client import BenchError

WRK = "wrk"
THREADS = 1
CONNECTIONS = 4
# wrk's default of 2 s would count a 200 MiB blob read by four connections on a loaded
# machine as a timeout.
TIMEOUT = "60s"
_SUMMARY_SCRIPT = Path(__file__).with_name("wrk_summary.lua")


def wrk_missing() -> str | None:
    """Why the wrk cases cannot run here, or None if they can."""
    if shutil.which(WRK) is None:
        return "wrk is not installed (Debian: apt-get install -y wrk): its cases are skipped"
    return None


@dataclass(frozen=True)
class Load:
    """What one wrk run did."""

    requests: int
    bytes: int  # read, partial bodies included
    seconds: float
    median_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def gbps(self) -> float:
        return self.bytes / self.seconds / 1e9


async def wrk(url: str, seconds: float, headers: Mapping[str, str] | None = None) -> Load:
    """GET ``url`` from ``CONNECTIONS`` connections for ``seconds`` (whole: wrk takes no
    fractions)."""
    args = [
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{max(1, math.ceil(seconds))}s",
        "--timeout",
        TIMEOUT,
        "-s",
        str(_SUMMARY_SCRIPT),
    ]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    process = await asyncio.create_subprocess_exec(
        WRK,
        *args,
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    output, errors = await process.communicate()
    lines = output.decode(errors="replace").strip().splitlines()
    if process.returncode != 0 or not lines or not lines[-1].startswith("{"):
        raise BenchError(
            f"wrk {url} exited {process.returncode}: {errors.decode(errors='replace')}"
        )
    summary = json.loads(lines[-1])
    # Bytes, not requests: in a short run no 200 MiB body may have been read to its end.
    if summary["status_errors"] or summary["socket_errors"] or not summary["bytes"]:
        raise BenchError(f"wrk {url}: {summary} (error statuses, socket errors or nothing read)")
    return Load(
        requests=summary["requests"],
        bytes=summary["bytes"],
        seconds=summary["duration_us"] / 1e6,
        median_ms=summary["median_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
    )
