"""Reports of a check: text (rich), json, github (workflow commands), sarif 2.1.0, junit.

Each format module has a ``Reporter`` with ``add(result)`` (called as each run is checked, so
text can stream) and ``finish(report)`` (writes whatever is left, e.g. the whole JSON document).
"""

from __future__ import annotations

import importlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from runlint.check.engine import RunResult
from runlint.check.rule import Finding, Rule, Severity
from runlint.check.tally import Tally
from runlint.report import escape
from runlint.run.remote import is_url

__all__ = ["FORMATS", "Report", "Reporter", "jsonable", "make_reporter"]

FORMATS = ("text", "json", "github", "sarif", "junit", "html")


@dataclass
class Report:
    """The outcome of one ``runlint check``: every run's result and what the command decided."""

    results: list[RunResult]
    rules: list[type[Rule]]
    fail_on: Severity = Severity.WARNING
    exit_code: int = 0
    problems: list[str] = field(default_factory=list)  # rule modules that failed to load
    verbose: bool = False
    #: folders the walk passed over, with the reason: ``(path, reason)``
    passed: list[tuple[str, str]] = field(default_factory=list)
    #: the counts over every run checked; given when ``results`` holds only some of the runs
    #: (a streaming report keeps none), else counted from ``results``
    tally: Tally = field(default_factory=Tally)

    def __post_init__(self) -> None:
        if not self.tally.runs and self.results:
            self.tally = Tally.of(self.results)

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.results for f in r.findings]

    def counts(self) -> dict[str, int]:
        return dict(self.tally.by_severity)

    def by_code(self) -> list[dict[str, Any]]:
        """``--statistics``: per rule code with findings, its name, severity and count, most
        frequent first (then by code)."""
        return self.tally.statistics()

    def suppressed(self) -> dict[str, int]:
        """How many findings were suppressed, by what (baseline, per-run-ignores, ...)."""
        return dict(self.tally.suppressed_by)

    def summary(self) -> dict[str, Any]:
        """The ``summary`` object of the JSON report (also what the text summary line says)."""
        t = self.tally
        return {
            "findings": t.findings,
            "by_severity": self.counts(),
            "runs": t.runs,
            "runs_unreadable": t.unreadable,
            "runs_incomplete": t.incomplete,
            "rules_selected": len(self.rules),
            "rules_skipped": t.skipped_rules,
            "skipped": [
                {"run": r.path, "code": s.code, "name": s.name, "reasons": s.reasons}
                for r in self.results
                for s in r.skipped
            ],
            "rule_errors": [
                {"run": r.path, "code": e.code, "name": e.name, "error": e.error}
                for r in self.results
                for e in r.rule_errors
            ]
            + [{"run": None, "code": None, "name": None, "error": p} for p in self.problems],
            "notes": [{"run": r.path, "note": n} for r in self.results for n in r.notes],
            "passed_over": [{"path": p, "reason": why} for p, why in self.passed],
            "suppressed": sum(t.suppressed_by.values()),
            "suppressed_by": self.suppressed(),
            "fail_on": self.fail_on.value,
            "exit_code": self.exit_code,
        }

    def summary_line(self) -> str:
        """``N findings (E errors, W warnings, I info) in R runs; S skipped rules`` (+ problems)."""
        t = self.tally
        c, n, runs, skipped = t.by_severity, t.findings, t.runs, t.skipped_rules
        line = (
            f"{n} finding{'' if n == 1 else 's'} ({c['error']} error{_s(c['error'])}, "
            f"{c['warning']} warning{_s(c['warning'])}, {c['info']} info) in {runs} "
            f"run{_s(runs)}; {skipped} skipped rule{_s(skipped)}"
        )
        crashed = t.rule_errors + len(self.problems)
        if t.unreadable:
            line += f"; {t.unreadable} unreadable run{_s(t.unreadable)}"
        if crashed:
            line += f"; {crashed} rule error{_s(crashed)}"
        suppressed = sum(t.suppressed_by.values())
        if suppressed:
            by = ", ".join(f"{n} by {what}" for what, n in sorted(t.suppressed_by.items()))
            line += f"; {suppressed} suppressed ({by})"
        return line


def _s(n: int) -> str:
    return "" if n == 1 else "s"


class Reporter:
    """Collects results; ``finish`` renders them. Subclasses may stream in ``add``.

    ``quiet``, ``statistics`` and ``err`` (where error lines go instead of ``out``: stderr when
    the report goes to stdout) are set by ``make_reporter``; a format may ignore them."""

    quiet: bool = False
    statistics: bool = False
    err: TextIO | None = None
    #: ``finish`` needs only ``report.tally``: each run is written in full by ``add``
    streams: bool = False

    def __init__(self, out: TextIO, verbose: bool = False) -> None:
        self.out = out
        self.verbose = verbose

    def add(self, result: RunResult) -> None:
        """Called once per run, in order, as soon as the run is checked."""

    def finish(self, report: Report) -> None:
        raise NotImplementedError


