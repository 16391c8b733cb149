"""The report of a ``runlint sweep``: ``runlint.report.Report`` with the search's summary line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runlint.report import Report
from runlint.sweep.model import Search

__all__ = ["SweepReport"]


@dataclass
class SweepReport(Report):
    """A ``Report`` whose first non-error result is the search; the rest are trials' runs."""

    search: Search | None = None

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        if self.search is not None:
            out["trials"] = len(self.search.trials)
            out["trials_judged"] = len(self.search.judged)
        return out

    def summary_line(self) -> str:
        line = super().summary_line()
        if self.search is None:
            return line
        n, judged = len(self.search.trials), len(self.search.judged)
        runs = len(self.results)
        head, _, tail = line.partition(f" in {runs} run{'' if runs == 1 else 's'}")
        trials = f" in a search of {n} trial{'' if n == 1 else 's'} ({judged} with a result)"
        location = self.search.location
        checked = sum(r.path != location and r.status != "error" for r in self.results)
        extra = f" and {checked} trial run{'' if checked == 1 else 's'}" if checked > 0 else ""
        return head + trials + extra + tail
