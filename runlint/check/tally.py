"""The counts of a check, kept as each run is reported.

What the summary line, ``--statistics`` and the exit code need, and nothing else: a report that
prints each run as it comes (text, github) keeps a ``Tally`` instead of the runs, so the memory
of a check over any number of runs stays that of one run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from runlint.check.rule import Severity

__all__ = ["Tally"]


def _by_severity() -> dict[str, int]:
    return {s.value: 0 for s in Severity}


@dataclass
class Tally:
    """Counts over the runs added so far."""

    runs: int = 0
    unreadable: int = 0
    incomplete: int = 0
    skipped_rules: int = 0
    rule_errors: int = 0
    by_severity: dict[str, int] = field(default_factory=_by_severity)
    #: per rule code with findings: code, name, severity, count
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: suppressed findings by what suppressed them (baseline, per-run-ignores, ...)
    suppressed_by: dict[str, int] = field(default_factory=dict)
    #: the highest severity rank among the findings (-1: none)
    worst: int = -1

    @classmethod
    def of(cls, results: Iterable[Any]) -> Tally:
        tally = cls()
        for result in results:
            tally.add(result)
        return tally

    def add(self, result: Any) -> None:
        """Count one run's result (anything with ``status``, ``findings``, ``rule_errors``;
        ``skipped`` and ``suppressed`` when it has them)."""
        self.runs += 1
        self.unreadable += result.status == "error"
        self.incomplete += result.status == "incomplete"
        self.skipped_rules += len(getattr(result, "skipped", ()))
        self.rule_errors += len(result.rule_errors)
        for f in result.findings:
            self.by_severity[f.severity.value] += 1
            self.worst = max(self.worst, f.severity.rank)
            row = self.codes.setdefault(
                f.code, {"code": f.code, "name": f.name, "severity": f.severity.value, "count": 0}
            )
            row["count"] += 1
        for item in getattr(result, "suppressed", ()):
            self.suppressed_by[item.by] = self.suppressed_by.get(item.by, 0) + 1

    @property
    def findings(self) -> int:
        return sum(self.by_severity.values())

    def statistics(self) -> list[dict[str, Any]]:
        """``--statistics``: the rows of ``codes``, most frequent first (then by code)."""
        return sorted(
            (dict(r) for r in self.codes.values()), key=lambda r: (-r["count"], r["code"])
        )

    def exit_code(self, fail_on: Severity, exit_zero: bool) -> int:
        """2 for any unreadable run or rule error; else 1 for findings at or above ``fail_on``."""
        if self.unreadable or self.rule_errors:
            return 2
        if exit_zero:
            return 0
        return 1 if self.worst >= fail_on.rank else 0
