"""wrk, the native HTTP load generator: many requests without a Python client in the way.

A Lua ``done`` hook prints wrk's summary as one JSON line (requests, bytes read, exact
duration, errors), so nothing is parsed from its human-readable units. wrk is the Debian
package ``wrk``; without it a case that needs it says so.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.client import BenchError

_SUMMARY = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "bytes": %d, "microseconds": %d, "errors": %d, "bad_status": %d}\\n',
    summary.requests, summary.bytes, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass(frozen=True)
class Load:
    """What one wrk run did."""

    requests: int
    bytes: int
    seconds: float
    errors: int  # connect, read, write and timeout errors
    bad_status: int  # answers other than 2xx and 3xx

    @property
    def gbps(self) -> float:
        return self.bytes / self.seconds / 1e9

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


async def wrk(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    threads: int = 1,
    connections: int = 4,
    seconds: float = 5.0,
) -> Load:
    """``wrk -tTHREADS -cCONNECTIONS -dSECONDS URL``; raises ``BenchError`` on any error."""
    binary = shutil.which("wrk")
    if binary is None:
        raise BenchError("wrk is not installed: apt-get install wrk (Debian package)")
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as directory:
        script = Path(directory) / "summary.lua"
        script.write_text(_SUMMARY)
        header_args = [
            arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}: {value}")
        ]
        process = await asyncio.create_subprocess_exec(
            binary,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "60s",
            "-s",
            str(script),
            *header_args,
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
    text = output.decode(errors="replace")
    summary = next((line for line in reversed(text.splitlines()) if line.startswith("{")), None)
    if process.returncode != 0 or summary is None:
        raise BenchError(f"wrk {url} failed ({process.returncode}):\n{text}")
    figures = json.loads(summary)
    load = Load(
        requests=figures["requests"],
        bytes=figures["bytes"],
        seconds=figures["microseconds"] / 1e6,
        errors=figures["errors"],
        bad_status=figures["bad_status"],
    )
    if load.errors or load.bad_status or not load.bytes:
        raise BenchError(f"wrk {url}: {load}\n{text}")
    return load
