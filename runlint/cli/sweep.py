"""``runlint sweep PATH...``: the trials found under PATH linted as one hyperparameter search.

The flags of ``runlint check`` (one declaration: ``check_flags``; ``PATH`` may also be an
Optuna storage URL or a Ray Tune experiment folder), plus the objective and the trials to
check. The report formats, exit codes and ``[tool.runlint]`` are ``check``'s: the search is
one entry of the report (its findings are the sweep rules'), and with ``--trials`` each trial's
run is another (its findings are the run rules').
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from runlint.check.rule import Rule

from runlint.check.config import ConfigError
from runlint.cli.check import check_flags, settings
from runlint.cli.flags import Command, CommandError, Flag, switch
from runlint.hints import suggest

__all__ = ["SWEEP", "sweep_flags"]

DIRECTIONS = {"min": "minimize", "minimize": "minimize", "max": "maximize", "maximize": "maximize"}
SWEEP_KEYS = ("objective", "direction", "study", "hyperparameters")


def _direction(text: str) -> str:
    if text.lower() not in DIRECTIONS:
        raise argparse.ArgumentTypeError(f"expected min or max, got {text!r}")
    return DIRECTIONS[text.lower()]


_direction.__name__ = "direction"

EXTRA = (
    Flag(
        ("--objective",),
        "The metric the search optimizes (default: val_loss, else val_acc; an Optuna study's "
        "own value; a Ray Tune experiment's metric).",
        metavar="NAME",
        doc="the metric the search optimizes: an epochs column of the runs (default `val_loss`, "
        "else `val_acc`), a Ray Tune result key (default: the experiment's metric); an Optuna "
        "study's value is its objective",
    ),
    Flag(
        ("--direction",),
        "Whether the objective is minimized or maximized (default: the study's, else from "
        "its name).",
        value=_direction,
        metavar="min|max",
        doc="`min` or `max` (default: an Optuna study's direction, else from the objective's "
        "name: a loss or an error is minimized, an accuracy or a score maximized)",
    ),
    Flag(
        ("--study",),
        "Optuna studies to read from the storage (default: all; each is a stage).",
        repeat=True,
        metavar="NAME",
        doc="the Optuna studies to read from a storage (default all of them, each a stage of "
        "the search); repeatable",
    ),
    switch(
        ("--trials",),
        "Also report each trial's run findings (the best trial's are RL806's).",
        doc="also check every trial's run with the run rules and report its findings (the best "
        "trial's run is always checked, for RL806)",
    ),
)


def sweep_flags() -> list[Flag]:
    """``check``'s flags, ``PATH`` taking URLs too, then the sweep's own."""
    out = []
    for flag in check_flags():
        if flag.positional:
            flag = replace(
                flag,
                help="Folders of runs, Optuna storage URLs (sqlite:///study.db) or Ray Tune "
                "experiment folders; together, one search.",
                value=str,
            )
        out.append(flag)
    return [*out, *EXTRA]


def _sweep_config(table: dict[str, Any], where: str) -> dict[str, Any]:
    """``[tool.runlint.sweep]``, checked."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("_", "-")
        if name == "objective":
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}: sweep.objective must be a metric name")
            out["objective"] = value
        elif name == "direction":
            if not isinstance(value, str) or value.lower() not in DIRECTIONS:
                raise ConfigError(f"{where}: sweep.direction must be min or max, got {value!r}")
            out["direction"] = DIRECTIONS[value.lower()]
        elif name in ("study", "hyperparameters"):
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ConfigError(f"{where}: sweep.{name} must be a list of names")
            out[name] = tuple(values)
        else:
            raise ConfigError(f"{where}: unknown key sweep.{key}" + suggest(name, SWEEP_KEYS))
    return out


