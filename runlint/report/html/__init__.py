"""``runlint report`` / ``check --format html``: one self-contained HTML page of runs and findings.

Per run: the loss (raw and smoothed) against epochs, the learning rate, train/validation loss
and accuracy, the update/parameter ratio and gradient norm per layer, activation statistics,
activation and gradient histograms as heatmaps, the first layer's weights when it takes an
image, and the metadata; every finding shaded on the plot of the signal it is about, with its
message and fix beside it. Many runs: a sortable overview table and overlays of the selected
runs' curves. The plots are drawn by uPlot (MIT, vendored in ``assets/``): the file opens with
no network and needs no extra install.

    from runlint.report.html import write_report
    write_report(["logs/"], "report.html")            # check the runs, then write the page
    write_report(report, "report.html")               # a finished check (runlint.report.Report)
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from runlint.check.engine import RunResult
from runlint.report import Report
from runlint.report import Reporter as _Base

__all__ = ["Reporter", "Written", "check_paths", "render", "write_report"]


@dataclass(frozen=True)
class Written:
    """What ``write_report`` wrote: where, how many bytes, runs and findings, and how long."""

    path: str | None
    bytes: int
    runs: int
    findings: int
    seconds: float


def check_paths(
    paths: Sequence[str | Path],
    *,
    config: str | Path | None = None,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] = (),
    jobs: int = 1,
) -> Report:
    """Check the runs under ``paths`` as ``runlint check`` does (config found from the first
    path, default gate). Raises ``runlint.check.config.ConfigError`` for a bad config."""
    from runlint.check import engine
    from runlint.check.config import find_config, load_config
    from runlint.check.rule import Severity
    from runlint.run.remote import RemoteRun

    roots = [Path(p) for p in paths]
    cfg = load_config(Path(config) if config else find_config(roots[0] if roots else None))
    catalog = engine.discover()
    rules = engine.configure(catalog, cfg, list(select) if select else None, list(ignore))
    results: list[RunResult] = []
    found: list[Path | RemoteRun] = []
    for path, error in engine.runs_or_errors(roots):
        if error is None and not isinstance(path, str):
            found.append(path)
        else:
            results.append(RunResult(path=str(path), status="error", error=error))
    checker = engine.Checker(rules, meta=dict(cfg.meta))
    results.extend(checker.check(found, jobs))
    fail_on = cfg.fail_on or Severity.WARNING
    code = engine.exit_code(results, fail_on, bool(cfg.exit_zero))
    if catalog.errors:
        code = 2
    return Report(results, [type(r) for r in rules], fail_on, code, list(catalog.errors))


def render(report: Report | Sequence[RunResult], title: str | None = None) -> str:
    """The HTML page of a finished check (its results; each run is read again for its plots)."""
    from runlint import __version__
    from runlint.report.html.extract import RunPage, overlays, run_payload
    from runlint.report.html.page import render_page
    from runlint.run import load_run

    if isinstance(report, Report):
        results, summary = list(report.results), report.summary_line()
    else:
        results = list(report)
        summary = Report(results, []).summary_line()
    pages: list[RunPage | None] = []
    errors: list[str | None] = []
    k = 0
    for i, result in enumerate(results):
        numbered = [(k + j, f) for j, f in enumerate(result.findings)]
        k += len(result.findings)
        if result.status == "error":
            pages.append(None)
            errors.append(result.error)
            continue
        try:
            run = load_run(Path(result.path))
            pages.append(run_payload(run, numbered, i))
            errors.append(None)
        except Exception as exc:  # a plot is never worth a crash: the run says why
            pages.append(None)
            errors.append(f"{result.path}: cannot draw ({type(exc).__name__}: {exc})")
    if title is None:
        title = "runlint report" + (f": {results[0].name}" if len(results) == 1 else "")
    overview = overlays(pages)
    overview["names"] = [r.name for r in results]
    return render_page(
        results,
        pages,
        overview,
        title=title,
        summary=summary,
        version=__version__,
        errors=errors,
    )


def write_report(
    sources: Report | Iterable[str | Path | RunResult],
    out: str | Path | TextIO,
    *,
    title: str | None = None,
    config: str | Path | None = None,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] = (),
    jobs: int = 1,
) -> Written:
    """Write the HTML report of ``sources`` to ``out`` (a path, or a text stream).

    ``sources`` is a finished check (``Report``), its ``RunResult``\\ s, or paths (run
    directories, folders of runs, foreign logs), which are checked first with the config
    found from the first path (``config``/``select``/``ignore``/``jobs`` as for ``check``).
    """
    start = time.perf_counter()
    if isinstance(sources, Report):
        report: Report | list[RunResult] = sources
    else:
        items = list(sources)
        if items and all(isinstance(s, RunResult) for s in items):
            report = [s for s in items if isinstance(s, RunResult)]
        else:
            paths = [s.path if isinstance(s, RunResult) else s for s in items]
            report = check_paths(paths, config=config, select=select, ignore=ignore, jobs=jobs)
    text = render(report, title=title)
    data = text.encode("utf-8")
    where: str | None = None
    if isinstance(out, str | os.PathLike):
        target = Path(out)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        where = str(target)
    else:
        out.write(text)
    results = report.results if isinstance(report, Report) else report
    return Written(
        where,
        len(data),
        len(results),
        sum(len(r.findings) for r in results),
        time.perf_counter() - start,
    )


class Reporter(_Base):
    """``check --format html``: the page, written when the check is finished."""

    def __init__(self, out: TextIO, verbose: bool = False) -> None:
        super().__init__(out, verbose)

    def finish(self, report: Report) -> None:
        self.out.write(render(report))
