"""RL204 loss-not-decreasing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.analysis import curves
from runlint.analysis.curves import MIN_CURVE_POINTS
from runlint.analysis.expected import SOFTMAX, chance_loss
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run


class LossNotDecreasing(Rule):
    """The training loss makes no progress at all over the run.

    The smoothed loss (a centered EMA, after any warm-up) must fall by at least
    ``min_drop`` of its starting value, both to its end and to its minimum. When the task is
    a classification the message says whether the loss sits at chance, ln(C).

    ## Why it matters
    A loss that never moves means nothing is learned: the labels do not match the inputs, the
    optimizer holds other parameters than the model, the gradients are zero, or the learning
    rate is far too small. The seed's coarse search stage exists to catch exactly this.

    A loss pinned at chance level (ln C, ``at_chance``) is an ``error``: the model has learnt
    nothing, and its results mean nothing.

    ## Known problems
    - A fine-tuning run that starts at a good loss and holds it is flagged.
    - Very short runs (fewer than ``min_steps`` steps) are not judged.

    ## Fix
    Overfit ~20 examples first: if even that fails, check that the labels match the inputs and
    that the optimizer was built over ``model.parameters()``; then raise the learning rate ×10.

    ## Seed
    "在第一个 epoch 内进行初始的粗粒度搜索,因为很多不正确的超参数设置会导致模型不学习,或loss爆炸。"
    and "过拟合一小部分数据。...确保可以实现 0 loss。"
    """

    code = "RL204"
    name = "loss-not-decreasing"
    severity = Severity.WARNING
    requires = ("steps.loss",)

    @dataclass
    class Options(Rule.Options):
        min_drop: float = option(
            0.03, "the smoothed loss must fall by at least this fraction of its start"
        )
        at_chance: float = option(
            0.05, "a loss within this fraction of ln(C) is said to be at chance level"
        )
        min_steps: int = option(MIN_CURVE_POINTS, "fewer logged loss points are not judged")

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        curve = curves.prepare_falling(run, opts.min_steps)
        if curve is None:
            return
        low = float(np.min(curve.smooth))
        to_end = curve.relative_drop()
        to_min = (curve.first - low) / curve.first
        if max(to_end, to_min) >= opts.min_drop:
            return
        chance = ""
        expected = chance_loss(run.setup)
        if (
            expected is not None
            and expected.kind == SOFTMAX
            and abs(curve.last - expected.value) < opts.at_chance * expected.value
        ):
            chance = f", at chance level {expected.formula} = {expected.value:.2f}"
        a, b = curve.bounds
        yield self.finding(
            run,
            f"the loss does not decrease: smoothed {curve.first:.3g} at step {a} and "
            f"{curve.last:.3g} at step {b} ({-to_end:+.1%} over {b - a} steps){chance}",
            "overfit ~20 examples to check the pipeline (labels match inputs, optimizer built "
            "over model.parameters(), zero_grad/step called), then raise the learning rate ×10",
            severity=Severity.ERROR if chance else self.severity,
            steps=(a, b),
            where="loss",
            evidence={"start": curve.first, "end": curve.last, "relative_drop": to_end},
        )
