"""RL501 saturated-activations."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.analysis.layers import SQUASHING_KINDS, acts_long
from runlint.analysis.wording import fmt, names
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run


class SaturatedActivations(Rule):
    """tanh/sigmoid outputs pile up at the ends of their range (|a| > 0.99 for tanh).

    ## Why it matters
    A saturated tanh or sigmoid has a slope of ≈ 0: the units pass no gradient and stop
    learning. The seed asks for a tanh layer's outputs to spread over [-1, 1], "而不是全输出 0,
    或集中在两端" — not piled at both ends. The usual causes are unnormalized inputs (raw
    pixel values 0…255, features in the thousands) and weights initialized too large.

    The rule reads the recorded fraction of saturated outputs (|a| > 0.99 for tanh-like
    modules, a < 0.01 or a > 0.99 for sigmoid) of every squashing module and reports the
    modules above ``fraction`` both at the first recorded step and as the median over the run:
    saturated from the start, the way a bad initialization or unscaled inputs leave a layer.

    ## Known problems
    Saturation that only develops while the loss falls is not judged: healthy networks grow
    confident (on drawn healthy runs a tanh layer went from 0 % to 75 % saturated and trained
    to 0.02 loss), and a learning rate that drives units into saturation is RL202's finding. A
    run recorded from a later step has no "start"; its first recorded step stands in. A sigmoid
    *output* gate that learns confident 0/1 decisions saturates by design; one used as
    the last module of a binary classifier can be excluded with ``ignore_modules``. The fraction
    is taken on sampled rows of the batch every ``stats_every`` steps.

    ## Fix
    Normalize the inputs (subtract the training-set mean, divide by the std), initialize with
    Xavier (std = √(1/fan_in)) for tanh, add BatchNorm before the nonlinearity, or use ReLU.

    ## Seed
    "错误初始化会减慢甚至停止学习过程。绘制所有层的激活/梯度直方图,观察输出分布。例如 tanh,
    希望分布在[-1,1],而不是全输出 0,或集中在两端。"
    """

    code = "RL501"
    name = "saturated-activations"
    severity = Severity.WARNING
    requires = ("activations.saturated",)
    explained_by = ("RL104", "RL202")

    @dataclass
    class Options(Rule.Options):
        fraction: float = option(
            0.45,
            "saturated fraction above this, at the first recorded step and as the median, flags "
            "a module (drawn healthy runs start at 0.01 or less; unscaled inputs at 0.47 and up)",
        )
        ignore_modules: tuple[str, ...] = option(
            (), "module names never judged (e.g. a gate that saturates by design)"
        )

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        o = self.options
        long = acts_long(run)
        if long.empty:
            return
        if "kind" not in long.frame.columns:
            return
        squashing = np.isin(long.first("kind").to_numpy(), SQUASHING_KINDS)[long.codes]
        mask = long.finite("mean", "std") & squashing
        if not mask.any():
            return
        saturated = long.col("saturated")
        sat = long.median(saturated, mask).dropna()
        sat = sat[~sat.index.isin(o.ignore_modules)]
        start = long.at_start(saturated, mask)
        from_start = start.reindex(sat.index) > o.fraction
        bad = sat[(sat > o.fraction) & from_start].sort_values(ascending=False)
        if bad.empty:
            return
        kind_of = long.first("kind").to_dict()
        worst = str(bad.index[0])
        kind = kind_of.get(worst, "tanh")
        band = "|a| > 0.99" if kind != "sigmoid" else "a < 0.01 or a > 0.99"
        steps = long.steps_in(mask)
        yield self.finding(
            run,
            f"{fmt(100 * float(bad.iloc[0]))}% of {kind} outputs of module {worst} are saturated "
            f"({band}), median over steps {steps[0]}–{steps[1]}, "
            f"{fmt(100 * float(start[worst]))}% at step {steps[0]}; {len(bad)} of {len(sat)} "
            f"squashing modules above {fmt(100 * o.fraction)}% ({names(bad.index)})",
            "normalize the inputs (zero mean, unit std on the training set) and initialize with "
            "std = √(1/fan_in) (Xavier); or put BatchNorm before the nonlinearity / use ReLU",
            steps=steps,
            where=worst,
            evidence={"saturated": {str(k): float(v) for k, v in sat.items()}},
        )
