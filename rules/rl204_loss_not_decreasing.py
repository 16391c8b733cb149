"""RL204 loss-not-decreasing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.analysis import curves
from runlint.analysis.curves import MIN_CURVE_POINTS
from runlint.analysis.expected import SOFTMAX, chance_loss
from runlint.analysis.outputs import constant_output
from runlint.analysis.wording import fmt
from runlint.check import Finding, NotJudged, Rule, Severity, any_of, option
from runlint.run import Run


class LossNotDecreasing(Rule):
    """The training loss makes no progress at all over the run.

    The smoothed loss (a centered EMA, after any warm-up) must fall by at least
    ``min_drop`` of its starting value, both to its end and to its minimum. A log of fewer than
    ``min_steps`` points is judged by robust medians (its first quarter against its last
    third, a fall larger than the points' scatter explains); when the training loss is logged
    too rarely for that, the validation loss per evaluation is judged the same way. When the
    task is a classification the message says whether the loss sits at chance, ln(C). A
    softmax classifier's loss that falls from a start above chance but never gets below ln(C)
    by ``chance_floor`` is flagged too, once the run is finished or ``live_error_steps`` long:
    it learnt the class frequencies and nothing of the inputs (a fall that stops at chance is
    no progress). Whatever the task (a regression, BCE over several labels, a loss not named),
    a finished fall that ends with the model giving every input the same prediction (RL108's
    measure of the output's spread across a batch) stopped at a constant predictor's loss, the
    chance level of that task, and is flagged too (a warning).

    ## Why it matters
    A loss that never moves means nothing is learned: the labels do not match the inputs, the
    optimizer holds other parameters than the model, the gradients are zero, or the learning
    rate is far too small. The seed's coarse search stage exists to catch exactly this.

    A loss pinned at chance level (ln C, ``at_chance``) is an ``error``: the model has learnt
    nothing, and its results mean nothing — unless the validation accuracy is above chance
    (then the training labels, not the model, carry no signal: a ``warning``). A run still
    being written is only warned about until it has trained ``live_error_steps`` steps: plain
    SGD often sits at ln C for its first few hundred steps before it learns, and an error is
    what ``stop_on="error"`` stops on.

    ## Known problems
    - A fine-tuning run that starts at a good loss and holds it is flagged.
    - Very short runs (fewer than ``min_steps`` steps) are not judged.
    - A run still being written (a live check) is judged only from ``min_steps`` steps on: a
      few dozen steps without progress say little. A finished short run is judged.
    - A run still being written whose learning rate is still rising at its last step (a warm-up
      not over yet, as in the first flushes of a live check) is not judged: the loss is not
      expected to move yet.

    ## Fix
    Overfit ~20 examples first: if even that fails, check that the labels match the inputs and
    that the optimizer was built over ``model.parameters()``; then raise the learning rate ×10.

    ## Seed
    "在第一个 epoch 内进行初始的粗粒度搜索,因为很多不正确的超参数设置会导致模型不学习,或loss爆炸。"
    and "过拟合一小部分数据。...确保可以实现 0 loss。"
    """

    code = "RL204"
    name = "loss-not-decreasing"
    severity = Severity.WARNING
    requires = (any_of("steps.loss", "epochs.val_loss"),)
    explained_by = (
        "RL101",
        "RL103",
        "RL104",
        "RL201",
        "RL202",
        "RL206",
        "RL402",
        "RL404",
        "RL502",
        "RL503",
    )

    @dataclass
    class Options(Rule.Options):
        min_drop: float = option(
            0.03, "the smoothed loss must fall by at least this fraction of its start"
        )
        epoch_drop: float = option(
            0.1, "the per-epoch train or validation loss falling by this fraction means it learns"
        )
        at_chance: float = option(
            0.05, "a loss within this fraction of ln(C) is said to be at chance level"
        )
        chance_floor: float = option(
            0.02,
            "a smoothed loss never below ln(C) by this fraction fell only to chance (labels 90 % "
            "shuffled floor at 0.98–0.99 ln C; drawn healthy runs end far below)",
        )
        live_error_steps: int = option(
            1000,
            "a run still being written that sits at chance is an error from this many steps on "
            "(a warning before): drawn healthy SGD runs stay within 3 % of ln C for up to 500",
        )
        min_steps: int = option(
            MIN_CURVE_POINTS,
            "fewer logged loss points are judged by robust medians (and fewer than 8 not at all)",
        )

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        warming = _still_warming_up(run) if not run.complete else None
        if warming is not None:
            raise NotJudged(warming)
        trained = int(run.steps.index.max()) + 1 if len(run.steps.index) else 0
        if not run.complete and trained < opts.min_steps:
            raise NotJudged(
                f"the run is still young ({trained} steps so far): a lack of progress needs "
                f"{opts.min_steps} steps of training to be evidence"
            )
        curve = curves.prepare_falling(run, opts.min_steps)
        what, where = "loss", "loss"
        if curve is not None:
            low = float(np.min(curve.smooth))
            fall = max(curve.relative_drop(), (curve.first - low) / curve.first)
            start, end, (a, b) = curve.first, curve.last, curve.bounds
            how = "smoothed"
        else:  # few points: robust medians instead of a smooth trend
            short = curves.levels(run.steps)
            val = run.column("epochs", "val_loss") if short is None else None
            if val is not None:
                short, what, where = curves.levels(run.epochs, val), "validation loss", val
            if short is None:
                raise NotJudged(
                    f"too few finite logged loss points ({_points(run)}); a curve needs "
                    f"{curves.MIN_FEW_POINTS} to be judged"
                )
            if short.start <= 0 or short.falls(opts.min_drop):
                return
            fall, start, end = short.fall(), short.start, short.end
            (a, b), how = short.steps, f"median of {short.points} logged points,"
            if what != "loss":
                a, b = _steps_of(run, a), _steps_of(run, b)
                how = f"median of {short.points} evaluations,"
        expected = chance_loss(run.setup)
        if expected is not None and expected.kind != SOFTMAX:
            expected = None
        pinned = run.complete or trained >= opts.live_error_steps  # long enough to stop a run
        # a fall from a start above chance that stops at chance learnt the class frequencies
        # only; live, plain SGD may sit there a few hundred steps before it learns
        only_to_chance = (
            pinned
            and curve is not None
            and expected is not None
            and float(np.min(curve.smooth)) >= (1 - opts.chance_floor) * expected.value
        )
        # whatever the task, a fall that ends with one prediction for every input learnt the
        # targets' mean or frequencies only: the loss stops at a constant predictor's
        constant = constant_output(run) if pinned else None
        # the per-step log may show only the tail of a loss that fell epoch by epoch
        fell = (curve is not None and fall >= opts.min_drop) or _fell_per_epoch(
            run, opts.epoch_drop
        )
        if fell and not only_to_chance and constant is None:
            return
        chance = ""
        if expected is not None and abs(end - expected.value) < opts.at_chance * expected.value:
            chance = f", at chance level {expected.formula} = {expected.value:.2f}"
        val_acc = _val_above_chance(run, expected.classes, opts.at_chance) if expected else None
        if fell and not only_to_chance and constant is not None:
            message = (
                f"the loss falls only as far as one prediction for every input takes it: {how} "
                f"{start:.3g} at the start (step {a}), {end:.3g} at the end (step {b}), while "
                f"the model's output varies by {constant.across:.3g} across the examples of a "
                f"batch ({constant.across / constant.scale:.1%} of {constant.against}): it "
                "learnt the targets' mean or the classes' frequencies, not how they depend on "
                "the inputs"
            )
        elif fell and expected is not None:
            message = (
                f"the loss never gets below chance level: {how} {start:.3g} at the start (step "
                f"{a}), {end:.3g} at the end (step {b}), never below {expected.formula} = "
                f"{expected.value:.3g} by {opts.chance_floor:.0%}: the model learns no more than "
                "the class frequencies, not how the labels depend on the inputs"
                + (
                    f"; validation accuracy {val_acc:.3g} is above chance, so the training "
                    "labels carry less of the signal than the validation labels (labels shuffled "
                    "apart from their inputs?)"
                    if val_acc is not None
                    else ""
                )
            )
        else:
            message = (
                f"the {what} does not decrease: {how} {start:.3g} at the start (step {a}) and "
                f"{end:.3g} at the end (step {b}; {_change(start, end)}){chance}"
            )
        yield self.finding(
            run,
            message,
            "overfit ~20 examples to check the pipeline (labels match inputs, optimizer built "
            "over model.parameters(), zero_grad/step called), then raise the learning rate ×10",
            severity=Severity.ERROR if chance and pinned and val_acc is None else self.severity,
            steps=(a, b),
            where=where,
            evidence={"start": start, "end": end, "fall": fall},
        )


def _still_warming_up(run: Run) -> str | None:
    """Why the run cannot be judged yet when its learning rate is still rising at the last
    logged step (a warm-up not over: a live run's first flushes), else None."""
    if "lr" not in run.steps.columns:
        return None
    steps, lr = curves.series(run.steps, "lr")
    if lr.size < 2 or lr[0] <= 0:
        return None
    peak = int(np.argmax(lr))
    if lr[-1] < 0.98 * lr[peak] or lr[-1] < 2 * lr[0]:
        return None
    return (
        f"the learning rate is still warming up ({lr[0]:.3g} at step {int(steps[0])} → "
        f"{lr[-1]:.3g} at step {int(steps[-1])}): no progress is expected yet"
    )


def _fell_per_epoch(run: Run, drop: float) -> bool:
    """Whether the per-epoch training (or else validation) loss fell by ``drop`` of its first
    value to its best."""
    for name in ("train_loss", "val_loss"):
        column = run.column("epochs", name) if not run.epochs.empty else None
        if column is None:
            continue
        _, values = curves.series(run.epochs, column)
        if values.size >= 3 and values[0] > 0:
            return bool(values.min() <= (1 - drop) * values[0])
    return False


def _val_above_chance(run: Run, classes: int, margin: float) -> float | None:
    """The last validation accuracy when it is above chance (1/C) by ``margin`` of the way to 1,
    else None."""
    column = run.column("epochs", "val_acc") if not run.epochs.empty else None
    if column is None:
        return None
    _, values = curves.series(run.epochs, column)
    chance = 1.0 / classes
    if values.size and values[-1] > chance + margin * (1 - chance):
        return float(values[-1])
    return None


def _points(run: Run) -> str:
    """How many finite loss values the run has, per step and per evaluation."""
    _, train = curves.series(run.steps, "loss")
    val = run.column("epochs", "val_loss") if not run.epochs.empty else None
    evals = curves.series(run.epochs, val)[1].size if val is not None else 0
    return f"{train.size} per step, {evals} validation"


def _steps_of(run: Run, epoch: int) -> int:
    """The optimizer step an evaluation (a row of ``epochs``) was logged at."""
    if "step" not in run.epochs.columns:
        return epoch
    return int(run.epochs["step"].get(epoch, epoch))


def _change(start: float, end: float) -> str:
    """``-3.2%``, or ``×1.5e+17`` once the loss grew more than tenfold."""
    if start > 0 and end > 10 * start:
        return f"×{fmt(end / start)}"
    return f"{(end - start) / start:+.1%}"
