"""Findings of the fuzzers in code another branch of issue 9 is fixing.

While a finding's reproducer (``findings/NAME``) still fails with its error, fuzzing its
target tolerates that error, so the suite stays green until the fix is merged and the
fuzzers keep looking for everything else. ``test_findings.py`` replays each reproducer
and expects the fix (strict xfail): once the fix is merged that test fails, and its
entry here is to be deleted, after which the fuzzer no longer tolerates the error.
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


FINDINGS: list[Finding] = [
    Finding(
        "manifest-nested-too-deep",
        "manifests",
        "RecursionError",
        "sec-hardening (hole 10, hosted/validation.py) and sec-content (proxy/descriptors.py)",
        "JSON nested ~1,000 deep: a 500 on manifest PUT, and on a pull of such an upstream"
        " manifest",
    ),
    Finding(
        "api-body-nested-too-deep",
        "api_bodies",
        "RecursionError",
        "sec-hardening (hole 10, http/api/framework.py read_body)",
        "an API body nested ~1,000 deep: a 500 before login (POST /v2/users/login)",
    ),
    Finding(
        "api-body-lone-surrogate",
        "api_bodies",
        "UnicodeEncodeError",
        "sec-hardening (hole 10, http/api/framework.py read_body)",
        'a lone surrogate ("\\udc80") in an API body\'s string is accepted, and fails as a 500'
        " where the handler encodes it",
    ),
    Finding(
        "api-query-superscript-digit",
        "api_queries",
        "ValueError",
        "sec-hardening (hole 10 class: http/api/framework.py query_int)",
        "?page=%C2%B2 ('²' passes str.isdigit, int() refuses it): a 500 on every paged"
        " endpoint, for any signed-in user",
    ),
    Finding(
        "api-date-time-out-of-range",
        "api_queries",
        "NotRenderedBack",
        "sec-sessions or sec-hardening (http/api/framework.py parse_date_time)",
        "a date-time that parses but cannot be sent back: 9999-12-31T23:59:59-01:00 overflows"
        " in UTC (POST /v2/access-tokens with it as expires_at: a 500), and years before 1000"
        " render with fewer than four digits",
    ),
]


def reproducer_bytes(finding: Finding) -> bytes:
    return (FINDINGS_DIR / finding.name).read_bytes()
