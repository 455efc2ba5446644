"""Run one fuzz target: ``python -m tests.fuzz TARGET [--seconds N] [FILE ...]``.

With FILEs, each is replayed once (a crash file, or a finding's reproducer). Otherwise
libFuzzer explores from the target's seeds (``corpus/TARGET``) plus what earlier runs
kept in ``WORK/corpus`` (default ``.fuzz/TARGET``, so long runs build on each other), and
a failing input is written to ``WORK/crash-<sha1>``: replay it with the same command.
The exit status is 0 only when no input broke a property.

Nothing from ``imagegate`` may be imported before ``atheris.instrument_imports``, or its
code runs uninstrumented and the fuzzer is blind: this module imports only the standard
library and plain data at the top.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path

from tests.fuzz.known import FINDINGS, Finding, reproducer_bytes
from tests.fuzz.targets import TARGETS, Target

CORPUS = Path(__file__).parent / "corpus"
Harness = Callable[[bytes], None]


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz", description="Run one fuzz target of tests/fuzz/targets."
    )
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("inputs", nargs="*", type=Path, help="replay these files once")
    parser.add_argument("--seconds", type=int, default=60, help="stop after this long")
    parser.add_argument("--runs", type=int, default=-1, help="stop after this many inputs")
    parser.add_argument("--seed", type=int, default=0, help="libFuzzer's seed; 0: random")
    parser.add_argument("--work", type=Path, help="corpus and crashes (default .fuzz/TARGET)")
    parser.add_argument(
        "--strict", action="store_true", help="do not tolerate the open findings of known.py"
    )
    return parser.parse_intermixed_args(argv)  # replayed inputs may follow the options


def _load(name: str, target: Target) -> Harness:
    """The target's harness, with the modules it names instrumented."""
    import atheris

    module = f"tests.fuzz.targets.{name}"
    # Load everything uninstrumented first, then only the named modules and the harness
    # again, instrumented: atheris's import hook makes every import under it slow (the
    # app's graph takes seconds), and the regex hook wraps each pattern compiled while it
    # is on in a proxy whose match() takes no position, which json and starlette need.
    importlib.import_module(module)
    for loaded in [*target.instrument, module]:
        del sys.modules[loaded]
    atheris.enabled_hooks.add("str")  # str comparisons are reported to the fuzzer
    if target.regex_hook:
        atheris.enabled_hooks.add("RegEx")
    with atheris.instrument_imports(include=list(target.instrument)):
        harness: Harness = importlib.import_module(module).test_one_input
    return harness


def _still_open(harness: Harness, finding: Finding) -> bool:
    """Whether the finding's reproducer still fails the way it was reported."""
    try:
        harness(reproducer_bytes(finding))
    except Exception as exc:
        return type(exc).__name__ == finding.error
    return False


def _tolerating(harness: Harness, findings: list[Finding]) -> Harness:
    """The harness, except that the errors of still-open findings (another branch fixes
    them) do not stop the run; a fixed one is no longer tolerated."""
    open_errors = set()
    for finding in findings:
        if _still_open(harness, finding):
            open_errors.add(finding.error)
            print(f"fuzz: tolerating open finding {finding.name} ({finding.owner})", flush=True)
        else:
            print(f"fuzz: {finding.name} is fixed: delete it from tests/fuzz/known.py", flush=True)
    if not open_errors:
        return harness

    def tolerant(data: bytes) -> None:
        try:
            harness(data)
        except Exception as exc:
            if type(exc).__name__ not in open_errors:
                raise

    return tolerant


def main(argv: list[str]) -> int:
    args = _arguments(argv)
    import atheris

    target = TARGETS[args.target]
    harness = _load(args.target, target)
    if not args.strict:
        harness = _tolerating(harness, [f for f in FINDINGS if f.target == args.target])
    flags = [sys.argv[0], f"-max_len={target.max_len}"]
    if args.inputs:
        flags += [str(path) for path in args.inputs]
    else:
        work = args.work or Path(".fuzz") / args.target
        (work / "corpus").mkdir(parents=True, exist_ok=True)
        flags += [
            f"-max_total_time={args.seconds}",
            f"-runs={args.runs}",
            f"-seed={args.seed}",
            f"-artifact_prefix={work}/",
            "-print_final_stats=1",
            str(work / "corpus"),  # new inputs go to the first directory
            str(CORPUS / args.target),
        ]
    atheris.Setup(flags, harness)
    atheris.Fuzz()  # exits the process: 0, or non-zero with the failing input saved
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
