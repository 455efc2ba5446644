"""Run the benchmark: ``python -m bench [--quick] [--output results.json]``.

It starts a ``docker-registry`` and ``imagegate serve`` on loopback under a temporary
directory, runs the cases (``bench.cases``, ``crowd``, ``firstpull``) once per gateway
worker count, prints a table with the counts side by side and, with
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
from collections.abc import Awaitable, Callable
from typing import Any

from bench.cases import blob_throughput, blob_wrk, manifests, token_endpoint
from bench.crowd import CROWD, cached_crowd, cold_crowd
from bench.firstpull import skopeo_first_pull
from bench.profile import py_spy_missing
from bench.results import CaseResult
from bench.throttle import DEFAULT_BYTES_PER_SECOND
from bench.world import Peers, World, gateway_knows_workers, running_peers, running_world
from bench.wrk import wrk_missing


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer pulls, shorter loops")
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    parser.add_argument("--blob-mib", type=int, default=200, help="size of the big layer")
    parser.add_argument("--pulls", type=int, help="cached pulls per target (10; quick: 3)")
    parser.add_argument(
        "--seconds", type=float, help="length of a request loop or wrk run (4; quick: 2)"
    )
    parser.add_argument(
        "--wrk-rounds", type=int, help="wrk runs per server of the wrk blob case (3; quick: 1)"
    )
    parser.add_argument(
        "--workers",
        type=_worker_counts,
        default=[1, os.cpu_count() or 1],
        help="gateway worker counts to run side by side, comma-separated (1,CORES)",
    )
    parser.add_argument(
        "--crowd", type=int, default=CROWD, help="concurrent clients of the crowd cases (50)"
    )
    parser.add_argument(
        "--crowd-seconds",
        type=float,
        help="cut the crowd's pulls off after this long (quick: 4; default: pull to the end)",
    )
    parser.add_argument(
        "--cases",
        type=lambda value: value.split(","),
        default=list(CASES),
        help=f"which cases, comma-separated ({','.join(CASES)})",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="write a py-spy flame graph of the gateway per case and worker count into DIR",
    )
    return parser.parse_args(argv)


def _worker_counts(value: str) -> list[int]:
    counts = sorted({int(part) for part in value.split(",")})
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError("worker counts are whole numbers from 1")
    return counts


async def _blob(world: World, args: argparse.Namespace) -> CaseResult:
    return await blob_throughput(world, args.pulls or (3 if args.quick else 10))


async def _blob_wrk(world: World, args: argparse.Namespace) -> CaseResult:
    return await blob_wrk(world, _seconds(args), args.wrk_rounds or (1 if args.quick else 3))


async def _token(world: World, args: argparse.Namespace) -> CaseResult:
    return await token_endpoint(world, _seconds(args))


async def _manifest(world: World, args: argparse.Namespace) -> CaseResult:
    return await manifests(world, _seconds(args))


async def _crowd(world: World, args: argparse.Namespace) -> CaseResult:
    return await cached_crowd(world, args.crowd, _crowd_window(args))


async def _cold(world: World, args: argparse.Namespace) -> CaseResult:
    return await cold_crowd(world, args.crowd, _crowd_window(args))


async def _first(world: World, args: argparse.Namespace) -> CaseResult:
    return await skopeo_first_pull(world, loopback=not args.quick)


def _crowd_window(args: argparse.Namespace) -> float | None:
    if args.crowd_seconds is not None:
        return float(args.crowd_seconds) or None
    return 4.0 if args.quick else None


def _seconds(args: argparse.Namespace) -> float:
    return float(args.seconds or (2 if args.quick else 4))


# In this order: the crowd comes after the blob case has cached the layer (and pulls it
# first if that case is not run).
CASES: dict[str, Callable[[World, argparse.Namespace], Awaitable[CaseResult]]] = {
    "blob": _blob,
    "blob-wrk": _blob_wrk,
    "token": _token,
    "manifest": _manifest,
    "crowd": _crowd,
    "cold": _cold,
    "first": _first,
}


async def run_cases(world: World, args: argparse.Namespace) -> dict[str, CaseResult]:
    results = {}
    for name in args.cases:
        print(f"  workers={world.workers}: {name}...", end=" ", flush=True)
        started = time.monotonic()
        results[name] = await CASES[name](world, args)
        results[name].detail["case_seconds"] = time.monotonic() - started
        print(f"{results[name].detail['case_seconds']:.0f} s", flush=True)
    return results


def run_workers(peers: Peers, args: argparse.Namespace) -> dict[int, dict[str, CaseResult]]:
    by_workers = {}
    for workers in args.workers:
        with running_world(peers, workers, args.profile) as world:
            by_workers[workers] = asyncio.run(run_cases(world, args))
    return by_workers


def table(by_workers: dict[int, dict[str, CaseResult]]) -> str:
    """One line per row, the imagegate figure and ratio of each worker count side by side.

    The baseline shown is the first run's; each ratio is against its own run's baseline.
    """
    runs = [
        [row for result in results.values() for row in result.rows]
        for results in by_workers.values()
    ]
    header = f"{'case':<40} {'baseline':>10}  {'vs':<18}"
    for workers in by_workers:
        header += f" {f'imagegate w={workers}':>16} {'ratio':>6}"
    header += f"  {'goal'}"
    lines = [header, "-" * len(header)]
    for index, first in enumerate(runs[0]):
        line = f"{first.case:<40} {first.baseline:>10.2f}  {first.baseline_name:<18}"
        for rows in runs:
            row = rows[index]
            line += f" {row.imagegate:>16.2f} {row.ratio:>6.2f}"
        lines.append(f"{line}  {first.goal}")
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
    unknown = [name for name in args.cases if name not in CASES]
    if unknown:
        print(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}", file=sys.stderr)
        return 2
    notes = [note for note in (wrk_missing(),) if note]
    if args.profile is not None and (missing := py_spy_missing()):
        print(missing, file=sys.stderr)
        return 2
    if not gateway_knows_workers():
        notes.append(
            "this imagegate has no IMAGEGATE_WORKERS: every run is one process, whatever "
            "its worker count says"
        )
    for note in notes:
        print(f"note: {note}", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="imagegate-bench-") as directory:
        print(f"building and pushing an image with a {args.blob_mib} MiB layer...", flush=True)
        with running_peers(Path(directory), args.blob_mib) as peers:
            by_workers = run_workers(peers, args)
    for results in by_workers.values():
        notes += [note for result in results.values() for note in result.notes]
    print()
    print(table(by_workers))
    for note in dict.fromkeys(notes):
        print(f"note: {note}")
    print(f"\n({time.monotonic() - started:.0f} s in all)")
    if args.profile is not None:
        print(f"flame graphs written to {args.profile}")
    if args.output is not None:
        report = {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "quick": args.quick,
            "throttled_bytes_per_second": DEFAULT_BYTES_PER_SECOND,
            "workers_setting_known": gateway_knows_workers(),
            "notes": list(dict.fromkeys(notes)),
            "runs": {
                str(workers): {
                    "rows": [
                        {**vars(row), "ratio": row.ratio}
                        for r in results.values()
                        for row in r.rows
                    ],
                    "cases": {name: result.detail for name, result in results.items()},
                }
                for workers, results in by_workers.items()
            },
        }
        args.output.write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
