"""RL806 best-trial-findings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from runlint.check import Finding, NotJudged, Severity, option
from runlint.sweep import Search, SweepRule
from runlint.sweep.judge import trial_value


class BestTrialFindings(SweepRule):
    """The best trial's own run has findings: the winner overfits, never decayed its lr, ...

    The best trial's run (a runlint run directory or a log ``runlint check`` reads: the
    trial's ``runlint_run`` user attribute in Optuna, a run directory inside a Ray Tune trial
    folder, the run itself in a folder of runs) is checked with the run rules, configured as
    for ``runlint check``; each of its findings is reported for the search, at its own
    severity capped at this rule's, with its own fix. Only codes matching ``codes`` count
    (empty: all).

    ## Why it matters
    The best trial is the one the search will keep. If it overfits, never decayed its
    learning rate or has a noisy validation curve at its end, the search's conclusion is the
    hyperparameters of a run that is itself worse than it could be: fix it before narrowing
    the search around it.

    ## Known problems
    Only the best trial is looked at (``runlint sweep --trials`` reports every trial's run
    findings). A trial with no recorded run is skipped: set its ``runlint_run`` user attribute
    or record inside the Ray Tune trial folder.

    ## Fix
    Fix the best trial's run as its finding says, and train it again before relying on its
    hyperparameters.

    ## Seed
    "监控 loss,acc……acc 反映过拟合程度,过拟合加强正则和dropout……
    学习率衰减:验证集 loss 不降时,将学习率减半。"
    """

    code = "RL806"
    name = "best-trial-findings"
    severity = Severity.WARNING
    requires = ("trials", "best.run")

    @dataclass
    class Options:
        codes: tuple[str, ...] = option((), "run-rule codes or prefixes that count (empty: all)")

    options: Options

    def check(self, search: Search) -> Iterator[Finding]:
        best = search.best
        assert best is not None and best.run is not None
        result = search.run_results.get(best.id)
        if result is None:
            raise NotJudged(f"the best trial's run {best.run} was not checked")
        if result.status == "error":
            raise NotJudged(f"the best trial's run cannot be read: {result.error}")
        codes = tuple(c.upper() for c in self.options.codes)
        for f in result.findings:
            if codes and not f.code.startswith(codes):
                continue
            severity = min(f.severity, self.severity, key=lambda s: s.rank)
            yield self.finding(
                search,
                f"the best trial {trial_value(search, best)} has {f.code} {f.name} in its run "
                f"{best.run}: {f.message}",
                f.fix,
                severity=severity,
                steps=f.steps,
                where=f"{best.label}: {f.where}" if f.where else best.label,
                evidence={
                    "trial": best.id,
                    "run": str(best.run),
                    "code": f.code,
                    "severity": f.severity.value,
                    **f.evidence,
                },
            )
