"""Every fuzz target runs briefly, each in a process of its own (atheris instruments the
code it loads, which must not leak into this one), from a fixed seed: a property broken by
one of the first inputs fails every time, and the failing input is in the message.

``make fuzz TARGET=... SECONDS=...`` runs one for longer (README, "Tests").
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imagegate.core.names import RepositoryName
from imagegate.core.scopes import Scope
from imagegate.proxy.descriptors import References
from tests.fuzz.__main__ import CORPUS
from tests.fuzz.known import FINDINGS, FINDINGS_DIR
from tests.fuzz.targets import TARGETS

ROOT = Path(__file__).parents[2]
SECONDS = 2  # per target; startup adds about a second (two for the API's)
MANIFEST = (CORPUS / "manifests" / "oci-image").read_bytes()[1:]


def fuzz(target: str, *args: str, work: Path) -> subprocess.CompletedProcess[str]:
    """``python -m tests.fuzz TARGET ARGS``, with the hash seed fixed so that coverage, and
    so the inputs tried, are the same on every run."""
    return subprocess.run(
        [sys.executable, "-m", "tests.fuzz", target, "--work", str(work), *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def failure(result: subprocess.CompletedProcess[str], work: Path) -> str:
    """What to show when a run fails: its end, and each failing input as a literal."""
    crashes = [f"{path.name}: {path.read_bytes()!r}" for path in work.glob("crash-*")]
    return "\n".join([result.stdout[-3000:], result.stderr[-6000:], *crashes])


def test_every_harness_has_a_target_entry_and_seeds() -> None:
    modules = {p.stem for p in (Path(__file__).parent / "targets").glob("*.py")}
    assert modules - {"__init__"} == set(TARGETS)
    for target in TARGETS:
        assert any((CORPUS / target).iterdir()), f"no seeds in tests/fuzz/corpus/{target}"
    for finding in FINDINGS:
        assert finding.target in TARGETS and (FINDINGS_DIR / finding.name).is_file(), finding


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzzing_breaks_no_property(target: str, tmp_path: Path) -> None:
    result = fuzz(target, "--seconds", str(SECONDS), "--seed", "1", work=tmp_path)
    assert result.returncode == 0, failure(result, tmp_path)
    # It ran: the seeds and then inputs of its own, not just an import.
    assert "INITED" in result.stderr and "Done" in result.stderr, result.stderr[-3000:]


BROKEN = [
    # (harness, the parser it calls, a wrong parser, an input that shows it)
    ("names", "parse_repository", lambda text: RepositoryName("library", text.lower()), b"A/B"),
    ("registry_json", "parse_registry_json", lambda data: ("Acme",), b'{"allowedOrgs": []}'),
    ("scopes", "parse_scope", lambda text: Scope("repository", text, frozenset()), b"x y"),
    ("manifests", "references", lambda body: References(), b"\x01" + MANIFEST),
]


@pytest.mark.parametrize(("target", "parser", "wrong", "data"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_harness_fails_on_a_wrong_parser(
    target: str,
    parser: str,
    wrong: Callable[[Any], Any],
    data: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The properties bite: each harness, run here uninstrumented (these import no
    atheris), fails on an input the parser gets wrong."""
    harness = importlib.import_module(f"tests.fuzz.targets.{target}")
    harness.test_one_input(data)  # the real parser passes
    monkeypatch.setattr(harness, parser, wrong)
    with pytest.raises(AssertionError):
        harness.test_one_input(data)


def test_every_open_finding_still_fails(tmp_path: Path) -> None:
    """Each open finding's reproducer, replayed strictly, still fails: once its fix is
    merged this fails, and the finding moves from known.py into its target's corpus."""
    for finding in FINDINGS:
        reproducer = str(FINDINGS_DIR / finding.name)
        result = fuzz(finding.target, "--strict", reproducer, work=tmp_path / finding.name)
        assert result.returncode != 0, f"{finding.name} is fixed: move it into the corpus"
