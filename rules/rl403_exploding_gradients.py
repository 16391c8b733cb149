"""RL403 exploding-gradients."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from runlint.analysis.layers import (
    Long,
    dense_params,
    input_output_ratio,
    param_table,
    params_long,
)
from runlint.analysis.wording import fmt
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run


class ExplodingGradients(Rule):
    """Gradient norms blow up: over training, toward the input layers, or against the weights.

    ## Why it matters
    The seed's coarse search drops settings that make "loss爆炸" (the loss explode); exploding
    gradients are the mechanism. Weights initialized too large make every layer amplify the
    signal, so activations and gradients grow geometrically with depth; a forgotten
    ``zero_grad()`` sums every gradient since the start so their norm grows step after step;
    too high a learning rate feeds back into ever larger gradients. Each ends in a loss that
    spikes, plateaus high or turns NaN.

    The rule computes the global gradient norm per recorded step and each dense layer's
    ‖∇W‖/‖W‖, and reports the first of:

    - a non-finite gradient at a step whose weights were finite (``error``);
    - growth over training: the median global norm over the last quarter is ``growth``× the
      norm at the first recorded step;
    - a sawtooth with the epochs: at every epoch start judged, the norm falls below
      ``saw_drop``× its last value in the epoch before, and within the epochs it climbs (rank
      correlation with the step above ``saw_rise``): gradients accumulate across steps and
      are cleared once per epoch (``zero_grad()`` outside the batch loop);
    - gradients ``weight_ratio``× larger than the weights they update (median over the run and
      over the dense layers): one SGD step would rewrite the layer many times over;
    - growth toward the input: the input-side quarter of the dense layers gets ``depth``× the
      largest gradient/weight ratio of the output-side half.

    ## Known problems
    Mixed-precision runs skip overflowing steps before the optimizer sees them; those never
    reach this rule. A run whose loss is NaN from the first steps leaves little to judge;
    RL103 reports it. Sampled every ``stats_every`` steps. The sawtooth needs
    ``saw_samples`` samples per epoch: a run of one epoch, or of epochs shorter than that, only
    shows the forgotten ``zero_grad()`` through growth; gradient accumulation over a whole epoch
    on purpose, or a data order that runs from easy to hard within every epoch, looks the same.

    ## Fix
    Call ``optimizer.zero_grad()`` every step, initialize with He (std = √(2/fan_in)), lower
    the learning rate, and clip gradients (``torch.nn.utils.clip_grad_norm_(params, 1.0)``).

    ## Seed
    "在第一个 epoch 内进行初始的粗粒度搜索,因为很多不正确的超参数设置会导致模型不学习,或loss爆炸。";
    "错误初始化会减慢甚至停止学习过程。绘制所有层的激活/梯度直方图,观察输出分布。"
    """

    code = "RL403"
    name = "exploding-gradients"
    severity = Severity.WARNING
    requires = ("params.grad_norm", "params.param_norm")
    explained_by = ("RL104", "RL202", "RL602")

    @dataclass
    class Options(Rule.Options):
        growth: float = option(
            20.0,
            "late / first recorded global gradient norm above this (drawn healthy runs that "
            "start from tiny gradients reach 16.5; a forgotten zero_grad() 19 and up)",
        )
        saw_drop: float = option(
            0.5,
            "sawtooth: first norm of an epoch / last of the epoch before, at every epoch start, "
            "below this (drawn per-epoch zero_grad: 0.41 at most; healthy runs 0.68 at least)",
        )
        saw_rise: float = option(
            0.5, "sawtooth: median rank correlation of the norm with the step within epochs"
        )
        saw_samples: int = option(
            5, "sawtooth: epochs with fewer gradient samples are not judged (noise)"
        )
        saw_starts: int = option(2, "sawtooth: epoch starts judged, at least")
        weight_ratio: float = option(5.0, "median dense ‖∇W‖/‖W‖ above this")
        depth: float = option(1e3, "input-side / output-side gradient-to-weight ratio above this")
        end_frac: float = option(0.25, '"late": the last fraction of the recorded steps')

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        long = params_long(run)
        if long.empty:
            return
        checks = (self._non_finite, self._growth, self._sawtooth, self._too_large, self._depth)
        for finding in checks:
            found = finding(run)
            if found is not None:
                yield found
                return

    def _non_finite(self, run: Run) -> Finding | None:
        long = params_long(run)
        grad, weight = long.col("grad_norm"), long.col("param_norm")
        bad = np.isinf(grad) | (np.isnan(grad) & np.isfinite(weight) & _has_grad(long))
        bad &= np.isfinite(weight)
        if not bad.any():
            return None
        first = int(long.step[bad].min())
        where = str(long.keys[long.codes[bad & (long.step == first)][0]])
        return self.finding(
            run,
            f"gradient of {where} is {grad[bad & (long.step == first)][0]} at step {first} "
            f"while the weights are finite ({int(bad.sum())} non-finite gradient samples)",
            "clip gradients (torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)) and "
            "lower the learning rate ×0.1",
            severity=Severity.ERROR,
            steps=(first, long.steps_in()[1]),
            where=where,
            evidence={"first_step": first, "samples": int(bad.sum())},
        )

    def _growth(self, run: Run) -> Finding | None:
        o = self.options
        long = params_long(run)
        steps, norm = _global_norm(long)
        n = len(steps)
        if n < 8:
            return None
        start = float(norm[0])  # a fresh gradient at the start (accumulation begins there)
        late = float(np.median(norm[-max(2, round(o.end_frac * n)) :]))
        if not (start > 0 and np.isfinite(late)) or late < o.growth * start:
            return None
        return self.finding(
            run,
            f"global gradient norm grows from {fmt(start)} at step {int(steps[0])} to "
            f"{fmt(late)} (median of the last {fmt(100 * o.end_frac)}% of steps, up to step "
            f"{int(steps[-1])}): ×{fmt(late / start)}",
            "call optimizer.zero_grad() before every backward; then lower the learning rate "
            "and clip gradients (clip_grad_norm_(model.parameters(), 1.0))",
            steps=(int(steps[0]), int(steps[-1])),
            evidence={"start": start, "late": late, "growth": late / start},
        )

    def _sawtooth(self, run: Run) -> Finding | None:
        o = self.options
        if run.epochs.empty or "step" not in run.epochs.columns:
            return None
        steps, norm = _global_norm(params_long(run))
        # an epoch's row holds the step count when it closed: the next epoch's first step
        starts = np.unique(run.epochs["step"].to_numpy(dtype=float, na_value=np.nan))
        epoch = np.searchsorted(starts[np.isfinite(starts)], steps, side="right")
        drops, rises = [], []
        for e in range(1, int(epoch.max(initial=0)) + 1):
            before, after = norm[epoch == e - 1], norm[epoch == e]
            if min(len(before), len(after)) < o.saw_samples or before[-1] <= 0:
                continue
            drops.append(float(after[0] / before[-1]))
            rises.append(float(stats.spearmanr(np.arange(len(after)), after)[0]))
        if len(drops) < o.saw_starts:
            return None
        drop, rise = max(drops), float(np.nanmedian(rises))
        if not (drop < o.saw_drop and rise > o.saw_rise):
            return None
        return self.finding(
            run,
            f"global gradient norm climbs within each epoch and falls back at each epoch start "
            f"(to ×{fmt(float(np.median(drops)))} of the epoch's last value, at most "
            f"×{fmt(drop)}, over {len(drops)} epoch starts; rank correlation with the step "
            f"within an epoch {fmt(rise)}): gradients accumulate across steps and are cleared "
            "once per epoch",
            "call optimizer.zero_grad() before every backward, inside the batch loop",
            steps=(int(steps[0]), int(steps[-1])),
            evidence={"drops": drops, "rise": rise},
        )

    def _dense_rel(self, run: Run) -> tuple[np.ndarray, pd.Series] | None:
        return run.memo("rl403_dense_rel", lambda: self._compute_dense_rel(run))

    def _compute_dense_rel(self, run: Run) -> tuple[np.ndarray, pd.Series] | None:
        long = params_long(run)
        grad, weight = long.col("grad_norm"), long.col("param_norm")
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = grad / weight
        ok = (weight > 0) & np.isfinite(rel)
        per_layer = long.median(rel, ok)
        dense = dense_params(run).intersection(per_layer.dropna().index)
        if len(dense) == 0:
            return None
        return ok, per_layer[dense]

    def _too_large(self, run: Run) -> Finding | None:
        found = self._dense_rel(run)
        if found is None:
            return None
        ok, per_layer = found
        typical = float(np.median(per_layer))
        if typical <= self.options.weight_ratio:
            return None
        steps = params_long(run).steps_in(ok)
        worst = str(per_layer.idxmax())
        return self.finding(
            run,
            f"gradients are {fmt(typical)}× the weights they update (median ‖∇W‖/‖W‖ over "
            f"steps {steps[0]}–{steps[1]} and {len(per_layer)} dense layers; largest "
            f"{fmt(float(per_layer.max()))} at {worst})",
            "initialize with He (std = √(2/fan_in)) instead of a larger scale, and clip "
            "gradients (clip_grad_norm_(model.parameters(), 1.0))",
            steps=steps,
            where=worst,
            evidence={"per_layer": {k: float(v) for k, v in per_layer.items()}},
        )

    def _depth(self, run: Run) -> Finding | None:
        found = self._dense_rel(run)
        if found is None:
            return None
        ok, per_layer = found
        table = param_table(run)
        io = input_output_ratio(per_layer, table.loc[per_layer.index, "dense_depth"])
        if io is None or io[0] <= self.options.depth:
            return None
        ratio, first, last = io
        steps = params_long(run).steps_in(ok)
        return self.finding(
            run,
            f"gradient/weight ratio ‖∇W‖/‖W‖ is {fmt(float(per_layer[first]))} at {first} "
            f"(input side) vs {fmt(float(per_layer[last]))} at {last} (output side): "
            f"×{fmt(ratio)} growth toward the input over {len(per_layer)} dense layers",
            "initialize with He (std = √(2/fan_in)), add BatchNorm after the linear layers, "
            "and clip gradients",
            steps=steps,
            where=first,
            evidence={"input_output_ratio": ratio},
        )


def _has_grad(long: Long) -> np.ndarray:
    """Rows of parameters that had a finite gradient at some step (NaN then means overflow)."""
    grad = long.col("grad_norm")
    seen = long.reduce(np.abs(grad), "count")
    return (seen.to_numpy() > 0)[long.codes]


def _global_norm(long: Long) -> tuple[np.ndarray, np.ndarray]:
    """Steps and the global gradient norm at each, over steps where every norm is finite."""
    grad = long.col("grad_norm")
    steps, inv = long.steps()
    finite = np.isfinite(grad)
    present = np.bincount(inv, (~np.isnan(grad)).astype(float), minlength=len(steps))
    good = np.bincount(inv, finite.astype(float), minlength=len(steps))
    sq = np.bincount(inv[finite], grad[finite] ** 2, minlength=len(steps))
    keep = (good == present) & (good > 0)
    return steps[keep], np.sqrt(sq[keep])
