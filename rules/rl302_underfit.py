"""RL302 underfit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.analysis.epochs import TRAIN_AND_VAL, Curves, curves, initial_loss
from runlint.analysis.layers import capacity_limit, dense_update_ratios
from runlint.analysis.wording import fmt
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run


class Underfit(Rule):
    """Training and validation accuracy close together, both low, and no longer improving.

    ## Why it matters
    The seed: when the train and validation curves fit tightly the model lacks capacity
    ("紧密贴合,模型容量不足") — it cannot even fit the training set, so regularization or more
    epochs will not help; a bigger model will. The rule judges the last third of the epochs:
    the better of train/val accuracy, rescaled so that chance (1/num_classes) is 0 and perfect
    is 1, is below ``level``; train and val are within ``tight``; and the training accuracy
    gained (or lost) less than ``plateau`` × its distance to perfect over the previous third
    (still climbing fast means too few epochs or too low a learning rate, RL201; falling means
    instability). Runs that learned nothing at all (rescaled accuracy below ``learned``) are
    RL204's, not a capacity problem.

    Low accuracy alone does not tell a model that is too small from a task that is hard, so
    the finding is a warning only when the recorded model graph shows what caps the capacity
    (a single Linear layer; a hidden layer narrower than the number of classes, see
    ``capacity_limit``), and ``info`` otherwise. With such a cause, runs from
    ``min_epochs_with_cause`` epochs are judged (a one-epoch run without the plateau test, there
    is no earlier third, and with its training accuracy, which counts the untrained start, let
    below validation), a run stuck near chance counts too, and small updates do not excuse
    it (a linear model at its optimum barely moves). Only such a run is judged while it trains
    (live checking): its cap is known from the start.

    A second face of underfitting: the training accuracy measured during the epoch (dropout
    and augmentation on) stays below the validation accuracy (measured without them). Over
    the last third, the median of val − train, less the median gain of validation accuracy
    per epoch (an accuracy averaged over an epoch trails its end by what the epoch learnt),
    is above ``over_regularized_min`` and above ``over_regularized`` of the validation
    accuracy's distance above chance. Dropout of
    0.1–0.5 costs a few points (healthy runs lose under 8 % of their accuracy above chance);
    losing a third or more means the noise injected while training (dropout 0.8–0.9,
    augmentation that destroys the label) hides most of the signal from the model, which
    then fits the training set, and validation, worse than a plain model would.

    Without accuracy (regression), the training loss still above ``loss_level``× its initial
    value on a plateau with validation close to it is reported as ``info``: the noise floor of
    the data is unknown, so this is advice, not a verdict.

    ## Known problems
    Hard tasks have a low ceiling whatever the model: without a structural cause the finding is
    ``info`` (drawn healthy runs on 13- and 20-class tasks plateaued at 42–55 % of the way from
    chance); set ``level`` for them. Capacity capped by something the graph cannot show (too
    few units overall, functional activations left out) stays at ``info``. Dropout lowers the
    training accuracy measured during the epoch; the better of train and val is used. Without
    ``num_classes`` chance is taken as 0. A run whose weights barely move (median dense
    update/param ratio below ``min_update_ratio``) is not judged: its learning rate is the
    suspect (RL401, RL201), not its size, unless the graph caps the capacity. A one-epoch run
    with such a cap is judged on its only epoch: more epochs would not lift a linear model on a
    nonlinear task, but they might lift a bottleneck a little.

    ## Fix
    Make the model bigger: widen the hidden layers or add layers (and the nonlinearities
    between them); then lower regularization if any.

    ## Seed
    "训练集和验证集 acc 的差距表明了过拟合程度。… 紧密贴合,模型容量不足,增加参数量,让模型变大。"
    """

    code = "RL302"
    name = "underfit"
    severity = Severity.WARNING
    requires = (TRAIN_AND_VAL,)
    explained_by = ("RL102", "RL201", "RL202", "RL206", "RL401", "RL402", "RL502", "RL503")

    @dataclass
    class Options(Rule.Options):
        level: float = option(0.6, "accuracy rescaled from chance (0) to perfect (1) below this")
        tight: float = option(0.08, "|train − val| accuracy below this")
        plateau: float = option(
            0.1, "|gain| over the previous third below this × the distance to 1"
        )
        learned: float = option(0.05, "rescaled accuracy above this: it learned something")
        over_regularized: float = option(0.2, "val − train above this × (val − chance) ...")
        over_regularized_min: float = option(0.05, "... and above this: dropout too strong")
        min_update_ratio: float = option(
            5e-4, "weights barely moving: the lr is the suspect (RL401)"
        )
        loss_level: float = option(0.5, "regression: late train loss above this × initial (info)")
        late: float = option(1 / 3, "fraction of the epochs judged (the last ones)")
        min_epochs: int = option(4, "fewer epochs with both curves are not judged")
        min_epochs_with_cause: int = option(
            1, "... unless the model graph shows what caps the capacity (drawn faulty runs had 1)"
        )

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        cause = capacity_limit(run)
        if not run.complete and cause is None:
            return  # live: an accuracy still climbing is no underfit yet, unless the graph caps it
        ratios = dense_update_ratios(run)
        if (
            cause is None
            and len(ratios)
            and float(np.median(ratios)) < self.options.min_update_ratio
        ):
            return
        acc, loss = curves(run, "acc"), curves(run, "loss")
        if acc is not None:
            yield from self._accuracy(run, acc, cause)
        elif loss is not None:
            yield from self._loss(run, loss)

    def _accuracy(self, run: Run, acc: Curves, cause: str | None) -> Iterator[Finding]:
        """``cause``: what in the model graph caps its capacity (``capacity_limit``), if any."""
        o = self.options
        n = len(acc.train)
        if n < (o.min_epochs if cause is None else o.min_epochs_with_cause):
            return
        part = acc.late(o.late)
        width = part.stop - part.start
        prev = slice(max(0, part.start - width), part.start)
        one_epoch = prev.stop <= prev.start  # no earlier third: only with a structural cap
        if one_epoch and cause is None:
            return
        train, val = float(np.median(acc.train[part])), float(np.median(acc.val[part]))
        below = float(np.median(acc.val[part] - acc.train[part]))
        classes = run.setup.num_classes
        chance = 1.0 / classes if classes is not None and classes > 1 else 0.0
        # the training accuracy measured during an epoch trails the epoch's end by about what
        # the epoch gained: only the lag beyond the validation gain per epoch is hidden signal
        gains = np.diff(acc.val)[max(part.start - 1, 0) : part.stop - 1]
        lag = below - max(0.0, float(np.median(gains))) if gains.size else below
        if (
            not one_epoch  # the first epoch's training accuracy includes its untrained start
            and lag > o.over_regularized_min
            and lag > o.over_regularized * (val - chance)
        ):
            steps = acc.span(part)
            yield self.finding(
                run,
                f"train accuracy {fmt(train)} (measured during the epoch) stays {fmt(below)} below "
                f"validation {fmt(val)} (median over the last {width} of {n} epochs, steps "
                f"{steps[0]}–{steps[1]}; {fmt(100 * below / (val - chance))}% of its accuracy "
                f"above chance {fmt(chance)}): dropout or augmentation hides so much of the "
                "signal while training that the model underfits",
                "lower the dropout rate (0.1–0.5) or weaken the augmentation",
                steps=steps,
                where=acc.train_col,
                evidence={"train_acc": train, "val_acc": val, "val_minus_train": below},
            )
            return
        gain = 0.0 if one_epoch else train - float(np.median(acc.train[prev]))
        level = (max(train, val) - chance) / (1.0 - chance)
        learned = level >= o.learned or cause is not None
        if not (
            level < o.level
            and (train - val if one_epoch else abs(train - val)) < o.tight
            and abs(gain) / (1.0 - chance) < o.plateau * (1.0 - level)
            and learned
        ):
            return
        steps = acc.span(part)
        yield self.finding(
            run,
            f"train accuracy {fmt(train)} ≈ validation {fmt(val)} (gap {fmt(train - val)}), "
            f"{fmt(100 * level)}% of the way from chance ({fmt(chance)}) to 1, flat "
            f"(train {gain:+.3f} over the previous {width} epochs), median over steps "
            f"{steps[0]}–{steps[1]}: "
            + ("the model may be too small for the task" if cause is None else cause),
            "make the model bigger: widen the hidden layers (e.g. ×4) or add layers with "
            "nonlinearities; lower regularization if any",
            severity=Severity.WARNING if cause is not None else Severity.INFO,
            steps=steps,
            where=acc.train_col,
            evidence={"train_acc": train, "val_acc": val, "level": level, "gain": gain},
        )

    def _loss(self, run: Run, loss: Curves) -> Iterator[Finding]:
        o = self.options
        if len(loss.train) < o.min_epochs:
            return
        start = initial_loss(run, loss)
        part = loss.late(o.late)
        width = part.stop - part.start
        prev = slice(max(0, part.start - width), part.start)
        if prev.stop <= prev.start:
            return
        train, val = float(np.median(loss.train[part])), float(np.median(loss.val[part]))
        before = float(np.median(loss.train[prev]))
        if start is None or start <= 0 or train <= 0:
            return
        flat = abs(before - train) < o.plateau * train
        tight = abs(np.log(max(val, 1e-12) / train)) < 0.25
        if not (train > o.loss_level * start and flat and tight):
            return
        steps = loss.span(part)
        yield self.finding(
            run,
            f"training loss {fmt(train)} is still {fmt(100 * train / start)}% of its initial "
            f"{fmt(start)}, flat over the last {width} epochs (steps {steps[0]}–{steps[1]}), "
            f"validation {fmt(val)} close to it: the model may be too small",
            "make the model bigger: widen the hidden layers or add layers with nonlinearities",
            severity=Severity.INFO,
            steps=steps,
            where=loss.train_col,
            evidence={"train_loss": train, "val_loss": val, "initial_loss": start},
        )
