"""What a case reports: table rows (imagegate, baseline, ratio, goal) and raw figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Row:
    """One line of the table. The ratio is imagegate over baseline: for rates and
    throughputs 1.0 is parity and lower is slower; for times and sizes higher is more."""

    case: str
    unit: str
    imagegate: float
    baseline: float
    baseline_name: str
    goal: str = ""  # issue 10's goal for this row, as its table states it

    @property
    def ratio(self) -> float:
        return self.imagegate / self.baseline if self.baseline else float("nan")


@dataclass
class CaseResult:
    rows: list[Row] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # why a row is missing, say
