"""RL201 lr-too-low."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.analysis import curves
from runlint.analysis.curves import MIN_CURVE_POINTS
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run

# Learning rates below these are far under the usual range of the optimizer (per class name).
_LOW_LR = {
    "SGD": 1e-3,
    "Adam": 1e-5,
    "AdamW": 1e-5,
    "NAdam": 1e-5,
    "RAdam": 1e-5,
    "Adamax": 1e-5,
    "RMSprop": 1e-5,
    "Adagrad": 1e-4,
    "Adadelta": 1e-2,
}


class LrTooLow(Rule):
    """The loss falls slowly and in a straight line: the learning rate is too small.

    Judged on the smoothed loss after any warm-up. Two signatures:

    - **linear and slow**: the loss falls (by more than ``min_drop``), the second half of the
      run falls by at least ``min_linearity`` × what the first half fell (a healthy curve
      falls exponentially: most of its fall is early), and the run ends at more than
      ``min_remaining`` of its initial loss (warm-up included) — far from converged;
    - **barely moving at a tiny rate**: the loss falls less than ``min_drop`` while the
      learning rate is far below the optimizer's usual range and the weights move less than
      ``max_update_ratio`` of their norm per step.

    ## Why it matters
    Every epoch at too small a learning rate buys a fraction of the progress it could; the run
    ends far from where the same compute would have taken it.

    ## Known problems
    - A very hard task can also fall slowly and linearly at a good learning rate.
    - A short run (a few hundred steps) may end inside the early linear phase of any curve.
    - Warm-up is skipped: the judged curve starts where the learning rate peaks.

    ## Fix
    Raise the learning rate ×10 (search it on a log scale, 10^uniform(-6, 1)).

    ## Seed
    "学习率小:loss 线性下降。" and "学习率增大:loss 指数下降。"
    """

    code = "RL201"
    name = "lr-too-low"
    severity = Severity.WARNING
    requires = ("steps.loss",)
    explained_by = ("RL104", "RL206", "RL402", "RL404", "RL502")

    @dataclass
    class Options(Rule.Options):
        min_drop: float = option(0.03, "the loss must fall by this fraction to judge its shape")
        min_linearity: float = option(
            0.4,
            "linear: the second half's fall is at least this × the first half's, and at most "
            "its inverse (a loss flat at first that then falls fast is escaping a plateau)",
        )
        min_remaining: float = option(
            0.6, "... and the loss still ends above this × its initial value"
        )
        slow_update: float = option(
            4.5e-4,
            "a linear fall is a warning when the weights' median update ratio is below this "
            "(drawn healthy runs: 5e-4 and up), else advice",
        )
        max_update_ratio: float = option(
            1e-4, '"barely moving": the weights\' median ‖Δθ‖/‖θ‖ per step is below this'
        )
        min_steps: int = option(MIN_CURVE_POINTS, "fewer logged loss points are not judged")

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        curve = curves.prepare_falling(run, opts.min_steps)
        if curve is None:
            return
        drop = curve.relative_drop()
        a, b = curve.bounds
        lr = _peak_lr(run)
        lr_text = f" at lr {lr:.3g}" if lr is not None else ""
        if drop >= opts.min_drop:
            start, middle, end = curve.level(0.0, 0.02), curve.level(0.5), curve.level(1.0)
            first_half, second_half = start - middle, middle - end
            # how much of the run's initial loss (warm-up included) is still there at the end
            remaining = end / curve.initial if curve.initial > 0 else 0.0
            if (
                first_half > 0
                and opts.min_linearity * first_half
                <= second_half
                <= first_half / opts.min_linearity
                and remaining > opts.min_remaining
            ):
                # the shape alone also fits a short run or a hard task: a warning needs the
                # weights to move slowly too (or an lr below its optimizer's usual range)
                ratio = _update_ratio(run)
                low = _LOW_LR.get(run.setup.optimizer_class)
                slow = (ratio is not None and ratio < opts.slow_update) or (
                    low is not None and lr is not None and 0 < lr < low
                )
                moving = f"; weights move {ratio:.1e} of their norm per step" if ratio else ""
                yield self.finding(
                    run,
                    f"the loss falls slowly and linearly{lr_text}: {start:.3g} → {middle:.3g} "
                    f"→ {end:.3g} over steps {a}–{b} "
                    f"(second half fell {second_half / first_half:.0%} as much as the first; "
                    f"{drop:.0%} of the loss gone in all){moving}",
                    "raise the learning rate ×10",
                    severity=self.severity if slow else Severity.INFO,
                    steps=(a, b),
                    where="loss",
                    evidence={
                        "start": start,
                        "middle": middle,
                        "end": end,
                        "linearity": second_half / first_half,
                        "lr": lr,
                    },
                )
            return
        optimizer = run.setup.optimizer_class
        low = _LOW_LR.get(optimizer)
        ratio = _update_ratio(run)
        if (
            low is not None
            and lr is not None
            and 0 < lr < low
            and (ratio is None or ratio < opts.max_update_ratio)
        ):
            moved = f"; weights move {ratio:.1e} of their norm per step" if ratio else ""
            yield self.finding(
                run,
                f"the loss barely moves ({-drop:+.1%} over steps {a}–{b}) at lr {lr:.3g}, far "
                f"below the usual range for {optimizer} (≥ {low:g}){moved}",
                "raise the learning rate ×10 and search it on a log scale",
                steps=(a, b),
                where="loss",
                evidence={"relative_drop": drop, "lr": lr, "update_ratio": ratio},
            )


def _peak_lr(run: Run) -> float | None:
    if "lr" not in run.steps.columns:
        return None
    lr = run.steps["lr"].to_numpy(dtype=float, na_value=np.nan)
    return float(np.nanmax(lr)) if np.isfinite(lr).any() else None


def _update_ratio(run: Run) -> float | None:
    """Median update ratio of the multi-dimensional weights (None without a params table)."""
    params = run.params
    if params.empty or not {"param", "update_ratio"} <= set(params.columns):
        return None
    weights = params["param"].astype(str).str.endswith("weight")
    values = params.loc[weights, "update_ratio"].to_numpy(dtype=float, na_value=np.nan)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else None
