"""RL106 loss-floor-high."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.analysis.epochs import curves
from runlint.analysis.expected import SOFTMAX, chance_loss
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run


class LossFloorHigh(Rule):
    """The training loss stays far above zero although the training accuracy is high.

    Over the last ``late`` of the epochs the training accuracy is at least ``min_accuracy``
    while the training loss, less the floor label smoothing sets (the entropy of the smoothed
    target), stays above ``floor_share`` × log(1 + (C − 1)/e): the least a cross-entropy can
    reach when it is fed probabilities (a softmax output, squashed again), 1.46 for 10 classes.
    A classifier that gets nearly every example right has a small cross-entropy; one whose
    loss stays there is measured by a loss that does not see its predictions. Runs of fewer
    than ``min_classes`` classes are not judged (that floor is low enough for label noise).

    ## Why it matters
    When the loss and the accuracy disagree this much, the loss is computed on something else
    than the scores the accuracy is taken from: probabilities fed to a loss that applies the
    softmax again (the scores are squashed twice and the loss cannot fall), a loss weighted or
    summed in a way that keeps it large, or logits so large that a few confident mistakes
    dominate it. The gradients the model learns from are then distorted as well.

    ## Known problems
    - A loss still falling fast (by more than ``still_falling`` of its level over the previous
      ``late`` of the epochs) is not judged: small logits (sigmoid units, a low lr) can give the
      right argmax long before a low loss.
    - Label smoothing raises the floor of the loss: it is taken into account only when
      ``meta.label_smoothing`` is recorded.
    - Accuracy measured on augmented data with a loss on clean data (or the reverse) can
      disagree; heavy class weights raise the loss of a good classifier too.
    - The number of classes must be known (``meta.num_classes``).

    ## Fix
    Compute the loss on the raw logits the accuracy is taken from: remove a final Softmax before
    ``cross_entropy``, check the loss's reduction and weights, and scale the output layer down
    if its logits are huge.

    ## Seed
    "参数初始化后,检查一下数据损失的初始值. 10 类,Softmax 初始化 loss = -ln(p=0.1) = 2.302" and
    "过拟合一小部分数据。...确保可以实现 0 loss。"
    """

    code = "RL106"
    name = "loss-floor-high"
    severity = Severity.WARNING
    requires = ("epochs.train_acc", "epochs.train_loss", "meta.num_classes")
    explained_by = ("RL104", "RL105")

    @dataclass
    class Options(Rule.Options):
        min_accuracy: float = option(0.9, "late training accuracy at least this: it classifies")
        floor_share: float = option(
            0.9,
            "... while the loss above its smoothing floor stays above this × log(1 + (C−1)/e), "
            "the least a softmax fed to cross_entropy again can reach",
        )
        min_classes: int = option(
            5, "fewer classes are not judged: label noise lifts their loss to that floor too"
        )
        late: float = option(1 / 3, "the fraction of the epochs judged (the last ones)")
        still_falling: float = option(
            0.15,
            "a loss whose median fell by more than this × its level since the previous "
            "``late`` of the epochs is not at a floor (a drawn healthy run: 0.30, the faulty "
            "floors 0.09 or less)",
        )
        min_epochs: int = option(3, "fewer epochs with both curves are not judged")

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        chance = chance_loss(run.setup)
        acc, loss = curves(run, "acc"), curves(run, "loss")
        if chance is None or chance.kind != SOFTMAX or acc is None or loss is None:
            return
        if chance.classes < opts.min_classes:
            return
        if min(len(acc.train), len(loss.train)) < opts.min_epochs:
            return
        accuracy = float(np.median(acc.train[acc.late(opts.late)]))
        part = loss.late(opts.late)
        level = float(np.median(loss.train[part]))
        floor = _smoothing_floor(run.setup.label_smoothing or 0.0, chance.classes)
        squashed = math.log(1 + (chance.classes - 1) / math.e)  # CE of softmax(probabilities)
        if accuracy < opts.min_accuracy or level - floor <= opts.floor_share * squashed:
            return
        before = loss.train[max(0, 2 * part.start - part.stop) : part.start]
        if len(before) and float(np.median(before)) - level > opts.still_falling * level:
            return  # still falling: slow (small logits, a low lr), not stuck at a floor
        smoothing = f", above the {floor:.3g} label smoothing sets" if floor > 0 else ""
        yield self.finding(
            run,
            f"training accuracy is {accuracy:.1%} but the training loss stays at {level:.3g} "
            f"({level / chance.value:.0%} of the chance level {chance.formula} = "
            f"{chance.value:.2f}{smoothing}; median of the last {part.stop - part.start} "
            "epochs): the loss does not measure the predictions the accuracy counts",
            steps=loss.span(part),
            where=loss.train_col,
            evidence={
                "train_accuracy": accuracy,
                "train_loss": level,
                "smoothing_floor": floor,
                "chance_loss": chance.value,
            },
        )


def _smoothing_floor(smoothing: float, classes: int) -> float:
    """The smallest cross-entropy a smoothed target allows: its entropy (PyTorch spreads
    ``smoothing`` over all ``classes``)."""
    if smoothing <= 0:
        return 0.0
    other = smoothing / classes
    true = 1.0 - smoothing + other
    return -true * math.log(true) - (classes - 1) * other * math.log(other)
