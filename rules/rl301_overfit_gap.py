"""RL301 overfit-gap."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.analysis.epochs import TRAIN_AND_VAL, Curves, curves, initial_loss
from runlint.analysis.expected import REGRESSION_LOSSES
from runlint.analysis.outputs import regression_evidence
from runlint.analysis.wording import fmt
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run


class OverfitGap(Rule):
    """Training accuracy far above validation accuracy (or validation loss rising): overfitting.

    ## Why it matters
    The seed reads overfitting off the gap between the training and validation accuracy
    curves: a large gap means the model memorizes the training set instead of learning what
    generalizes. The rule takes the median of train − val accuracy over the last third of the
    epochs and flags a gap above ``gap``. A smaller gap (above ``gap_min``) is flagged too when
    the validation loss has risen ``rise``× above its minimum while the training loss kept
    falling — the other face of the same problem. Runs without accuracy are judged on that
    loss pattern, and a regression (``meta.loss`` names a regression loss, or an unnamed loss
    with the outputs of one: ``analysis.outputs.regression_evidence``) on its late
    validation loss above its late training loss by ``loss_gap`` of the initial loss too, the
    analogue of the accuracy gap (a classifier's loss ratio is no accuracy gap: fine-tuned
    classifiers drive the training loss to ~0 and generalize; a ratio is no measure for a
    regression either, whose training loss may fall to its noise floor). Overfitting is
    memorizing: the training loss must have fallen to ``train_fall``× its value at the
    validation minimum (for the loss gap, its first epoch's); a validation loss that
    rose while the training loss barely moved is noise or a bounce, not a gap. A warning needs a gap
    above ``gap_alone``, or above ``gap_rising`` with the validation loss rising; a smaller gap
    with a rising validation loss is a run trained past its best epoch (info: stop there).
    Live, the same test reads the epochs so far: overfitting shows while the run trains (it
    is what early stopping watches), and a gap that later closes is withdrawn.

    ## Known problems
    Training accuracy measured during the epoch with dropout or augmentation on is lower than
    the model's real training accuracy, which hides part of the gap (never creates one).
    Label smoothing does not change accuracies. Validation sets of a few hundred examples are
    noisy, hence the median over several epochs. A model that is already underfitting and has a
    small gap is RL302's business. A single-output classifier whose loss is not named, logs no
    accuracy and is not trained with a sigmoid cross-entropy of its logit (a hinge, or BCE on
    a sigmoid inside the model) is read as a regression and judged on its loss gap.

    ## Fix
    Strengthen regularization: raise L2 (``weight_decay=5e-4`` or ×10 what you use), add or
    raise dropout, augment the data, or get more training data; stop at the best validation
    epoch.

    ## Seed
    "训练集和验证集 acc 的差距表明了过拟合程度。差距过大,严重过拟合,通过增强正则化:加大 L2
    惩罚,更多 dropout。或增加数据量。"
    """

    code = "RL301"
    name = "overfit-gap"
    severity = Severity.WARNING
    requires = (TRAIN_AND_VAL,)

    @dataclass
    class Options(Rule.Options):
        gap: float = option(0.15, "median train − val accuracy over the late epochs above this")
        gap_min: float = option(0.05, "a smaller gap counts when the validation loss is rising")
        gap_alone: float = option(
            0.25,
            "a gap above this is a warning on its own; a smaller one (drawn healthy runs reach "
            "0.2) needs a rising validation loss",
        )
        gap_rising: float = option(
            0.2,
            "with a rising validation loss, a gap above this is a warning (drawn healthy runs "
            "trained past their best epoch reach 0.15; memorizing runs 0.18 and up)",
        )
        rise: float = option(1.5, "late validation loss / its minimum")
        train_fall: float = option(
            0.5,
            "late training loss / training loss at the validation minimum at most this "
            "(drawn memorizing runs reach 0.01–0.35; a bounce that lifts both curves, 0.5–0.8)",
        )
        loss_gap: float = option(
            0.4,
            "regression: late validation − training loss at least this × the initial loss (an "
            "R² gap for standardized targets; drawn healthy regressions reach 0.23)",
        )
        late: float = option(1 / 3, "fraction of the epochs judged")
        min_epochs: int = option(3, "fewer epochs with both curves are not judged")

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        o = self.options
        acc, loss = curves(run, "acc"), curves(run, "loss")
        rising = self._val_loss_rising(loss) if loss is not None else None
        if acc is not None and len(acc.train) >= o.min_epochs:
            part = acc.late(o.late)
            gap = float(np.median(acc.train[part] - acc.val[part]))
            train, val = float(np.median(acc.train[part])), float(np.median(acc.val[part]))
            if gap > o.gap or (gap > o.gap_min and rising is not None):
                steps = acc.span(part)
                extra = f"; {rising[0]}" if rising is not None else ""
                # a gap alone may be the data's (small sets generalize less): a warning needs
                # the validation loss rising too, or a gap no healthy run shows
                strong = gap > o.gap_alone or (rising is not None and gap > o.gap_rising)
                yield self.finding(
                    run,
                    f"train accuracy {fmt(train)} vs validation {fmt(val)}: gap {fmt(gap)} "
                    f"(median over the last {part.stop - part.start} of {len(acc.train)} epochs, "
                    f"steps {steps[0]}–{steps[1]}){extra}",
                    "regularize more: add L2 (weight_decay=5e-4, or ×10 yours) or dropout, "
                    "augment the data or get more of it",
                    severity=self.severity if strong else Severity.INFO,
                    steps=steps,
                    where=acc.val_col,
                    evidence={"train_acc": train, "val_acc": val, "gap": gap},
                )
            return
        if loss is None:
            return
        # a classifier's loss gap is no accuracy gap: only a regression's is judged
        inferred = regression_evidence(run)
        regression = run.setup.loss in REGRESSION_LOSSES or inferred is not None
        found = rising or (self._loss_gap(run, loss, inferred) if regression else None)
        if found is not None:
            message, steps = found
            yield self.finding(
                run,
                message,
                "regularize more: add L2 (weight_decay=5e-4, or ×10 yours) or dropout, get "
                "more data, or stop at the best validation epoch",
                steps=steps,
                where=loss.val_col,
                evidence={"val_loss_min": float(np.min(loss.val))},
            )

    def _loss_gap(
        self, run: Run, loss: Curves, inferred: str | None = None
    ) -> tuple[str, tuple[int, int]] | None:
        """A regression's late validation loss above its late training loss by ``loss_gap`` of
        the initial loss, the training loss fallen to ``train_fall``× its first epoch's."""
        o = self.options
        start = initial_loss(run, loss)
        if len(loss.train) < o.min_epochs or start is None or start <= 0:
            return None
        part = loss.late(o.late)
        val_late = float(np.median(loss.val[part]))
        train_late = float(np.median(loss.train[part]))
        gap = (val_late - train_late) / start
        if not (train_late <= o.train_fall * float(loss.train[0]) and gap >= o.loss_gap):
            return None
        return (
            f"validation loss {fmt(val_late)} vs training loss {fmt(train_late)} (medians of the "
            f"last {part.stop - part.start} of {len(loss.train)} epochs): a gap of "
            f"{fmt(100 * gap)}% of the initial loss {fmt(start)}, the training loss still "
            "falling: the model fits the training set far better than unseen data"
            + (f" ({inferred})" if inferred else ""),
            loss.span(part),
        )

    def _val_loss_rising(self, loss: Curves) -> tuple[str, tuple[int, int]] | None:
        """Validation loss up ``rise``× from its minimum while the training loss kept falling."""
        o = self.options
        if len(loss.val) < max(o.min_epochs, 4):
            return None
        part = loss.late(o.late)
        best = int(np.argmin(loss.val))
        low = float(loss.val[best])
        if best >= part.start or low <= 0:
            return None
        val_late = float(np.median(loss.val[part]))
        train_late = float(np.median(loss.train[part]))
        if val_late < o.rise * low or train_late > o.train_fall * float(loss.train[best]):
            return None
        steps = (int(loss.steps[best]), int(loss.steps[-1]))
        return (
            f"validation loss rose from {fmt(low)} (epoch {best}) to {fmt(val_late)} "
            f"(×{fmt(val_late / low)}, median of the last {part.stop - part.start} epochs) while "
            f"training loss fell from {fmt(float(loss.train[best]))} to {fmt(train_late)}",
            steps,
        )
