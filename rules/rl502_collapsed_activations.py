"""RL502 collapsed-activations."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.analysis.layers import RELU_KINDS, acts_long, module_table
from runlint.analysis.wording import fmt, names
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run


class CollapsedActivations(Rule):
    """Activations collapse to a constant (≈ 0 for tanh/ReLU, ≈ 0.5 for sigmoid) in depth.

    ## Why it matters
    With weights initialized too small every layer shrinks its input: after a few layers all
    outputs are ≈ 0 (the seed: a tanh layer should spread over [-1, 1], "而不是全输出 0"). The
    backward pass shrinks the same way, so the gradients vanish and the network does not learn.

    The rule reads the recorded standard deviation of every activation module's output, as the
    median over the run, and flags modules whose std is below ``std`` (the output is the same
    for every input) — when the collapse comes with depth (``shrink``× below the first
    activation module) or the first module itself is collapsed.

    ## Known problems
    ReLU modules whose units are dead are RL503's finding and are not counted here. A network
    fed inputs of tiny magnitude on purpose shows small but healthy activations in its first
    layer; the depth condition keeps those quiet unless the first layer itself is flat.
    Sampled every ``stats_every`` steps.

    ## Fix
    Initialize with He (std = √(2/fan_in)) for ReLU or Xavier (std = √(1/fan_in)) for tanh
    instead of a small constant like 0.01, or add BatchNorm after the fully-connected layers.

    ## Seed
    "错误初始化会减慢甚至停止学习过程。绘制所有层的激活/梯度直方图,观察输出分布。例如 tanh,
    希望分布在[-1,1],而不是全输出 0,或集中在两端。"
    """

    code = "RL502"
    name = "collapsed-activations"
    severity = Severity.WARNING
    requires = ("activations.std",)
    explained_by = ("RL104",)

    @dataclass
    class Options(Rule.Options):
        std: float = option(1e-2, "median output std below this: collapsed")
        shrink: float = option(10.0, "and this many times below the first activation module's std")
        dead_units: float = option(0.5, "ReLU modules with more dead units than this are RL503's")

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        o = self.options
        long = acts_long(run)
        if long.empty:
            return
        mask = long.finite("mean", "std")
        if not mask.any():
            return
        std = long.median(long.col("std"), mask).dropna()
        if std.empty:
            return
        order = module_table(run)["depth"]
        depth = order.reindex(std.index)
        std = std.iloc[np.argsort(depth.fillna(np.inf).to_numpy(), kind="stable")]
        first = float(std.iloc[0])
        dead = long.median(long.col("dead_units"), mask).reindex(std.index).fillna(0.0)
        if "kind" in long.frame.columns:
            relu = long.first("kind").reindex(std.index).isin(RELU_KINDS).to_numpy()
        else:
            relu = np.zeros(len(std), dtype=bool)
        flat = (std < o.std).to_numpy()
        deep = (std < first / o.shrink).to_numpy() | (first < o.std)
        candidates = flat & deep & ~(relu & (dead > o.dead_units).to_numpy())
        bad = std[candidates]
        if bad.empty:
            return
        where = str(bad.index[0])
        steps = long.steps_in(mask)
        mean = long.median(long.col("mean"), mask)
        yield self.finding(
            run,
            f"activations collapse: output std of module {where} is {fmt(float(bad.iloc[0]))} "
            f"(mean {fmt(float(mean[where]))}) vs {fmt(first)} at the first activation module "
            f"{std.index[0]}, median over steps {steps[0]}–{steps[1]}; {len(bad)} of "
            f"{len(std)} activation modules have std < {fmt(o.std)} ({names(bad.index)})",
            "initialize with He (std = √(2/fan_in)) for ReLU or Xavier (std = √(1/fan_in)) for "
            "tanh instead of a small constant, or add BatchNorm after the linear layers",
            steps=steps,
            where=where,
            evidence={"std": {str(k): float(v) for k, v in std.items()}},
        )
