"""RL503 dead-relu."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from runlint.analysis.layers import RELU_KINDS, Long, acts_long
from runlint.analysis.wording import fmt, names
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run


class DeadRelu(Rule):
    """ReLU units that never activate: outputs ≤ 0 for every sampled input.

    ## Why it matters
    A ReLU unit whose input is negative for every example outputs 0 and passes a gradient of 0:
    it never recovers and its weights never learn. A few dead units are normal; a layer where
    most units are dead has lost most of its capacity. Typical causes are a negative bias at
    initialization, a learning rate so high that one large update pushes units into the
    negative region for good, or badly scaled inputs.

    The rule reads, per ReLU module, the recorded fraction of units never positive over the
    sampled rows (``dead_units``) and the fraction of outputs ≤ 0 (``dead``), as medians over
    the second half of the run (dead units stay dead; early transients are not judged). A
    module is flagged when ``dead_units`` exceeds ``units`` and ``dead`` exceeds ``outputs``;
    a module where every unit is dead is an ``error`` (the network's signal is cut). Units
    dead from the first recorded step (a negative bias, a bad initialization) are a
    ``warning``: that capacity never took part; so is a module whose outputs are more than
    ``off_at_start`` ≤ 0 at the first recorded step and stay above ``outputs`` (its units are
    alive but fire for few inputs: a negative bias). Units that died during training in a run that
    still trained are ``info``: a net that lost part of a layer early (Adam's first steps, a
    momentum spike) often trains well on the rest, as drawn healthy runs with 64–83 % of one
    layer dead did.

    ## Known problems
    ``dead_units`` is measured on the sampled rows of one batch (``max_elems`` values): for a
    convolution with large feature maps that can be a single image, so a channel that reacts
    to rare patterns may look dead. ``dead`` guards against that. Leaky ReLU, ELU, GELU cannot
    die and are not checked.

    ## Fix
    Set the ReLU layers' biases to 0 (or a small positive value such as 0.01), initialize
    weights with He (std = √(2/fan_in)), lower the learning rate, or use LeakyReLU.

    ## Seed
    "扩展到神经网络,s = W_2 max(0, W_1x) … max(0,−) 是非线性函数,将所有小于 0 的激活 阈值设置为 0";
    "错误初始化会减慢甚至停止学习过程。绘制所有层的激活/梯度直方图,观察输出分布。"
    """

    code = "RL503"
    name = "dead-relu"
    severity = Severity.WARNING
    requires = ("activations.dead_units",)
    explained_by = ("RL104", "RL202", "RL602")

    @dataclass
    class Options(Rule.Options):
        units: float = option(0.5, "median fraction of never-positive units above this")
        outputs: float = option(0.75, "and median fraction of outputs <= 0 above this")
        window_start: float = option(0.5, "judge the run from this fraction of its steps on")
        off_at_start: float = option(
            0.9,
            "outputs <= 0 at the first recorded step above this, and above outputs later: off "
            "from the start (a centred init gives ~0.5; drawn healthy runs at most 0.58)",
        )

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        o = self.options
        long = acts_long(run)
        if long.empty or "kind" not in long.frame.columns:
            return
        relu = np.isin(long.first("kind").to_numpy(), RELU_KINDS)[long.codes]
        recorded = long.finite("mean", "std") & relu
        mask = recorded & long.window(o.window_start, 1.0)
        if not mask.any():
            return
        dead_units = long.col("dead_units")
        units = long.median(dead_units, mask).dropna()
        outputs = long.median(long.col("dead"), mask).reindex(units.index)
        bad = units[(units > o.units) & (outputs > o.outputs)].sort_values(ascending=False)
        if bad.empty:
            yield from self._off_from_start(run, long, recorded, outputs)
            return
        worst = str(bad.index[0])
        start = long.at_start(dead_units, recorded).reindex(bad.index)
        from_start = bool((start > o.units).any())
        all_dead = float(bad.iloc[0]) >= 0.999
        steps = long.steps_in(mask)
        first = long.steps_in(recorded)[0]
        began = "dead from the start" if from_start else "died during training"
        yield self.finding(
            run,
            f"{fmt(100 * float(bad.iloc[0]))}% of the units of module {worst} never activate "
            f"({fmt(100 * float(outputs[worst]))}% of its outputs ≤ 0), median over steps "
            f"{steps[0]}–{steps[1]}; {len(bad)} of {len(units)} ReLU modules have more than "
            f"{fmt(100 * o.units)}% dead units ({names(bad.index)}); {began} "
            f"({fmt(100 * float(start[worst]))}% of {worst}'s units dead at step {first})",
            "set the ReLU layers' bias to 0 and initialize with He (std = √(2/fan_in)); "
            "lower the learning rate if units die during training, or use LeakyReLU",
            severity=Severity.ERROR if all_dead else self.severity if from_start else Severity.INFO,
            steps=steps,
            where=worst,
            evidence={
                "dead_units": {str(k): float(v) for k, v in units.items()},
                "dead": {str(k): float(v) for k, v in outputs.items()},
            },
        )

    def _off_from_start(
        self, run: Run, long: Long, recorded: np.ndarray, outputs: pd.Series
    ) -> Iterator[Finding]:
        """Modules whose outputs are mostly ≤ 0 from the first recorded step and stay so:
        alive units, but each fires for few inputs (a negative bias, a shifted init)."""
        o = self.options
        start = long.at_start(long.col("dead"), recorded).reindex(outputs.index)
        off = start[(start > o.off_at_start) & (outputs > o.outputs)].sort_values(ascending=False)
        if off.empty:
            return
        worst = str(off.index[0])
        steps = long.steps_in(recorded)
        first = steps[0]
        yield self.finding(
            run,
            f"{fmt(100 * float(off.iloc[0]))}% of the outputs of module {worst} are ≤ 0 at step "
            f"{first}, before training moved it (a layer with centred weights and zero bias "
            f"gives about half), and {fmt(100 * float(outputs[worst]))}% later: its units fire "
            f"for few inputs from the start ({len(off)} of {len(outputs)} ReLU modules: "
            f"{names(off.index)})",
            "set the ReLU layers' bias to 0 and initialize with He (std = √(2/fan_in)), or use "
            "LeakyReLU",
            steps=steps,
            where=worst,
            evidence={"off_at_start": {str(k): float(v) for k, v in off.items()}},
        )