def run_sweep(args: argparse.Namespace) -> int:
    """Lint the search under ``args.paths``, print the report, return the exit code."""
    from runlint.check import engine
    from runlint.check.engine import RunResult
    from runlint.extras import MissingExtra
    from runlint.report import make_reporter
    from runlint.sweep import Want, lint, load_search, open_source
    from runlint.sweep import rule as sweep_rule
    from runlint.sweep.report import SweepReport
    from runlint.sweep.sources import SourceError, config_anchor

    targets: list[str] = list(args.paths)
    ns = argparse.Namespace(**vars(args))
    ns.paths = [config_anchor(t) for t in targets]
    try:
        s = settings(ns)
        cfg = s.config
        table = _sweep_config(cfg.sweep, cfg.where)
        catalog = engine.discover()
        sweeps = sweep_rule.discover()
        run_cfg, sweep_cfg = sweep_rule.split_config(cfg, catalog, sweeps)
        run_sel, sweep_sel = sweep_rule.split_selectors(s.select, catalog, sweeps, "--select")
        run_ign, sweep_ign = sweep_rule.split_selectors(s.ignore, catalog, sweeps, "--ignore")
        run_rules = engine.configure(catalog, run_cfg, run_sel or None, run_ign or [])
        rules = sweep_rule.configure(sweeps, sweep_cfg, sweep_sel or None, sweep_ign or [])
    except ConfigError as exc:
        raise CommandError(str(exc)) from None

    want = Want(
        objective=args.objective or table.get("objective"),
        direction=args.direction or table.get("direction"),
        studies=tuple(args.study or ()) or table.get("study", ()),
        hyperparameters=table.get("hyperparameters", ()),
    )
    errors: list[RunResult] = []
    sources = []
    for text in targets:
        try:
            sources.append(open_source(text))
        except SourceError as exc:
            errors.append(RunResult(path=text, status="error", error=str(exc)))
    try:
        search, unreadable = load_search(sources, want)
    except MissingExtra as exc:
        raise CommandError(str(exc)) from None
    errors += [RunResult(path=p, status="error", error=m) for p, m in unreadable]
    checker = engine.Checker(run_rules, meta=s.meta, curve=s.fmt == "text")
    results: list[RunResult] = list(errors)
    linted = None
    if search is not None:
        linted = lint(search, rules, checker, "all" if args.trials else "best", s.jobs)
        results.append(linted.result)
        if args.trials:
            results += list(linted.trials.values())
    elif not errors:
        errors.append(RunResult(path=", ".join(targets), status="error", error="no trials found"))
        results = list(errors)
    code = engine.exit_code(results, s.fail_on, s.exit_zero)
    problems = [*catalog.errors, *(e for e in sweeps.errors if e not in catalog.errors)]
    if problems:
        code = 2
    report = SweepReport(
        results=results,
        # the reports read code, name, severity, docs and options: a sweep rule has them all
        rules=[*(cast("type[Rule]", type(r)) for r in rules), *(type(r) for r in run_rules)],
        fail_on=s.fail_on,
        exit_code=code,
        problems=problems,
        verbose=s.verbose,
        search=linted.search if linted is not None else None,
    )
    try:
        target: Any = s.output.open("w", encoding="utf-8") if s.output else nullcontext(sys.stdout)
    except OSError as exc:
        raise CommandError(f"{s.output}: cannot write ({exc.strerror or exc})") from None
    with target as out:
        if s.fmt == "json":
            from runlint.report.json import document
            from runlint.sweep.export import search_dict

            doc = document(report)
            doc["search"] = search_dict(linted.search) if linted is not None else None
            json.dump(doc, out, indent=2, allow_nan=False, ensure_ascii=False)
            out.write("\n")
        elif s.fmt == "html":
            from runlint.report.html.sweep import render_sweep

            out.write(render_sweep(linted.search if linted is not None else None, report))
        else:
            reporter = make_reporter(s.fmt, out, s.verbose)
            for result in results:
                reporter.add(result)
            reporter.finish(report)
    if s.fmt == "html" and s.output is not None:
        print(f"wrote {s.output}", file=sys.stderr)
    return code


SWEEP = Command(
    "sweep",
    "Lint a hyperparameter search: runs, an Optuna storage or a Ray Tune experiment.",
    """Lint a hyperparameter search as a whole (CS231n §5): the trials found under PATH (runs,
an Optuna storage URL such as sqlite:///study.db, a Ray Tune experiment folder) are one
search; the sweep rules (RL8xx) judge its sampling, ranges, stages and trial count, and the
best trial's run is checked with the run rules.

Exit codes as for check: 0 no finding at or above --fail-on; 1 findings; 2 usage,
configuration or unreadable-input error.""",
    sweep_flags,
    run_sweep,
)
