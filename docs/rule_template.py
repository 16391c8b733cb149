"""RL999 loss-above-start — a template: copy to ``rules/rlNNN_your_rule.py`` and edit.

(The file name's number and words follow the code and the name; the catalog finds the rule by
itself, there is no registry to edit.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from runlint.analysis import curves
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run


class LossAboveStart(Rule):
    """The smoothed loss ends above where it started.

    (The first line is the summary the catalog shows; then what exactly is measured, with each
    option named where it is used.) The loss is smoothed after any warm-up; the rule fires when
    its last smoothed value is more than ``margin`` above its first.

    ## Why it matters
    A run whose loss ends higher than it began has learnt nothing that lasted.

    ## Known problems
    - A curriculum or a data stream that grows harder raises the loss on purpose.

    ## Fix
    Lower the learning rate ×0.1 and check the data pipeline.

    ## Seed
    "很多不正确的超参数设置会导致模型不学习,或loss爆炸。"
    """

    code = "RL999"
    name = "loss-above-start"
    severity = Severity.WARNING
    requires = ("steps.loss",)  # names from runlint.schema; any_of(...) for alternatives

    @dataclass
    class Options(Rule.Options):
        margin: float = option(0.1, "the smoothed loss ends above its start by this fraction")

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        curve = curves.prepare(run)  # shared with other rules through Run.memo
        if curve is None or curve.first <= 0:
            return
        rise = curve.last / curve.first - 1.0
        if rise > self.options.margin:
            a, b = curve.bounds
            yield self.finding(
                run,
                f"the smoothed loss ends at {curve.last:.3g} (step {b}), {rise:.0%} above its "
                f"start {curve.first:.3g} (step {a})",
                steps=(a, b),
                where="loss",
                evidence={"start": curve.first, "end": curve.last},
            )  # no fix given: the docstring's ## Fix is the finding's fix
