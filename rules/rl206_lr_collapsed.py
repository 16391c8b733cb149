"""RL206 lr-collapsed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.analysis import curves
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run


class LrCollapsed(Rule):
    """The learning rate falls to almost nothing early in the run and stays there.

    After its peak, the learning rate of param group 0 drops below ``floor`` × that peak
    within the first ``early`` of the logged steps and never climbs back above it: the rest of
    the run trains with steps too small to move the weights.

    ## Why it matters
    A schedule stepped per batch where it was meant per epoch (``ExponentialLR(gamma=0.9)``
    called every step is ×0.9 per batch), a ``StepLR`` with a step size in epochs used in
    batches, or a ``OneCycleLR`` with the wrong ``total_steps`` drives the learning rate to ~0
    long before the end. Every step after that is wasted compute: the model stops where it was.

    ## Known problems
    - A run stopped long before its planned end looks the same when its schedule was meant to
      reach ~0 at that planned end (a cosine over 100 epochs cut after 10 does not collapse,
      but one over 10 epochs cut at 2 does not either; only the logged steps are seen).
    - Warm restarts bring the rate back up: they are not flagged.
    - A schedule that reacts to the loss (``ReduceLROnPlateau``; the seed's "halve it when the
      loss stops falling") is not flagged when its first drop came after the epoch loss
      (validation, else training) had stopped improving: it cut a converged run's rate, as it
      should. A loss-driven schedule that cuts while the loss still falls is flagged.

    ## Fix
    Step the scheduler once per epoch (or give it its length in optimizer steps), and check that
    the learning rate at the end of the first epoch is still close to the one you chose.

    ## Seed
    "学习率衰减...步衰减:每过几个 epoch 减少 lr,比如每 5 个 epoch 减半,或每 20 个 epoch 减小
    为原来的 0.1" and "当损失不降时,将学习率减半。选择较慢的衰减,训练时间长点。"
    """

    code = "RL206"
    name = "lr-collapsed"
    severity = Severity.WARNING
    requires = ("steps.lr",)

    @dataclass
    class Options(Rule.Options):
        floor: float = option(
            0.05, "a learning rate below this × its peak (20× down) barely moves the weights"
        )
        early: float = option(0.25, "... reached within this fraction of the logged steps")
        min_steps: int = option(20, "runs with fewer logged learning rates are not judged")
        plateau_epochs: int = option(
            2, "the lr's first drop answers a plateau when the last this many epochs before it"
        )
        plateau_gain: float = option(
            0.01, "... improved the epoch loss by less than this fraction of its best before"
        )

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        steps, lr = curves.series(run.steps, "lr")
        if lr.size < opts.min_steps:
            return
        top = int(np.argmax(lr))
        peak = float(lr[top])
        if peak <= 0:
            return
        low = lr[top:] < opts.floor * peak
        if not low.any():
            return
        at = top + int(np.argmax(low))
        span = float(steps[-1] - steps[0]) or 1.0
        if (steps[at] - steps[0]) / span > opts.early or not low[at - top :].all():
            return
        first_drop = top + int(np.argmax(lr[top:] < peak))
        if self._after_plateau(run, float(steps[first_drop])):
            return
        yield self.finding(
            run,
            f"the learning rate fell from its peak {peak:.3g} at step {int(steps[top])} to "
            f"{float(lr[at]):.3g} by step {int(steps[at])} ({(steps[at] - steps[0]) / span:.0%} "
            f"of the run) and stayed below {opts.floor:g}× the peak for the remaining "
            f"{int(steps[-1] - steps[at])} steps (lr {float(lr[-1]):.3g} at the end)",
            steps=(int(steps[top]), int(steps[-1])),
            where="lr",
            evidence={"peak_lr": peak, "collapsed_at": int(steps[at]), "final_lr": float(lr[-1])},
        )

    def _after_plateau(self, run: Run, step: float) -> bool:
        """Whether the epoch loss (validation, else training) had stopped improving by
        ``step``: its last ``plateau_epochs`` epochs gained less than ``plateau_gain``."""
        opts = self.options
        column = run.column("epochs", "val_loss") or run.column("epochs", "train_loss")
        if column is None or "step" not in run.epochs.columns:
            return False
        before = run.epochs[run.epochs["step"].to_numpy(dtype=float) <= step]
        _, loss = curves.series(before, column)
        if loss.size < opts.plateau_epochs + 2:
            return False
        best_before = float(np.min(loss[: -opts.plateau_epochs]))
        recent = float(np.min(loss[-opts.plateau_epochs :]))
        return recent > (1 - opts.plateau_gain) * best_before
