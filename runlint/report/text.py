"""``--format text``: a compiler-style report, streamed run by run, with loss sparklines.

Each run's findings are shown as its diagnosis (``runlint.check.diagnose``): a cause with its
fix, then the findings it explains, indented under it, without fixes of their own.
"""

from __future__ import annotations

import math
import shutil
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


def wrap_width(out: TextIO) -> int | None:
    """The width text wraps at: the terminal's (``COLUMNS`` when set) when the report goes to
    a terminal; None, no wrapping (one line per line: grep-able), for a pipe or a file."""
    try:
        tty = bool(out.isatty())
    except (AttributeError, ValueError, OSError):
        tty = False
    return shutil.get_terminal_size((80, 24)).columns if tty else None


class Reporter(_Base):
    streams = True

    def __init__(self, out: TextIO, verbose: bool = False) -> None:
        super().__init__(out, verbose)
        self.width = wrap_width(out)
        self.console = self._console(out)
        self._err_console: Console | None = None

    def _console(self, out: TextIO) -> Console:
        return Console(
            file=GuardedWriter(out),  # type: ignore[arg-type]
            highlight=False,
            soft_wrap=True,  # lines are wrapped by ``_print`` (rich's Text.wrap), or not at all
            emoji=False,
            markup=False,
            width=self.width or 80,
        )

    @property
    def errors(self) -> Console:
        """Where error lines go: stderr when the report goes to stdout, else the report."""
        if self.err is None:
            return self.console
        if self._err_console is None:
            self._err_console = self._console(self.err)
        return self._err_console

    def _print(
        self, text: Text, indent: int = 0, hang: int = 2, console: Console | None = None
    ) -> None:
        """Print ``text`` indented by ``indent``; wrapped by rich at the report's width with
        continuation lines indented ``hang`` more (a word longer than a line is folded)."""
        c = console or self.console
        if self.width is None:
            c.print(Text(" " * indent) + text)
            return
        width = max(self.width - indent - hang, 20)
        for n, line in enumerate(text.wrap(c, width, overflow="fold")):
            line.rstrip()
            c.print(Text(" " * (indent + (hang if n else 0))) + line)

    def _error(self, *parts: str | tuple[str, str]) -> None:
        self._print(Text.assemble(("error", "bold red"), ": ", *parts), console=self.errors)

    def add(self, result: RunResult) -> None:
        path = shown(display_path(result.path))
        name = shown(result.name)
        if result.status == "error":
            self._error(shown(result.error) if result.error else path)
            return
        if not self.quiet and not self.statistics:
            header = Text.assemble((path, "bold"))
            if result.status == "incomplete":
                header.append("  (incomplete: still being written, or killed)", style="dim")
            if result.curve:
                header.append("  loss ")
                header.append(sparkline(result.curve), style="magenta")
                if result.loss_span:
                    header.append(" " + loss_summary(result.loss_span), style="dim")
            self._print(header)
        for note in result.notes:
            self._print(Text.assemble(("warning", "yellow"), ": ", shown(note)))
        if not self.statistics:
            for diagnosis in result.diagnoses:
                if diagnosis.consequences:
                    chain = chain_text(result, diagnosis.chain)
                    self._print(Text.assemble(("diagnosis", "bold"), ": ", shown(chain)))
                self._finding(result.findings[diagnosis.cause], name)
                for i in diagnosis.consequences:
                    cause = result.cause_of(i)
                    self._finding(result.findings[i], name, cause)
        for e in result.rule_errors:
            self._error(f"rule {e.code} {e.name} crashed on {name}: ", shown(e.error))
        if self.verbose:
            for s in result.skipped:
                reasons = shown("; ".join(s.reasons))
                self._print(Text(f"skipped {s.code} {s.name}: {reasons}", style="dim"), 2)
            if result.ran:
                ran = f"ran {len(result.ran)} rules: {' '.join(result.ran)}"
                self._print(Text(ran, style="dim"), 2)
            for item in result.suppressed:
                self._print(
                    Text(f"suppressed {item.code} {item.name} by {item.by}", style="dim"), 2
                )
            for info in result.info:
                self._print(Text(shown(info), style="dim"), 2)

    def _finding(self, f: Finding, name: str, cause: Finding | None = None) -> None:
        """A cause: code, severity, run, message, fix, where/steps. A consequence: the same,
        indented under its cause, saying what it follows from instead of a fix."""
        pad = 4 if cause is not None else 2
        title = Text.assemble(
            ("↳ " if cause is not None else ""),
            (f.code, "bold"),
            " ",
            (f.severity.value, STYLES[f.severity.value]),
            " ",
            name,
            (f" ({shown(f.name)})", "dim"),
        )
        if cause is not None:
            title.append(f", a consequence of {cause.code} {cause.name}", style="dim")
        self._print(title, pad - 2)
        self._print(Text(shown(f.message)), pad)
        if cause is None:
            self._print(Text.assemble(("fix:", "bold green"), " ", shown(f.fix)), pad)
        extra = []
        if f.where:
            extra.append(f"where: {shown(f.where)}")
        if f.steps is not None:
            extra.append(f"steps: {f.steps[0]}–{f.steps[1]}")
        if extra:
            self._print(Text("  ".join(extra), style="dim"), pad)

    def finish(self, report: Report) -> None:
        if self.verbose:
            for path, reason in report.passed:
                line = f"passed over {shown(display_path(path))}: {reason}"
                self._print(Text(line, style="dim"))
        for problem in report.problems:
            self._error(shown(problem))
        if self.statistics:
            rows = report.by_code()
            digits = max((len(str(r["count"])) for r in rows), default=1)
            for row in rows:
                self._print(
                    Text.assemble(
                        f"{row['count']:>{digits}}  ",
                        (row["code"], "bold"),
                        "  ",
                        (f"[{row['severity']}]", STYLES[row["severity"]]),
                        f" {row['name']}",
                    )
                )
        if self.quiet:
            return
        counts = report.counts()
        style = "bold red" if counts["error"] else ("yellow" if counts["warning"] else "green")
        self._print(Text(report.summary_line(), style=style))
