"""RL107 targets-not-standardized."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.analysis import curves
from runlint.analysis.expected import REGRESSION_LOSSES, SQUARED_LOSSES
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run


class TargetsNotStandardized(Rule):
    """A regression's loss at step 0 is far above what standardized targets give.

    With targets of mean 0 and std 1, a fresh model's mean squared error at step 0 is about
    1 + m² + s² for predictions of mean m and spread s (the ``outputs`` table at the first
    recorded step); an absolute error about 1 + |m| + s. A first loss more than ``ratio`` ×
    that (``ratio_absolute`` for L1/Huber) means the targets are on a scale the outputs are
    not: the targets were not standardized. Without ``meta.loss``, a model with a single
    output is judged as a squared error: a binary cross-entropy cannot reach the limit, since
    its loss is at most the logits' mean magnitude + ln 2.

    ## Why it matters
    A network's output starts near zero with unit-scale weights. Targets in the thousands make
    the loss and its gradients enormous, the first steps blow the weights up to reach them, and
    the learning rate that would suit the data is far from the one that suits the loss.

    ## Known problems
    - Losses summed over many outputs (instead of averaged) look the same: the fix is then the
      reduction, not the targets.
    - Physics-informed losses with terms of very different scales are flagged; standardize
      each term.

    ## Fix
    Standardize the regression targets with the training set's mean and std (and invert the
    transform for predictions), or scale the loss down.

    ## Seed
    "数据预处理:零中心化和归一化" and "参数初始化后,检查一下数据损失的初始值"
    """

    code = "RL107"
    name = "targets-not-standardized"
    severity = Severity.WARNING
    requires = ("outputs.std", "steps.loss")

    @dataclass
    class Options(Rule.Options):
        ratio: float = option(
            25.0, "first squared-error loss above this × what unit-scale targets give (healthy ≤ 2)"
        )
        ratio_absolute: float = option(
            5.0, "the same for an absolute-error loss (L1, Huber: it grows with the error's size)"
        )

    options: Options

    def applies(self, run: Run) -> str | None:
        loss = run.setup.loss
        if loss is None:
            width = run.outputs["width"].median() if not run.outputs.empty else float("nan")
            if width != 1:
                return "meta.loss not recorded and the model has not a single output"
        elif loss not in REGRESSION_LOSSES:
            return f"meta.loss is {loss!r}, not a regression loss"
        return None

    def check(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        loss = run.setup.loss or "mse"
        steps, values = curves.series(run.steps, "loss")
        out = run.outputs
        if values.size == 0 or out.empty or int(steps[0]) > 0:
            return
        first = out.iloc[0]
        mean, spread = float(first["mean"]), float(first["std"])
        if not (np.isfinite(mean) and np.isfinite(spread)):
            return
        squared = loss in SQUARED_LOSSES
        expected = 1 + mean**2 + spread**2 if squared else 1 + abs(mean) + spread
        limit = opts.ratio if squared else opts.ratio_absolute
        initial = float(values[0])
        if initial <= limit * expected:
            return
        scale = np.sqrt(initial) if squared else initial
        named = f"{run.setup.loss} loss" if run.setup.loss else "loss (taken as a squared error)"
        yield self.finding(
            run,
            f"the {named} is {initial:.3g} at step 0, {initial / expected:.0f}× what targets "
            f"of std 1 give for the model's first outputs (mean {mean:.2g}, std {spread:.2g}): "
            f"the targets are about {scale:.3g}× larger than what the model outputs",
            steps=(0, 0),
            where="loss",
            evidence={"initial_loss": initial, "expected": expected, "output_mean": mean},
        )