def make_reporter(
    fmt: str,
    out: TextIO,
    verbose: bool = False,
    *,
    quiet: bool = False,
    statistics: bool = False,
    err: TextIO | None = None,
) -> Reporter:
    """The reporter of format ``fmt`` (its module is imported only now)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    module = importlib.import_module(f"runlint.report.{fmt}")
    reporter: Reporter = module.Reporter(out, verbose)
    reporter.quiet, reporter.statistics, reporter.err = quiet, statistics, err
    return reporter


def jsonable(obj: Any) -> Any:
    """``obj`` made JSON-safe: NaN/±inf → ``"nan"``/``"inf"``/``"-inf"``, numpy → Python, every
    string one a UTF-8 document can hold (``runlint.report.escape.json``)."""
    if isinstance(obj, str):
        return escape.json(obj)
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Severity):
        return obj.value
    if isinstance(obj, dict):
        return {escape.json(str(k)): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return escape.json(str(obj))
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return jsonable(tolist())
    item = getattr(obj, "item", None)
    if callable(item):
        return jsonable(item())
    return escape.json(str(obj))


def chain_text(result: RunResult, chain: tuple[int, ...]) -> str:
    """``RL202 lr-too-high (step 0) → RL503 dead-relu (step 190)``: a diagnosis in one line."""
    parts = []
    for i in chain:
        f = result.findings[i]
        parts.append(f"{f.code} {f.name}" + (f" (step {f.steps[0]})" if f.steps else ""))
    return " → ".join(parts)


def consequence_line(cause: Finding) -> str:
    """What a consequence says instead of a fix: the cause to fix first."""
    return f"a consequence of {cause.code} {cause.name}: fix that first ({cause.fix})"


def finding_dict(
    finding: Finding,
    cause: int | None = None,
    consequences: list[int] | None = None,
    fingerprint: str | None = None,
) -> dict[str, Any]:
    """A finding in the DESIGN's JSON shape, JSON-safe, with its place in the run's diagnosis:
    ``cause``, the index (in the report's ``findings``) of the finding it is a consequence of,
    or null for a cause; ``consequences``, the indices of the findings it causes directly. A
    consequence's ``fix`` is empty: its cause's fix comes first."""
    return {
        "code": finding.code,
        "name": finding.name,
        "severity": finding.severity.value,
        "message": finding.message,
        "fix": finding.fix if cause is None else "",
        "run": finding.run,
        "steps": jsonable(list(finding.steps)) if finding.steps is not None else None,
        "where": finding.where,
        "evidence": jsonable(finding.evidence),
        "cause": cause,
        "consequences": consequences or [],
        "fingerprint": fingerprint,
    }


def display_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it, with ``/``; a URL (a
    run in object storage) as it is."""
    if is_url(path):
        return str(path)
    p = Path(path)
    try:
        rel = os.path.relpath(p.resolve(), Path.cwd().resolve())
    except ValueError:
        return p.as_posix()
    return Path(rel).as_posix() if not rel.startswith("..") else p.as_posix()


def location(result_path: str) -> str:
    """The file a finding points at (a CI annotation needs a file, not a folder): the run's
    ``meta.json``, else its first steps part; for imported logs the file that was read: the
    ``trainer_state.json`` (the output folder's or the latest checkpoint's), ``metrics.csv``,
    the first TensorBoard event file; the run folder itself when none is there (and a run
    read from a URL is its URL)."""
    if is_url(result_path):
        return result_path
    try:
        return display_path(log_file(Path(result_path)) or result_path)
    except OSError:  # an unreadable run folder
        return display_path(result_path)


def log_file(path: Path) -> Path | None:
    """The file of the run at ``path`` that a report points at (see ``location``), or None."""
    from runlint.run import importers
    from runlint.schema.layout import META_FILE

    if not path.is_dir():
        return path if os.path.lexists(path) else None
    if (path / META_FILE).is_file():
        return path / META_FILE
    kind = importers.kind(path)
    if kind == "hf":
        from runlint.run.importers import hf_trainer

        return hf_trainer.state_file(path)
    if kind == "lightning":
        return path / "metrics.csv"
    if kind == "tensorboard":
        from runlint.run.importers import tensorboard

        files = tensorboard.event_files(path)
        return files[0] if files else None
    parts = sorted(p for p in path.glob("steps-*.parquet") if p.is_file())
    return parts[0] if parts else None
