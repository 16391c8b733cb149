"""Linting a search: the per-run catalog on the trials' runs, then the sweep rules on the search.

``lint(search, rules, checker)`` runs ``runlint check``'s engine (a ``Checker``) on the best
trial's run (and on every trial's run with ``trials="all"``), keeps the results in
``search.run_results`` for the rules that look at them (RL806), then runs each sweep rule:
a rule whose data is missing is skipped with the reason, a crashing rule is a rule error and
never hides the others. The outcome is a ``RunResult`` for the search, so every report format
of ``runlint check`` writes it unchanged.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from runlint.check.engine import Checker, RuleError, RunResult, Skipped
from runlint.check.rule import Finding, NotJudged
from runlint.run.remote import RemoteRun
from runlint.sweep.model import Search, Trial
from runlint.sweep.rule import SweepRule
from runlint.sweep.sources import Want

__all__ = ["Linted", "check_trials", "lint", "lint_paths"]


@dataclass
class Linted:
    """What ``lint`` found: the search's result and the results of the trials it checked."""

    search: Search
    result: RunResult
    trials: dict[str, RunResult] = field(default_factory=dict)  # trial id -> its run's result


def check_trials(
    search: Search, checker: Checker, which: Literal["best", "all"] = "best", jobs: int = 1
) -> dict[str, RunResult]:
    """Each chosen trial's run checked by ``checker`` (trials without a run are left out)."""
    chosen: list[Trial]
    if which == "all":
        chosen = [t for t in search.trials if t.run is not None]
    else:
        best = search.best
        chosen = [best] if best is not None and best.run is not None else []
    paths: list[Path | RemoteRun] = [t.run for t in chosen if t.run is not None]
    results = list(checker.check(paths, jobs)) if paths else []
    out = {t.id: r for t, r in zip(chosen, results, strict=True)}
    search.run_results.update(out)
    return out


def lint(
    search: Search,
    rules: Sequence[SweepRule],
    checker: Checker | None = None,
    trials: Literal["best", "all"] = "best",
    jobs: int = 1,
) -> Linted:
    """Check the trials' runs (with ``checker``), then judge the search with ``rules``."""
    checked = check_trials(search, checker, trials, jobs) if checker is not None else {}
    result = RunResult(path=search.location, source=search.source)
    result.notes.extend(search.notes)
    for rule in rules:
        try:
            missing = rule.missing(search)
            if missing:
                result.skipped.append(Skipped(rule.code, rule.name, missing))
                continue
            found = list(rule.check(search))
            for item in found:
                if not isinstance(item, Finding):
                    raise TypeError(f"check() yielded {type(item).__name__}, not a Finding")
        except NotJudged as exc:
            result.skipped.append(Skipped(rule.code, rule.name, [" ".join(str(exc).split())]))
            continue
        except Exception as exc:
            frames = traceback.extract_tb(exc.__traceback__)
            at = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
            message = " ".join(str(exc).split())
            error = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
            result.rule_errors.append(RuleError(rule.code, rule.name, error + at))
            continue
        result.ran.append(rule.code)
        result.findings.extend(found)
    _explain(result.findings, rules)
    result.regroup({})  # each finding its own diagnosis: _explain already names the cause
    return Linted(search, result, checked)


def _explain(findings: list[Finding], rules: Sequence[SweepRule]) -> None:
    """A finding whose rule is ``explained_by`` another rule that fired on the same
    hyperparameter (``where``) is reported as that finding's consequence, with its fix."""
    by_code = {type(r).code: type(r) for r in rules}
    for f in findings:
        rule = by_code.get(f.code)
        for code in rule.explained_by if rule is not None else ():
            cause = next(
                (c for c in findings if c.code == code and c.where in (None, f.where)), None
            )
            if cause is not None:
                f.message = f"{f.message} — a consequence of {cause.code} {cause.name}"
                f.fix = f"fix {cause.code} first: {cause.fix}"
                f.evidence["explained_by"] = cause.code
                break


def lint_paths(
    targets: Sequence[str],
    want: Want | None = None,
    *,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] = (),
    trials: Literal["best", "all"] = "best",
) -> Linted:
    """Read the search of ``targets`` (folders, storages, experiments) and lint it with the
    default configuration found from the first target. Raises ``SourceError`` when no trial
    could be read."""
    from runlint.check import engine
    from runlint.check.config import find_config, load_config
    from runlint.sweep.rule import configure, discover, split_config
    from runlint.sweep.sources import SourceError, config_anchor, load_search, open_source

    sources = [open_source(t) for t in targets]
    search, errors = load_search(sources, want or Want())
    if search is None:
        raise SourceError("; ".join(m for _, m in errors) or "no trials found")
    cfg = load_config(find_config(config_anchor(targets[0])))
    catalog, sweeps = engine.discover(), discover()
    run_cfg, sweep_cfg = split_config(cfg, catalog, sweeps)
    rules = configure(sweeps, sweep_cfg, select, ignore)
    run_rules = engine.configure(catalog, run_cfg, None, [])
    checker = Checker(run_rules, meta=dict(cfg.meta))
    return lint(search, rules, checker, trials)
