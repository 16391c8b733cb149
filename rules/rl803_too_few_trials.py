"""RL803 too-few-trials."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from runlint.analysis.wording import names
from runlint.check import Finding, Severity, option
from runlint.sweep import Search, SweepRule
from runlint.sweep.judge import pct


class TooFewTrials(SweepRule):
    """Too few trials with a result for the number of hyperparameters searched.

    Counts the trials with a finite objective (complete, or stopped early with a value) and
    the searched hyperparameters (those that take two values or more). Below
    ``per_hyperparameter`` trials per hyperparameter it is an info; below
    ``warn_per_hyperparameter`` a warning. The message gives the chance that the best of ``n``
    random trials lies in the top 5% of the space, 1 − 0.95ⁿ.

    ## Why it matters
    Each searched hyperparameter multiplies the space to cover. With a handful of trials per
    hyperparameter the search cannot tell an important setting from noise, and its best trial
    is likely far from the best the space holds: 30 random trials reach the top 5% with a
    probability of 79%, 60 with 95%.

    ## Known problems
    A Bayesian sampler (Optuna's TPE) needs fewer trials than random search once it has
    warmed up; the thresholds are for random search. A hyperparameter that varies by accident
    (a batch size the data loader rounded) inflates the count: restrict the judged ones with
    ``hyperparameters`` in ``[tool.runlint.sweep]``.

    ## Fix
    Run more trials, or search fewer hyperparameters at once: fix the less sensitive ones
    (momentum, the schedule's shape) and search the learning rate and the regularization.

    ## Seed
    "最常见的超参数:初始学习率、学习率衰减 schedule、正则强度……
    不太敏感的超参数:自适应学习率中的动量设置和时间表。"
    """

    code = "RL803"
    name = "too-few-trials"
    severity = Severity.WARNING
    requires = ("trials", "space")

    @dataclass
    class Options:
        per_hyperparameter: int = option(10, "trials per searched hyperparameter below which: info")
        warn_per_hyperparameter: int = option(5, "trials per hyperparameter below which: warning")

    options: Options

    def check(self, search: Search) -> Iterator[Finding]:
        o = self.options
        n, dims = len(search.judged), list(search.space)
        d = len(dims)
        need = o.per_hyperparameter * d
        if n >= need:
            return
        strong = n < o.warn_per_hyperparameter * d
        chance = 1 - 0.95**n
        failed = len(search.trials) - n
        also = f" ({failed} more trials have no result)" if failed else ""
        yield self.finding(
            search,
            f"{n} trials with a result{also} for {d} searched hyperparameter"
            f"{'' if d == 1 else 's'} ({names(dims, 5)}): {n / d:.1f} per hyperparameter, "
            f"below {o.per_hyperparameter}; the best of {n} random trials lies in the top 5% "
            f"of the space with a probability of {pct(chance)} (60 trials: 95%)",
            f"run at least {need} trials, or search fewer hyperparameters at once (fix the "
            "less sensitive ones, such as momentum, and search the learning rate and the "
            "regularization)",
            severity=self.severity if strong else Severity.INFO,
            evidence={"trials": n, "hyperparameters": dims, "needed": need, "top5_chance": chance},
        )
