"""Run the benchmark: ``python -m bench [--quick] [--output results.json]``.

It starts a ``docker-registry`` and ``imagegate serve`` on loopback under a temporary
directory, runs the three cases (see ``bench.cases``), prints a table and, with
``--output``, writes every figure as JSON. Ratios, not thresholds: nothing here fails
because a number is low.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script (bench/run.py): make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import tempfile
import time
from typing import Any

from bench.cases import (
    CaseResult,
    Row,
    blob_throughput,
    blob_wrk,
    manifest_by_digest,
    manifest_by_tag,
    token_endpoint,
)
from bench.world import World, running_world


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer pulls, shorter loops")
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    parser.add_argument("--blob-mib", type=int, default=200, help="size of the big layer")
    parser.add_argument("--pulls", type=int, help="cached pulls per target (10; quick: 3)")
    parser.add_argument("--seconds", type=float, help="length of a request loop (4; quick: 1.5)")
    parser.add_argument("--max-requests", type=int, default=50_000, help="bound of a loop")
    parser.add_argument("--wrk-seconds", type=float, default=5.0, help="length of a wrk run")
    parser.add_argument("--wrk-rounds", type=int, help="wrk runs per server (3; quick: 1)")
    return parser.parse_args(argv)


async def run_cases(world: World, args: argparse.Namespace) -> dict[str, CaseResult]:
    pulls = args.pulls or (3 if args.quick else 10)
    seconds = args.seconds or (1.5 if args.quick else 4.0)
    return {
        "blob": await blob_throughput(world, pulls),
        "blob_wrk": await blob_wrk(
            world, args.wrk_seconds, args.wrk_rounds or (1 if args.quick else 3)
        ),
        "token": await token_endpoint(world, seconds, args.max_requests),
        "manifest": await manifest_by_tag(world, seconds, args.max_requests),
        "manifest_digest": await manifest_by_digest(world, seconds, args.max_requests),
    }


def table(rows: list[Row]) -> str:
    header = f"{'case':<36} {'imagegate':>10} {'baseline':>10}  {'vs':<16} {'ratio':>6}"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.case:<36} {row.imagegate:>10.2f} {row.baseline:>10.2f}  "
            f"{row.baseline_name:<16} {row.ratio:>6.2f}"
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="imagegate-bench-") as directory:
        print(f"building and pushing an image with a {args.blob_mib} MiB layer...", flush=True)
        with running_world(Path(directory), args.blob_mib) as world:
            results = asyncio.run(run_cases(world, args))
    rows = [row for result in results.values() for row in result.rows]
    print()
    print(table(rows))
    print(f"\n({time.monotonic() - started:.0f} s in all)")
    if args.output is not None:
        report = {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "quick": args.quick,
            "rows": [{**vars(row), "ratio": row.ratio} for row in rows],
            "cases": {name: result.detail for name, result in results.items()},
        }
        args.output.write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
