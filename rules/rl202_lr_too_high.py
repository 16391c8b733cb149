"""RL202 lr-too-high."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.analysis import curves
from runlint.analysis.expected import SOFTMAX, chance_loss
from runlint.analysis.layers import ADAM_FIRST_RATIO_HIGH, adam_first_ratio, dense_update_ratios
from runlint.analysis.wording import fmt
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run

#: The first 5 % of a smoothed curve lie too close to its start to count as its low.
_HEAD = 0.05


class LrTooHigh(Rule):
    """The loss explodes, spikes far above its start, or climbs back up: the step is too large.

    Four signatures, judged on the loss per step:

    - **explodes**: the loss becomes NaN/Inf after finite values, or its rolling median (5
      steps, so one odd batch does not count) rises above ``spike_ratio`` × the initial loss.
      When each logged point already averages several steps (``meta.loss_logging_interval``,
      Hugging Face's ``logging_steps``) or the run logs fewer than ``min_steps`` points, every
      point counts on its own; when the first point is such an average
      (``meta.first_loss_is_average``) a classifier's spike is measured against ln(C). A
      spike above ``error_ratio`` is an error; live, only once the loss is still that high
      ``spike_window`` points on, or ``2 × spike_window`` points after its peak is not back
      below ``recovered`` × its start (else a warning: the run may come back);
    - **climbs back**: the smoothed loss ends well above its minimum (it fell, then rose again
      by more than ``rise_fraction`` of the fall and ``rise_relative`` of the minimum) after
      the warm-up; or, over the whole run with the warm-up, it climbed anywhere by more than
      ``mid_rise_fraction`` of what it had fallen before (a loss that fell during the warm-up
      and climbed back once the learning rate peaked, even if a decay later brings it down).
      A climb is info when the validation loss (two epochs or more) improved and ended within
      ``val_best``× its best: the model still got better, the training loss's climb is batch
      noise (drawn healthy LSTMs at Adam's usual rates climbed +80% that way);
    - **killed at the start**: the first updates move the weights by more than
      ``huge_update`` of their norm, after which the weights stop moving (update ratio per
      unit of lr falls below ``stalled`` × its first value) and the loss makes no progress —
      the big first steps killed the units (dead ReLUs, saturated logits);
    - **rewrites, then stuck**: with an Adam-type optimizer, the first full-lr steps move the
      dense weights by more than ``first_rewrite`` of their norm (its steps are ~lr per weight
      from the start; the seed wants ~1e-3), and the loss "drops faster but gets stuck at a
      worse value": its smoothed low comes before the last ``stuck_tail`` of the run and it
      ends ``stuck_above``× above that low (RL401 reports the ratio itself);
    - **bounces**: after warm-up the loss jumps around its trend by more than the batch
      explains although the batch is not small (≥ ``bounce_batch``): the mean deviation from
      the trend, relative to it, times √batch (a batch mean's spread falls as 1/√B) is above
      ``bounce_scaled`` and the deviation itself above ``bounce_floor`` — "parameters jump
      around and cannot settle in the optimum". Noise alone is weak evidence (a noisy-label
      data set bounces as much at a good rate), so a bounce is a ``warning`` only when the run
      also cannot settle: its validation loss ends above ``unsettled_val`` × its best, or
      without validation its dense weights move by more than ``high_update`` per step. Else,
      and with the batch size unknown, it is an ``info``.

    ## Why it matters
    With too high a learning rate the loss "drops faster but gets stuck at a worse value" or
    blows up; every epoch after that is wasted compute.

    ## Known problems
    - Warm-up is taken into account: an exploding loss during warm-up is still an explosion,
      and a loss that falls during warm-up and climbs back after it is a peak lr too high.
    - Cyclic schedules and warm restarts make the loss rise at each restart on purpose.
    - A loss that climbs while the schedule drives the lr toward zero is not judged (the step
      shrank; small-batch noise in a flat tail looks like a climb).
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
    explained_by = ("RL203", "RL601", "RL602")

    @dataclass
    class Options(Rule.Options):
        spike_ratio: float = option(
            2.75,
            "explodes: the rolling-median loss rises above its initial value × this (a drawn "
            "healthy Adam run without warm-up reached 2.55 in its first steps; SGD at 10× the "
            "lr in the Hugging Face test 2.99)",
        )
        error_ratio: float = option(
            25.0,
            "... above the initial value × this, the explosion is an error (live: once the "
            "loss has not come back, see recovered)",
        )
        spike_window: int = option(5, "steps in the rolling median")
        recovered: float = option(
            0.9, "live: a loss back below this × its initial value after a spike learns again"
        )
        rise_fraction: float = option(
            0.25, "climbs back: end − min above this × (start − min) after the warm-up ..."
        )
        rise_relative: float = option(0.05, "... and above this × min")
        mid_rise_fraction: float = option(
            0.5,
            "over the whole run, warm-up included: a rise anywhere above this × the fall before "
            "it (healthy runs stay below 0.15)",
        )
        bounce_scaled: float = option(
            3.0, "bounces: noise × √batch above this (healthy runs stay below 2) ..."
        )
        bounce_floor: float = option(0.25, "... and the noise itself above this ...")
        bounce_batch: int = option(16, "... at a batch size of at least this")
        bounce_noise: float = option(0.45, "batch size unknown: noise above this bounces")
        unsettled_val: float = option(
            1.5,
            "a bounce is a warning only when the run cannot settle: its validation loss ends "
            "above this × its best ...",
        )
        high_update: float = option(
            1e-2, "... or, without validation, its dense update ratios exceed this (10× ~1e-3)"
        )
        big_climb: float = option(
            0.5,
            "a climb back above this × the fall before it is a warning alone; a smaller one "
            "needs the run unsettled too",
        )
        val_best: float = option(
            1.02,
            "a climb of the training loss is info when the validation loss (2+ epochs) ends "
            "within this × its best: the model still improved, the climb is batch noise",
        )
        min_climb: float = option(
            0.1, "a climb back must last this fraction of the curve (a late blip does not count)"
        )
        decayed: float = option(
            0.1,
            "a climb while the lr fell below this × its value at the low is not the step's "
            "fault: the step shrank as the loss rose",
        )
        huge_update: float = option(
            1e-2, "killed: first update ratios above this (10× the seed's 1e-3) ..."
        )
        stalled: float = option(
            1e-3, "... then update ratio per unit of lr below this × the first's ..."
        )
        max_progress: float = option(0.1, "... while the loss fell less than this fraction")
        first_rewrite: float = option(
            ADAM_FIRST_RATIO_HIGH,
            "rewrites: Adam-type first full-lr update ratio above this (RL401's high_early) ...",
        )
        stuck_tail: float = option(0.05, "... the loss's low before the last this fraction ...")
        stuck_above: float = option(1.05, "... and its end at least this × the low")
        min_steps: int = option(
            20, "fewer logged points: each point is judged alone (no rolling median)"
        )
        min_points: int = option(4, "fewer logged points than this are not judged at all")
        first_points: int = option(3, "the initial loss is the median of this many first points")
        live_lr: float = option(
            1e-3, "killed: late steps count when the lr is at least this × its peak"
        )
        min_ratio_steps: int = option(6, "killed: fewer steps with update ratios are not judged")

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        if "loss" not in run.steps.columns:
            return
        for column in ("loss", "data_loss"):  # the data term alone may blow up
            exploded = self._exploded(run, column)
            if exploded is not None:
                yield exploded
                return
        curve = curves.prepare(run)
        # the whole run, warm-up included: a run that warms up to its end has no curve after
        # its warm-up, and the loss may fall in the warm-up and climb back at the peak lr
        whole = curves.prepare(run, skip_warmup=False)
        if curve is None and whole is None:
            return
        # the first steps' signatures: units killed at the start, or weights rewritten
        early = self._killed(run, curve) if curve is not None else None
        if early is None and curve is not None:
            early = self._rewrites(run, curve)
        if early is not None:
            yield early
            return
        # climbs back: at the end, after warm-up; or anywhere over the whole run (even if a
        # decay brings it down later)
        climb = self._climb(curve, opts.rise_fraction, to_end=True) if curve else None
        judged = curve
        if climb is None and whole is not None:
            climb = self._climb(whole, opts.mid_rise_fraction, to_end=False)
            judged = whole
        if climb is not None and judged is not None:
            low_at, low, rise, top_at = climb
            if _lr_fell(run, int(judged.steps[low_at]), int(judged.steps[top_at]), opts.decayed):
                climb = None
        if climb is not None:
            low_at, low, rise, top_at = climb
            assert judged is not None
            during = (
                " (during the warm-up)"
                if whole is not None and judged is whole and low_at < _warmup_len(whole, curve)
                else ""
            )
            # a climb back as large as a third of the fall is a warning on its own; a smaller
            # one only when the run cannot settle either
            strong = (
                rise >= opts.big_climb * (judged.first - low)
                or _unsettled(run, opts.unsettled_val, opts.high_update)
            ) and not _val_at_best(run, opts.val_best)
            yield self.finding(
                run,
                f"the smoothed loss fell from {judged.first:.3g} to {low:.3g} by step "
                f"{int(judged.steps[low_at])}{during}, then climbed back to "
                f"{judged.smooth[top_at]:.3g} (+{rise / low:.0%}) by step "
                f"{int(judged.steps[top_at])}"
                f"{_lr_note(run, int(judged.steps[low_at]), int(judged.steps[top_at]))}",
                "lower the learning rate ×0.3, or decay it (step decay ×0.5) once the loss "
                "stops falling",
                severity=self.severity if strong else Severity.INFO,
                steps=(int(judged.steps[low_at]), int(judged.steps[top_at])),
                where="loss",
                evidence={
                    "start": judged.first,
                    "min": low,
                    "climbed_to": float(judged.smooth[top_at]),
                    "end": judged.last,
                },
            )
            return
        if curve is None:
            return
        noise = curve.relative_noise()
        batch = run.setup.batch_size
        if isinstance(batch, int) and batch > 0:
            scaled = noise * float(np.sqrt(batch))
            bounces = (
                batch >= opts.bounce_batch
                and noise > opts.bounce_floor
                and scaled > opts.bounce_scaled
            )
        else:  # the batch is unknown: its noise cannot be told from a too large step (info)
            scaled, bounces = None, noise > opts.bounce_noise
        unsettled = _unsettled(run, opts.unsettled_val, opts.high_update)
        if bounces:
            a = int(curve.steps[curve.judged()])
            at_batch = (
                f" at batch size {batch} (×√{batch} = {scaled:.2g}; a healthy loss stays "
                f"below ~2 on that scale)"
                if scaled is not None
                else ""
            )
            yield self.finding(
                run,
                f"the loss bounces by ±{noise:.0%} around its trend (mean deviation, steps "
                f"{a}–{int(curve.steps[-1])}){at_batch}"
                f"{_lr_note(run, a, int(curve.steps[-1]))}: the steps are too large "
                "for the parameters to settle",
                "lower the learning rate ×0.3 (and decay it once the loss stops falling)",
                severity=self.severity if scaled is not None and unsettled else Severity.INFO,
                steps=(a, int(curve.steps[-1])),
                where="loss",
                evidence={
                    "relative_noise": noise,
                    "batch_size": batch,
                    "scaled_noise": scaled,
                    "unsettled": unsettled,
                },
            )

    def _exploded(self, run: Run, column: str) -> Finding | None:
        """The loss ``column`` became non-finite after finite values, or its rolling median
        rose above ``spike_ratio`` × its initial value."""
        opts = self.options
        steps = run.steps
        if column not in steps.columns:
            return None
        logged = run.logged("steps", column)  # rows where nothing was logged are not NaN
        if int(logged.sum()) < opts.min_points:
            return None
        loss = steps[column].to_numpy(dtype=float, na_value=np.nan)[logged]
        index = steps.index.to_numpy()[logged]
        finite = np.isfinite(loss)
        if not finite.any():
            return None
        first = int(np.argmax(finite))
        # each logged point averages `interval` steps (Hugging Face logging_steps) or the run
        # logs few points: one point is evidence on its own, so no median over several
        averaged = (
            run.setup.loss_logging_interval >= opts.spike_window or len(loss) < opts.min_steps
        )
        window = 1 if averaged else opts.spike_window
        start = loss[first : first + (1 if averaged else opts.first_points)]
        initial = float(np.median(start[np.isfinite(start)]))
        reference = ""
        expected = chance_loss(run.setup)
        chance = expected.value if expected is not None and expected.kind == SOFTMAX else None
        if run.setup.first_loss_is_average and chance is not None and chance < initial:
            # the first point is already an average over the first steps (and may hold the
            # blow-up): judge the spike against the loss every fresh classifier starts at
            initial, reference = (
                chance,
                " (the expected initial loss: the first point is an average)",
            )
        # explosion: non-finite after finite values
        after = ~finite[first:]
        if after.any():
            at = first + int(np.argmax(after))
            top = first + int(np.argmax(np.abs(loss[first:at]))) if at > first else first
            peak = float(loss[top])
            rose = f" it rose to {peak:.3g} at step {int(index[top])} and" if top > first else ""
            return self.finding(
                run,
                f"the {column} exploded: from {float(loss[first]):.3g} at step "
                f"{int(index[first])}{rose} became {loss[at]} at step {int(index[at])}"
                f"{_lr_note(run, int(index[first]), int(index[at]))}",
                "lower the learning rate ×0.1 and clip gradients "
                "(torch.nn.utils.clip_grad_norm_(params, 1.0))",
                severity=Severity.ERROR,
                steps=(int(index[first]), int(index[at])),
                where=column,
                evidence={"initial_loss": initial, "peak_loss": peak, "step": int(index[at])},
            )
        values = loss[finite]
        idx = index[finite]
        if initial > 0:
            med = curves.rolling_median(values, window).copy()
            if not reference:
                med[0] = initial
            at = int(np.argmax(med))
            ratio = float(med[at] / initial)
            if ratio > opts.spike_ratio:
                # quote what was logged: the largest value in the window at the spike
                lo, hi = max(0, at - window // 2), min(len(values), at + window // 2 + 1)
                top = lo + int(np.argmax(values[lo:hi]))
                if reference:
                    measure = f"{fmt(ratio)}× the expected initial loss {initial:.3g}{reference}"
                elif window > 1:
                    measure = (
                        f"its median over {window} steps reached {med[at]:.3g}, {fmt(ratio)}× the "
                        f"median of its first points, {initial:.3g}"
                    )
                else:
                    measure = f"one logged point, {fmt(ratio)}× the first"
                return self.finding(
                    run,
                    f"the {column} spiked to {float(values[top]):.3g} at step {int(idx[top])} "
                    f"from {float(values[0]):.3g} at step {int(idx[0])} ({measure})"
                    f"{_lr_note(run, int(idx[0]), int(idx[top]))}",
                    "lower the learning rate ×0.1 (add a warm-up and clip gradients)",
                    severity=Severity.ERROR
                    if ratio > opts.error_ratio and _spike_holds(run, values, at, initial, opts)
                    else self.severity,
                    steps=(int(idx[0]), int(idx[at])),
                    where=column,
                    evidence={"initial_loss": initial, "spike_loss": float(med[at])},
                )
        return None

    def _climb(
        self, curve: curves.Curve, fraction: float, *, to_end: bool
    ) -> tuple[int, float, float, int] | None:
        """``(index of the low, low, rise, index of the top)`` when the smoothed loss fell,
        then climbed back by more than ``fraction`` of the fall so far and ``rise_relative``
        of the low: at the end of the curve (``to_end``) or anywhere after its low so far."""
        opts = self.options
        smooth = curve.smooth
        head = max(1, int(_HEAD * len(smooth)))
        if to_end:
            low_at = head + int(np.argmin(smooth[head:]))
            low = float(smooth[low_at])
            top_at = len(smooth) - 1
        else:
            lows = np.minimum.accumulate(smooth[head:])
            rises = smooth[head:] - lows
            falls = curve.first - lows
            ok = (lows > 0) & (falls > 0) & (rises > opts.rise_relative * lows)
            score = np.where(ok, rises / np.maximum(falls, 1e-12), 0.0)
            top_at = head + int(np.argmax(score))
            low_at = head + int(np.argmin(smooth[head : top_at + 1]))
            low = float(smooth[low_at])
        rise, fall = float(smooth[top_at]) - low, curve.first - low
        lasts = top_at - low_at >= opts.min_climb * len(smooth)
        if (
            low > 0
            and fall > 0
            and lasts
            and rise > fraction * fall
            and rise > opts.rise_relative * low
        ):
            return low_at, low, rise, top_at
        return None

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
        if len(per_step) < opts.min_ratio_steps:
            return None
        lr = run.steps["lr"].reindex(per_step.index).to_numpy(dtype=float, na_value=np.nan)
        ratio = per_step.to_numpy(dtype=float, na_value=np.nan)
        steps = per_step.index.to_numpy()
        first = float(np.nanmax(ratio[: opts.first_points]))
        if not first > opts.huge_update:
            return None
        peak = float(np.nanmax(lr))
        late = slice(len(ratio) // 2, None)
        usable = np.isfinite(ratio[late]) & (lr[late] > opts.live_lr * peak)
        if not usable.any() or not np.isfinite(lr[: opts.first_points]).any():
            return None
        per_lr_first = first / float(np.nanmax(lr[: opts.first_points]))
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
            f"(step 0: {loss[0]:.3g}){_lr_note(run, int(steps[0]), int(steps[-1]))}: the first "
            "steps killed the units",
            "lower the learning rate ×0.1 and add a warm-up",
            steps=(int(steps[0]), int(steps[-1])),
            where="update_ratio",
            evidence={"first_update_ratio": first, "late_update_ratio": late_ratio},
        )

    def _rewrites(self, run: Run, curve: curves.Curve) -> Finding | None:
        """Adam-type first steps that rewrite a large part of the weights, and a loss that
        then got stuck above its low."""
        opts = self.options
        first = adam_first_ratio(run)
        if first is None or first[0] <= opts.first_rewrite:
            return None
        low_at = int(np.argmin(curve.smooth))
        low = float(curve.smooth[low_at])
        n = len(curve.smooth)
        if low <= 0 or low_at >= (1 - opts.stuck_tail) * n or curve.last < opts.stuck_above * low:
            return None
        ratio, (a, b) = first
        at = f"step {a}" if a == b else f"steps {a}–{b}"
        return self.finding(
            run,
            f"the first full-lr steps ({at}) moved the dense weights by {fmt(ratio)} of "
            f"their norm with {run.setup.optimizer_class or 'Adam'} (update ratio; ~1e-3 is "
            f"healthy), and the loss got stuck: its low {low:.3g} at step "
            f"{int(curve.steps[low_at])} ({low_at / n:.0%} of the run), {curve.last:.3g} at the "
            f"end{_lr_note(run, a, int(curve.steps[-1]))}",
            "lower the learning rate ×0.1 (toward an update ratio of ~1e-3), or add a warm-up",
            steps=(a, int(curve.steps[-1])),
            where="update_ratio",
            evidence={"first_update_ratio": ratio, "low": low, "end": curve.last},
        )


def _lr_note(run: Run, first: int, last: int) -> str:
    """`` at lr X`` (or `` at lr X–Y`` when it changed): the learning rate over the flagged
    steps ``first``–``last``, as logged there."""
    if "lr" not in run.steps.columns:
        return ""
    lr = run.steps["lr"]
    inside = lr[(lr.index >= first) & (lr.index <= last)].to_numpy(dtype=float, na_value=np.nan)
    inside = inside[np.isfinite(inside)]
    if inside.size == 0:
        return ""
    low, high = float(inside.min()), float(inside.max())
    return f" at lr {high:.3g}" if high <= 1.05 * low else f" at lr {low:.3g}–{high:.3g}"


def _lr_fell(run: Run, low: int, top: int, fraction: float) -> bool:
    """Whether the logged lr at step ``top`` is below ``fraction`` × the lr at step ``low``."""
    if "lr" not in run.steps.columns:
        return False
    lr = run.steps["lr"].dropna()
    at_low, at_top = lr[lr.index <= low], lr[lr.index <= top]
    if at_low.empty or at_top.empty or float(at_low.iloc[-1]) <= 0:
        return False
    return float(at_top.iloc[-1]) < fraction * float(at_low.iloc[-1])


def _val_loss(run: Run) -> np.ndarray | None:
    """The validation loss per epoch when there are two epochs or more (two already say
    whether a run settles), else None."""
    column = run.column("epochs", "val_loss") if not run.epochs.empty else None
    if column is None:
        return None
    _, val = curves.series(run.epochs, column)
    return val if val.size >= 2 and val.min() > 0 else None


def _unsettled(run: Run, val_ratio: float, high_update: float) -> bool:
    """Whether the run shows it cannot settle besides its noisy loss: a validation loss that
    ends above ``val_ratio`` × its best, or (no validation) dense update ratios above
    ``high_update``."""
    val = _val_loss(run)
    if val is not None:
        return bool(np.median(val[-max(1, val.size // 5) :]) > val_ratio * val.min())
    ratios = dense_update_ratios(run)
    return bool(len(ratios) and float(np.median(ratios)) > high_update)


def _val_at_best(run: Run, within: float) -> bool:
    """Whether the validation loss improved and ends within ``within`` × its best: the model
    still got better (a flat one, as when nothing trains, says nothing)."""
    val = _val_loss(run)
    return val is not None and bool(val[-1] <= within * val.min() and within * val[-1] < val[0])


def _warmup_len(whole: curves.Curve, after: curves.Curve | None) -> int:
    """Points of ``whole`` that lie before ``after`` starts (the warm-up; all without one)."""
    return len(whole.steps) if after is None else int(np.searchsorted(whole.steps, after.steps[0]))


def _spike_holds(
    run: Run, values: np.ndarray, peak: int, initial: float, opts: LrTooHigh.Options
) -> bool:
    """Whether a spike is an error: after the fact always; live, once the loss is still
    exploded (the median of its last ``spike_window`` points, all logged since the spike began,
    above ``spike_ratio`` × the initial loss) or has not come back (``2 × spike_window``
    points after the peak, that median not below ``recovered`` × the initial loss). A loss that
    came back and learns is no reason to stop a run: a drawn healthy Adagrad run spiked 40× in
    its first steps and was at 0.5× its start ten steps later."""
    if run.complete:
        return True
    window = opts.spike_window
    level = float(np.median(values[-window:]))
    began = int(np.argmax(values > opts.spike_ratio * initial))
    exploded = len(values) - began >= window and level > opts.spike_ratio * initial
    broken = len(values) - 1 - peak >= 2 * window and level >= opts.recovered * initial
    return exploded or broken
