"""Open findings of the fuzzers: failures someone is fixing on another branch.

While a finding's reproducer (``findings/NAME``) still fails with its error, fuzzing its
target tolerates that error, so the suite stays green until the fix is merged and the
fuzzers keep looking for everything else. ``test_fuzz.py`` replays each reproducer and
checks that it still fails: once the fix is merged that test fails, and the finding
moves from here into its target's corpus (``corpus/TARGET/finding-NAME``), after which
the fuzzer no longer tolerates the error and every run replays it.
Plain data only: the runner imports this before instrumenting ``imagegate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FINDINGS_DIR = Path(__file__).parent / "findings"


@dataclass(frozen=True)
class Finding:
    name: str  # the reproducer's file name in findings/
    target: str  # the harness it fails
    error: str  # the exception class it raises today
    owner: str  # who fixes it
    summary: str


# Empty: every finding so far is fixed, and its reproducer is a seed of its target's
# corpus (corpus/TARGET/finding-NAME), replayed on every run.
FINDINGS: list[Finding] = []


def reproducer_bytes(finding: Finding) -> bytes:
    return (FINDINGS_DIR / finding.name).read_bytes()
