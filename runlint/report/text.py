"""``--format text``: a compiler-style report, streamed run by run, with loss sparklines.

Each run's findings are shown as its diagnosis (``runlint.check.diagnose``): a cause with its
fix, then the findings it explains, indented under it, without fixes of their own.
"""

from __future__ import annotations

import math
from typing import TextIO

from rich.console import Console
from rich.text import Text

from runlint.check.engine import LossSpan, RunResult
from runlint.check.rule import Finding
from runlint.report import Report, chain_text, display_path
from runlint.report import Reporter as _Base
from runlint.report.escape import GuardedWriter
from runlint.report.escape import text as shown

BARS = "▁▂▃▄▅▆▇█"
STYLES = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def sparkline(values: list[float]) -> str:
    """``▁▂▃▄▅▆▇█`` for finite values, ``×`` for non-finite ones. The bars are scaled to the
    values' range, on a log scale when the values are positive and span more than ×10 (a run
    that spikes ×1000 and ends ×13 above its start must not look like a healthy decay)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "×" * len(values)
    lo, hi = min(finite), max(finite)
    scale = math.log if lo > 0 and hi > 10 * lo else (lambda x: x)
    lo, hi = scale(lo), scale(hi)
    span = hi - lo
    out = []
    for v in values:
        if not math.isfinite(v):
            out.append("×")
        elif span <= 0:
            out.append(BARS[3])
        else:
            out.append(BARS[min(len(BARS) - 1, int((scale(v) - lo) / span * len(BARS)))])
    return "".join(out)


def _num(x: float) -> str:
    return f"{x:.3g}"


def loss_summary(span: LossSpan) -> str:
    """``2.3 at step 0 → 30 at step 599 (×13; peak 2.08e+03 at step 2)``: logged values."""
    text = (
        f"{_num(span.first)} at step {span.first_step} → {_num(span.last)} at step {span.last_step}"
    )
    notes = []
    if span.first > 0 and span.last > 1.05 * span.first:
        notes.append(f"×{span.last / span.first:.3g}, up")
    if span.peak > 1.5 * max(span.first, span.last) and span.peak_step not in (
        span.first_step,
        span.last_step,
    ):
        notes.append(f"peak {_num(span.peak)} at step {span.peak_step}")
    return text + (f" ({'; '.join(notes)})" if notes else "")


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
                header.append(" " + loss_summary(result.loss_span), style="dim")
        c.print(header)
        for note in result.notes:
            c.print(Text.assemble(("warning", "yellow"), ": ", shown(note)))
        for diagnosis in result.diagnoses:
            if diagnosis.consequences:
                chain = chain_text(result, diagnosis.chain)
                c.print(Text.assemble(("diagnosis", "bold"), ": ", shown(chain)))
            self._finding(result.findings[diagnosis.cause], name)
            for i in diagnosis.consequences:
                cause = result.cause_of(i)
                self._finding(result.findings[i], name, cause)
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
                reasons = shown("; ".join(s.reasons))
                c.print(Text(f"  skipped {s.code} {s.name}: {reasons}", style="dim"))
            if result.ran:
                c.print(Text(f"  ran {len(result.ran)} rules: {' '.join(result.ran)}", style="dim"))
            for item in result.suppressed:
                c.print(Text(f"  suppressed {item.code} {item.name} by {item.by}", style="dim"))
            for info in result.info:
                c.print(Text(f"  {shown(info)}", style="dim"))

    def _finding(self, f: Finding, name: str, cause: Finding | None = None) -> None:
        """A cause: code, severity, run, message, fix, where/steps. A consequence: the same,
        indented under its cause, saying what it follows from instead of a fix."""
        c = self.console
        pad = "    " if cause is not None else "  "
        title = Text.assemble(
            pad[:-2] + ("↳ " if cause is not None else ""),
            (f.code, "bold"),
            " ",
            (f.severity.value, STYLES[f.severity.value]),
            " ",
            name,
            (f" ({shown(f.name)})", "dim"),
        )
        if cause is not None:
            title.append(f", a consequence of {cause.code} {cause.name}", style="dim")
        c.print(title)
        c.print(Text(pad + shown(f.message)))
        if cause is None:
            c.print(Text.assemble(pad, ("fix:", "bold green"), " ", shown(f.fix)))
        extra = []
        if f.where:
            extra.append(f"where: {shown(f.where)}")
        if f.steps is not None:
            extra.append(f"steps: {f.steps[0]}–{f.steps[1]}")
        if extra:
            c.print(Text(pad + "  ".join(extra), style="dim"))

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
