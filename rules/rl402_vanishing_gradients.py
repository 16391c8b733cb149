"""RL402 vanishing-gradients."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from runlint.analysis.layers import (
    UPDATE_RATIO_LOW,
    batchnorm_inputs,
    dense_params,
    dense_update_ratios,
    input_output_ratio,
    param_table,
    params_long,
)
from runlint.analysis.wording import fmt
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run

_FIX = (
    "use ReLU instead of sigmoid/tanh with He init (std = √(2/fan_in)), or add BatchNorm after "
    "each fully-connected layer, before the nonlinearity"
)


class VanishingGradients(Rule):
    """Gradients shrink by orders of magnitude from the output layers to the input layers.

    ## Why it matters
    The seed asks to plot the gradient distribution of every layer because a wrong
    initialization "会减慢甚至停止学习过程". When each layer multiplies the backward signal by
    less than one (sigmoid's slope is at most 1/4, tanh with too small weights), the layers near
    the input get gradients 1e-4…1e-10 of those near the output and stop learning while the head
    trains alone on random features.

    The rule reads ‖∇W‖/‖W‖ of every dense weight (Linear, Conv, attention projections;
    embeddings, biases and norm layers have other scales), takes its median over the run, and
    compares the input side (median of the first quarter of the dense layers) with the output
    side (the largest value of the last half). Healthy networks stay within ×10 of each other.
    The same comparison is made on what the optimizer does with those gradients, the
    update/parameter ratio: input-side layers that hardly move (below ``frozen``, 50× under the
    seed's ~1e-3) while the output side moves ``update_gap``× more have lost their gradient on
    the way down, even where the head alone takes most of the ×100 (a binary head, left out of
    the gradient comparison below).

    ## Known problems
    Needs three dense layers or more. A weight with a single output row (the head of a
    binary classifier or a regression) is left out: its relative gradient is tens to hundreds
    of times a hidden layer's in healthy runs. Layers that feed a BatchNorm are left out: their
    weights are scale-invariant, so ‖∇W‖/‖W‖ falls as ‖W‖ grows (AdamW on a drawn healthy BatchNorm
    MLP: 0.005× the head's) whatever gradient flows back. Residual networks carry gradients
    around the blocks and are rarely flagged; a network whose first layers are frozen on
    purpose has no gradient there and is left to RL404. The update comparison also flags a
    deep net trained on purpose with tiny per-layer learning rates at its input side (layer-wise
    fine-tuning: lower ``frozen`` in ``[tool.runlint.RL402]``). Sampled every ``stats_every``
    steps.

    ## Fix
    Use ReLU-family activations instead of sigmoid/tanh in deep stacks, initialize with He
    (std = √(2/fan_in)), add BatchNorm after the fully-connected layers (before the
    nonlinearity), or add residual connections.

    ## Seed
    "错误初始化会减慢甚至停止学习过程。绘制所有层的激活/梯度直方图,观察输出分布。"
    """

    code = "RL402"
    name = "vanishing-gradients"
    severity = Severity.WARNING
    requires = ("params.grad_norm", "params.param_norm")
    explained_by = ("RL104", "RL501", "RL502")

    @dataclass
    class Options(Rule.Options):
        ratio: float = option(1e-2, "input-side / output-side gradient-to-weight ratio below this")
        min_layers: int = option(3, "dense layers needed to speak of depth")
        frozen: float = option(
            UPDATE_RATIO_LOW, "input-side update/param ratio below this: the layers hardly move"
        )
        update_gap: float = option(
            0.1, "... while the input side moves less than this share of the output side"
        )

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        o = self.options
        long = params_long(run)
        if long.empty:
            return
        table = param_table(run)
        grad, weight = long.col("grad_norm"), long.col("param_norm")
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = grad / weight
        ok = (weight > 0) & (grad > 0)
        per_layer = long.median(rel, ok)
        dense = dense_params(run).intersection(per_layer.dropna().index)
        normalized = table.index[table["layer"].isin(batchnorm_inputs(run))]
        dense = dense.difference(normalized).difference(_single_output(run))
        if len(dense) < o.min_layers:
            return
        found = input_output_ratio(per_layer[dense], table.loc[dense, "dense_depth"])
        if found is None:
            return
        ratio, first, last = found
        steps = long.steps_in(ok)
        if ratio >= o.ratio:
            yield from self._frozen_input(run, dense, table, steps)
            return
        yield self.finding(
            run,
            f"gradient/weight ratio ‖∇W‖/‖W‖ is {fmt(float(per_layer[first]))} at {first} "
            f"(input side) vs {fmt(float(per_layer[last]))} at {last} (output side): the "
            f"input-side quarter of the {len(dense)} dense layers gets {fmt(ratio)}× the "
            f"relative gradient of the output side (median over steps {steps[0]}–{steps[1]})",
            _FIX,
            steps=steps,
            where=first,
            evidence={
                "input_output_ratio": ratio,
                "per_layer": {k: float(per_layer[k]) for k in dense},
            },
        )

    def _frozen_input(
        self, run: Run, dense: pd.Index, table: pd.DataFrame, steps: tuple[int, int]
    ) -> Iterator[Finding]:
        """The update/param ratios of the input side: far below ~1e-3 and the output side's."""
        o = self.options
        updates = dense_update_ratios(run)
        moved = dense.intersection(updates.index)
        if len(moved) < o.min_layers:
            return
        found = input_output_ratio(updates[moved], table.loc[moved, "dense_depth"])
        if found is None:
            return
        ratio, first, last = found
        inputs = ratio * float(updates[last])
        if not (inputs < o.frozen and ratio < o.update_gap):
            return
        yield self.finding(
            run,
            f"the input-side quarter of the {len(moved)} dense layers hardly moves: median "
            f"update/param ratio {fmt(inputs)} (the seed wants ~1e-3) against "
            f"{fmt(float(updates[last]))} at {last} ({fmt(ratio)}×): the gradient fades on its "
            "way down to the input layers",
            _FIX,
            steps=steps,
            where=first,
            evidence={"input_update_ratio": inputs, "update_input_output_ratio": ratio},
        )


def _single_output(run: Run) -> list[str]:
    """Weights of one output row (a binary head): ‖∇W‖/‖W‖ of a single row is of another scale
    than a layer's (drawn healthy binary MLPs: 30–250× their hidden layers')."""
    return [p.name for p in run.setup.params if p.shape and len(p.shape) == 2 and p.shape[0] == 1]
