"""RL401 update-ratio-off."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from runlint.layers import DENSE, fmt, lr_mask, names, param_table, params_long
from runlint.rule import Finding, Rule, Severity
from runlint.run import Run


class UpdateRatioOff(Rule):
    """The update/parameter ratio ‖Δθ‖/‖θ‖ of the weight layers is far from ~1e-3.

    ## Why it matters
    The seed's gauge of the learning rate: the size of an update relative to the weights should
    be about 1e-3. Far below (1e-5 and less) the weights hardly move and training crawls; far
    above (1e-1 and more) each step rewrites a sizeable part of the weights and the run bounces
    on a high plateau or diverges. The ratio is read on the dense weights (Linear, Conv,
    attention projections) only — biases, norm gains and embeddings have their own scales — over
    the steps where the learning rate is at least half its peak (warm-up and the decayed tail
    are not judged), as the median over steps per layer and the median over layers.

    A second check compares each dense layer with its peers: one layer updating ``peer_factor``
    times slower or faster than the median dense layer usually has its own (mistaken) param
    group learning rate. Vanishing gradients (RL402) show the same pattern on the input side
    and are left to RL402.

    ## Known problems
    Adam-type optimizers make updates of about ``lr`` per weight whatever the gradient, so the
    ratio reflects ``lr / typical |w|``; the same band is used. Fine-tuning a pre-trained model
    on purpose uses ratios of 1e-4 to 1e-5: lower ``low`` in ``[tool.runlint.RL401]``.
    Ratios are sampled every ``stats_every`` steps.

    ## Fix
    Too low: raise the learning rate (the message gives the factor to reach ~1e-3). Too high:
    lower it by the factor given, or add warm-up.

    ## Seed
    "Ratio of weights:updates — 参数 更新的幅度 和 大小 的比例:学习率 * 参数梯度 / 参数大小。
    一般是 1e-3,反应学习率大小。… print update_scale / param_scale # want ~1e-3"
    """

    code = "RL401"
    name = "update-ratio-off"
    severity = Severity.WARNING
    requires = ("params.update_ratio",)

    @dataclass
    class Options(Rule.Options):
        target: float = 1e-3  # the seed's ~1e-3
        low: float = 2e-5  # median dense ratio below this: learning rate too low
        high: float = 5e-2  # median dense ratio above this: learning rate too high
        peer_factor: float = 100.0  # one dense layer this far from its peers' median
        lr_frac: float = 0.5  # judge steps where lr >= lr_frac × max lr
        min_samples: int = 3  # recorded steps needed

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        o = self.options
        long = params_long(run)
        if long.empty or len(np.unique(long.step)) < o.min_samples:
            return
        table = param_table(run)
        mask = lr_mask(run, long, o.lr_frac)
        ratio = long.col("update_ratio")
        med = long.median(ratio, mask & (ratio > 0))
        dense = table.index[
            (table["kind"] == DENSE) & table["trainable"] & table["in_optimizer"]
        ].intersection(med.dropna().index)
        if len(dense) == 0:
            return
        per_layer = med[dense]
        typical = float(np.median(per_layer))
        steps = long.steps_in(mask)
        span = f"steps {steps[0]}–{steps[1]}"
        evidence = {
            "median_ratio": typical,
            "per_layer": {k: float(v) for k, v in per_layer.items()},
            "expected": o.target,
        }
        spread = float(per_layer.max() / per_layer.min())
        if (typical < o.low or typical > o.high) and spread <= o.peer_factor:
            low = typical < o.low
            factor = _round_factor(o.target / typical)
            fix = (
                f"raise the learning rate ×{factor} (ratio ~{fmt(o.target)})"
                if low
                else f"lower the learning rate ×1/{_round_factor(typical / o.target)} "
                "or add warm-up"
            )
            yield self.finding(
                run,
                f"median update/param ratio {fmt(typical)} over {span} for "
                f"{len(dense)} dense layer{'s' if len(dense) > 1 else ''}; "
                f"expected ~{fmt(o.target)}: the learning rate is too {'low' if low else 'high'}",
                fix,
                steps=steps,
                where=None,
                evidence=evidence,
            )
            return
        if spread > o.peer_factor**2:  # a collapse along depth: RL402/RL403 explain it
            return
        yield from self._outliers(run, per_layer, typical, span, steps)

    def _outliers(
        self,
        run: Run,
        per_layer: pd.Series,
        typical: float,
        span: str,
        steps: tuple[int, int],
    ) -> Iterator[Finding]:
        if len(per_layer) < 3:
            return
        # slow layers before the first normal one are vanishing gradients (RL402), not a bad lr
        rel = (per_layer / typical).to_numpy()
        pos = np.arange(len(rel))
        first_normal = int(np.argmax(rel >= 1 / self.options.peer_factor))
        odd = (rel > self.options.peer_factor) | (
            (rel < 1 / self.options.peer_factor) & (pos > first_normal)
        )
        for name, factor in zip(per_layer.index[odd], rel[odd], strict=True):
            value = float(per_layer[name])
            direction = "faster" if factor > 1 else "slower"
            yield self.finding(
                run,
                f"{name} updates {fmt(factor if factor > 1 else 1 / factor)}× {direction} than "
                f"its dense peers: ratio {fmt(value)} vs median {fmt(typical)} over {span} "
                f"(peers: {names(per_layer.index)})",
                f"check {name}'s param group: give it the learning rate of the others",
                steps=steps,
                where=str(name),
                evidence={"ratio": value, "peer_median": typical},
            )


def _round_factor(x: float) -> str:
    """A factor as a round number: 3, 10, 100, 1000, ..."""
    if x < 1.5:
        return "1"
    power = 10 ** math.floor(math.log10(x))
    lead = x / power
    return f"{(1 if lead < 2 else 3 if lead < 5 else 10) * power:g}"
