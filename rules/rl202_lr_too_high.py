"""RL202 lr-too-high."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint import curves
from runlint.rule import Finding, Rule, Severity
from runlint.run import Run


class LrTooHigh(Rule):
    """The loss explodes, spikes far above its start, or climbs back up: the step is too large.

    Three signatures, judged on the loss per step:

    - **explodes**: the loss becomes NaN/Inf after finite values, or its rolling median (5
      steps, so one odd batch does not count) rises above ``spike_ratio`` × the initial loss;
    - **climbs back**: the smoothed loss ends well above its minimum (it fell, then rose again
      by more than ``rise_fraction`` of the fall and ``rise_relative`` of the minimum);
    - **killed at the start**: the first updates move the weights by more than
      ``huge_update`` of their norm, after which the weights stop moving (update ratio per
      unit of lr falls below ``stalled`` × its first value) and the loss makes no progress —
      the big first steps killed the units (dead ReLUs, saturated logits);
    - **bounces**: after warm-up the loss jumps around its trend by more than
      ``bounce_noise`` of it although the batch is not small (≥ ``bounce_batch``, or unknown)
      — "parameters jump around and cannot settle in the optimum".

    ## Why it matters
    With too high a learning rate the loss "drops faster but gets stuck at a worse value" or
    blows up; every epoch after that is wasted compute.

    ## Known problems
    - Warm-up is taken into account: an exploding loss during warm-up is still an explosion,
      but the climbs-back check starts where the learning rate reaches its peak.
    - Cyclic schedules and warm restarts make the loss rise at each restart on purpose.
    - A training loss that rises because the data changes (curriculum, streaming data) looks
      the same.

    ## Fix
    Lower the learning rate ×0.1 (or ×0.3 when the loss only climbs back), add a warm-up, and
    clip gradients.

    ## Seed
    "较大的学习率:loss 降的更快,但会卡在较差的值。因为动能太大了,参数乱跳,无法安定在最优位置。"
    and "很多不正确的超参数设置会导致模型不学习,或loss爆炸。"
    """

    code = "RL202"
    name = "lr-too-high"
    severity = Severity.WARNING
    requires = ("steps.loss",)

    @dataclass
    class Options(Rule.Options):
        spike_ratio: float = 2.5  # rolling-median loss above initial × this: explosion
        spike_window: int = 5  # steps in the rolling median
        rise_fraction: float = 0.25  # end − min above this × (start − min): climbs back
        rise_relative: float = 0.1  # ... and above this × min
        bounce_noise: float = 0.4  # robust noise around the trend / trend above this ...
        bounce_batch: int = 16  # ... at a batch size of at least this: bounces
        huge_update: float = 1e-2  # first update ratios above this (10× the seed's 1e-3) ...
        stalled: float = 1e-3  # ... then update/lr below this × the first: the units died
        max_progress: float = 0.1  # ... while the loss fell less than this fraction
        min_steps: int = 20

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        steps = run.steps
        if "loss" not in steps.columns or len(steps) < opts.min_steps:
            return
        loss = steps["loss"].to_numpy(dtype=float, na_value=np.nan)
        index = steps.index.to_numpy()
        finite = np.isfinite(loss)
        if not finite.any():
            return
        first = int(np.argmax(finite))
        initial = float(np.median(loss[first : first + 3][np.isfinite(loss[first : first + 3])]))
        lr_note = _lr_note(run)
        # explosion: non-finite after finite values
        after = ~finite[first:]
        if after.any():
            at = first + int(np.argmax(after))
            peak = float(np.nanmax(np.abs(loss[first:at]))) if at > first else initial
            yield self.finding(
                run,
                f"the loss exploded: from {initial:.3g} at step {int(index[first])} it rose to "
                f"{peak:.3g} and became {loss[at]} at step {int(index[at])}{lr_note}",
                "lower the learning rate ×0.1 and clip gradients "
                "(torch.nn.utils.clip_grad_norm_(params, 1.0))",
                severity=Severity.ERROR,
                steps=(int(index[first]), int(index[at])),
                where="loss",
                evidence={"initial_loss": initial, "peak_loss": peak, "step": int(index[at])},
            )
            return
        values = loss[finite]
        idx = index[finite]
        if initial > 0:
            med = curves.rolling_median(values, opts.spike_window).copy()
            med[0] = initial
            at = int(np.argmax(med))
            ratio = float(med[at] / initial)
            if ratio > opts.spike_ratio:
                yield self.finding(
                    run,
                    f"the loss spiked to {med[at]:.3g} at step {int(idx[at])}, "
                    f"{ratio:.1f}× its initial {initial:.3g} (median of {opts.spike_window} "
                    f"steps){lr_note}",
                    "lower the learning rate ×0.1 (add a warm-up and clip gradients)",
                    severity=Severity.ERROR if ratio > 10 * opts.spike_ratio else self.severity,
                    steps=(int(idx[0]), int(idx[at])),
                    where="loss",
                    evidence={"initial_loss": initial, "spike_loss": float(med[at])},
                )
                return
        curve = curves.prepare(steps)
        if curve is None:
            return
        killed = self._killed(run, curve)
        if killed is not None:
            yield killed
            return
        head = max(1, int(0.05 * len(curve.smooth)))
        low_at = head + int(np.argmin(curve.smooth[head:]))
        low = float(curve.smooth[low_at])
        fall = curve.first - low
        rise = curve.last - low
        if (
            low > 0
            and fall > 0
            and rise > opts.rise_fraction * fall
            and rise > opts.rise_relative * low
        ):
            yield self.finding(
                run,
                f"the smoothed loss fell from {curve.first:.3g} to {low:.3g} by step "
                f"{int(curve.steps[low_at])}, then climbed back to {curve.last:.3g} "
                f"(+{rise / low:.0%}) by step {int(curve.steps[-1])}{lr_note}",
                "lower the learning rate ×0.3, or decay it (step decay ×0.5) once the loss "
                "stops falling",
                steps=(int(curve.steps[low_at]), int(curve.steps[-1])),
                where="loss",
                evidence={"start": curve.first, "min": low, "end": curve.last},
            )
            return
        noise = curve.relative_noise()
        batch = run.meta.get("batch_size")
        big_batch = not isinstance(batch, int) or batch >= opts.bounce_batch
        if big_batch and noise > opts.bounce_noise:
            a = int(curve.steps[int(0.2 * len(curve.steps))])
            at_batch = f" at batch size {batch}" if isinstance(batch, int) else ""
            yield self.finding(
                run,
                f"the loss bounces by ±{noise:.0%} around its trend (mean deviation, steps "
                f"{a}–{int(curve.steps[-1])}){at_batch}{lr_note}: the steps are too large "
                "for the parameters to settle",
                "lower the learning rate ×0.3 (and decay it once the loss stops falling)",
                steps=(a, int(curve.steps[-1])),
                where="loss",
                evidence={"relative_noise": noise, "batch_size": batch},
            )

    def _killed(self, run: Run, curve: curves.Curve) -> Finding | None:
        """Huge first updates, then weights that no longer move and a loss that stays put."""
        opts = self.options
        params = run.params
        if (
            params.empty
            or not {"step", "param", "update_ratio"} <= set(params.columns)
            or "lr" not in run.steps.columns
            or curve.relative_drop() >= opts.max_progress
        ):
            return None
        weights = params[params["param"].astype(str).str.endswith("weight")]
        per_step = weights.groupby("step")["update_ratio"].median()
        if len(per_step) < 6:
            return None
        lr = run.steps["lr"].reindex(per_step.index).to_numpy(dtype=float, na_value=np.nan)
        ratio = per_step.to_numpy(dtype=float, na_value=np.nan)
        steps = per_step.index.to_numpy()
        first = float(np.nanmax(ratio[:3]))
        if not first > opts.huge_update:
            return None
        peak = float(np.nanmax(lr))
        late = slice(len(ratio) // 2, None)
        usable = np.isfinite(ratio[late]) & (lr[late] > 1e-3 * peak)
        if not usable.any() or not np.isfinite(lr[:3]).any():
            return None
        per_lr_first = first / float(np.nanmax(lr[:3]))
        per_lr_late = float(np.median(ratio[late][usable] / lr[late][usable]))
        if per_lr_late >= opts.stalled * per_lr_first:
            return None
        late_ratio = float(np.median(ratio[late]))
        _, loss = curves.series(run.steps, "loss")
        return self.finding(
            run,
            f"the first updates moved the weights by {first:.2g} of their norm (update ratio; "
            f"~1e-3 is healthy), then the weights stopped moving (median {late_ratio:.2g} from "
            f"step {int(steps[len(ratio) // 2])}) and the loss stayed at {curve.last:.3g} "
            f"(step 0: {loss[0]:.3g}){_lr_note(run)}: the first steps killed the units",
            "lower the learning rate ×0.1 and add a warm-up",
            steps=(int(steps[0]), int(steps[-1])),
            where="update_ratio",
            evidence={"first_update_ratio": first, "late_update_ratio": late_ratio},
        )


def _lr_note(run: Run) -> str:
    if "lr" not in run.steps.columns:
        return ""
    lr = run.steps["lr"].to_numpy(dtype=float, na_value=np.nan)
    if not np.isfinite(lr).any():
        return ""
    return f" at lr {float(np.nanmax(lr)):.3g}"
