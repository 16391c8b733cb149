"""``--format text``: a compiler-style report, streamed run by run, with loss sparklines."""

from __future__ import annotations

import math
from typing import TextIO

from rich.console import Console
from rich.text import Text

from runlint.check.engine import RunResult
from runlint.report import Report, display_path
from runlint.report import Reporter as _Base
from runlint.report.escape import GuardedWriter
from runlint.report.escape import text as shown

BARS = "▁▂▃▄▅▆▇█"
STYLES = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def sparkline(values: list[float]) -> str:
    """``▁▂▃▄▅▆▇█`` for finite values (scaled to their range), ``×`` for non-finite ones."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "×" * len(values)
    lo, hi = min(finite), max(finite)
    span = hi - lo
    out = []
    for v in values:
        if not math.isfinite(v):
            out.append("×")
        elif span <= 0:
            out.append(BARS[3])
        else:
            out.append(BARS[min(len(BARS) - 1, int((v - lo) / span * len(BARS)))])
    return "".join(out)


def _num(x: float) -> str:
    return f"{x:.3g}"


class Reporter(_Base):
    def __init__(self, out: TextIO, verbose: bool = False) -> None:
        super().__init__(out, verbose)
        self.console = Console(
            file=GuardedWriter(out),  # type: ignore[arg-type]
            highlight=False,
            soft_wrap=True,
            emoji=False,
            markup=False,
        )

    def add(self, result: RunResult) -> None:
        c = self.console
        path = shown(display_path(result.path))
        name = shown(result.name)
        if result.status == "error":
            c.print(
                Text.assemble(
                    ("error", "bold red"), ": ", shown(result.error) if result.error else path
                )
            )
            return
        header = Text.assemble((path, "bold"))
        if result.status == "incomplete":
            header.append("  (incomplete: still being written, or killed)", style="dim")
        if result.curve:
            header.append("  loss ")
            header.append(sparkline(result.curve), style="magenta")
            if result.loss_span:
                first, last, n = result.loss_span
                header.append(f" {_num(first)} → {_num(last)} over {n} steps", style="dim")
        c.print(header)
        for note in result.notes:
            c.print(Text.assemble(("warning", "yellow"), ": ", shown(note)))
        for f in result.findings:
            style = STYLES[f.severity.value]
            c.print(
                Text.assemble(
                    (f.code, "bold"),
                    " ",
                    (f.severity.value, style),
                    " ",
                    name,
                    (f" ({shown(f.name)})", "dim"),
                )
            )
            c.print(Text("  " + shown(f.message)))
            c.print(Text.assemble("  ", ("fix:", "bold green"), " ", shown(f.fix)))
            extra = []
            if f.where:
                extra.append(f"where: {shown(f.where)}")
            if f.steps is not None:
                extra.append(f"steps: {f.steps[0]}–{f.steps[1]}")
            if extra:
                c.print(Text("  " + "  ".join(extra), style="dim"))
        for e in result.rule_errors:
            c.print(
                Text.assemble(
                    ("error", "bold red"),
                    f": rule {e.code} {e.name} crashed on {name}: ",
                    shown(e.error),
                )
            )
        if self.verbose:
            for s in result.skipped:
                c.print(
                    Text(f"  skipped {s.code} {s.name}: {shown('; '.join(s.reasons))}", style="dim")
                )
            if result.ran:
                c.print(Text(f"  ran {len(result.ran)} rules: {' '.join(result.ran)}", style="dim"))

    def finish(self, report: Report) -> None:
        c = self.console
        if self.verbose:
            for path, reason in report.passed:
                c.print(Text(f"passed over {shown(display_path(path))}: {reason}", style="dim"))
        for problem in report.problems:
            c.print(Text.assemble(("error", "bold red"), ": ", shown(problem)))
        counts = report.counts()
        style = "bold red" if counts["error"] else ("yellow" if counts["warning"] else "green")
        c.print(Text(report.summary_line(), style=style))
