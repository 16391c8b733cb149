"""RL401 update-ratio-off."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from runlint.analysis.layers import (
    ADAM_FIRST_RATIO_HIGH,
    UPDATE_RATIO_LOW,
    adam_first_ratio,
    dense_update_ratios,
    lr_mask,
    params_long,
)
from runlint.analysis.wording import fmt, names
from runlint.check import Finding, Rule, Severity, option
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

    Adam-type optimizers take steps of ~lr per weight from the very first step (bias
    correction), so their ratio at the first full-lr steps is ~lr / rms(W): above
    ``high_early`` each step rewrites a fifth of the weights, which then grow until the ratio
    looks normal — the early ratio is judged too.

    A last check compares each dense layer with its peers: one layer updating ``peer_factor``
    times slower than the median dense layer usually has its own (mistaken) param group
    learning rate. Slow layers on the input side are vanishing gradients, left to RL402; a
    faster head is common on purpose (fine-tuning) and not reported.

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
    explained_by = ("RL202", "RL206", "RL402", "RL404", "RL502", "RL503")

    @dataclass
    class Options(Rule.Options):
        target: float = option(1e-3, "the seed's ~1e-3")
        low: float = option(
            UPDATE_RATIO_LOW, "median dense ratio below this: learning rate too low"
        )
        high: float = option(5e-2, "median dense ratio above this: learning rate too high")
        high_early: float = option(
            ADAM_FIRST_RATIO_HIGH, "Adam-type: median ratio of the first full-lr steps above this"
        )
        early_samples: int = option(1, "first full-lr samples judged (Adam: lr / rms(W) exactly)")
        all_slow: float = option(
            1e-4, "even the fastest dense layer below this: the lr is too low whatever the spread"
        )
        peer_factor: float = option(100.0, "one dense layer this many times slower than its peers")
        lr_frac: float = option(0.5, "judge steps where lr >= lr_frac × max lr")
        min_samples: int = option(3, "recorded steps needed")

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        o = self.options
        long = params_long(run)
        if long.empty or len(long.steps()[0]) < o.min_samples:
            return
        per_layer = dense_update_ratios(run, o.lr_frac)
        if per_layer.empty:
            return
        mask = lr_mask(run, long, o.lr_frac)
        typical = float(np.median(per_layer))
        steps = long.steps_in(mask)
        span = f"steps {steps[0]}–{steps[1]}"
        layers = f"{len(per_layer)} dense layer{'s' if len(per_layer) > 1 else ''}"
        evidence = {
            "median_ratio": typical,
            "per_layer": {k: float(v) for k, v in per_layer.items()},
            "expected": o.target,
        }
        spread = float(per_layer.max() / per_layer.min())
        early = adam_first_ratio(run, o.lr_frac, o.early_samples)
        # a layer far slower than its peers is RL402's (vanishing gradients), unless even the
        # fastest layer is too slow: then the learning rate holds every layer back
        if typical < o.low and (spread <= o.peer_factor or per_layer.max() < o.all_slow):
            message = f"median update/param ratio {fmt(typical)} over {span} for {layers}"
            fix = f"raise the learning rate ×{_round_factor(o.target / typical)}"
            yield self._finding(run, message, "low", fix, steps, evidence)
        elif typical > o.high and spread <= o.peer_factor and self._stays_high(run, per_layer):
            message = f"median update/param ratio {fmt(typical)} over {span} for {layers}"
            fix = f"lower the learning rate ×1/{_round_factor(typical / o.target)}"
            yield self._finding(run, message, "high", fix + " or add warm-up", steps, evidence)
        elif early is not None and early[0] > o.high_early:
            value, first = early
            message = (
                f"update/param ratio {fmt(value)} at the first full-lr steps "
                f"({first[0]}–{first[1]}, median over {layers}) with "
                f"{run.setup.optimizer_class or 'Adam'}, whose per-weight step is "
                f"~lr whatever the gradient: each step rewrites ~{fmt(100 * min(value, 1.0))}% of "
                f"the weights (median later {fmt(typical)}, after the weights grew)"
            )
            fix = f"lower the learning rate ×1/{_round_factor(value / o.target)}"
            evidence["early_ratio"] = value
            yield self._finding(run, message, "high", fix + " or add warm-up", first, evidence)
        elif spread <= o.peer_factor**2:  # beyond: a collapse along depth, RL402/RL403
            yield from self._outliers(run, per_layer, typical, span, steps)

    def _finding(
        self,
        run: Run,
        message: str,
        way: str,
        fix: str,
        steps: tuple[int, int],
        evidence: dict[str, object],
    ) -> Finding:
        return self.finding(
            run,
            f"{message}; expected ~{fmt(self.options.target)}: the learning rate is too {way}",
            fix,
            steps=steps,
            evidence=evidence,
        )

    def _stays_high(self, run: Run, per_layer: pd.Series) -> bool:
        """For an adaptive optimizer (Adam, Adagrad, RMSprop: its first steps are ~lr per weight
        whatever the gradient), whether the ratio is still above ``high`` in the later half of
        the steps; other optimizers: True."""
        o = self.options
        if not any(k in run.setup.optimizer_class.lower() for k in _ADAPTIVE):
            return True
        long = params_long(run)
        uniq, _ = long.steps()
        if len(uniq) < 2 * o.min_samples:
            return True
        ratio = long.col("update_ratio")
        later = (long.step >= uniq[len(uniq) // 2]) & long.rows_of(per_layer.index) & (ratio > 0)
        return bool(later.any() and float(np.median(ratio[later])) > o.high)

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
        odd = (rel < 1 / self.options.peer_factor) & (pos > first_normal)
        for name, factor in zip(per_layer.index[odd], rel[odd], strict=True):
            value = float(per_layer[name])
            yield self.finding(
                run,
                f"{name} updates {fmt(1 / factor)}× slower than "
                f"its dense peers: ratio {fmt(value)} vs median {fmt(typical)} over {span} "
                f"(peers: {names(per_layer.index)})",
                f"check {name}'s param group learning rate and its initial scale (a layer "
                "initialized too large updates too slowly relative to its weights)",
                steps=steps,
                where=str(name),
                evidence={"ratio": value, "peer_median": typical},
            )


#: Optimizers whose step per weight is normalized by a running gradient scale.
_ADAPTIVE = ("adam", "adagrad", "rmsprop", "adadelta", "adamax", "nadam", "radam")


def _round_factor(x: float) -> str:
    """A factor as a round number: 3, 10, 100, 1000, ..."""
    if x < 1.5:
        return "1"
    power = 10 ** math.floor(math.log10(x))
    lead = x / power
    return f"{(1 if lead < 2 else 3 if lead < 5 else 10) * power:g}"
