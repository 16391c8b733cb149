"""RL205 lr-not-decayed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.analysis import curves
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run

# Optimizers whose effective step decays on its own: Adagrad divides by the square root of the
# sum of all past squared gradients (the seed: "Adagrad's monotone decay"), Adadelta likewise.
_SELF_DECAYING = {"Adagrad", "Adadelta", "SparseAdagrad"}


class LrNotDecayed(Rule):
    """The validation loss stopped improving long ago while the learning rate never decayed.

    The plateau starts at the first epoch whose ``val_loss`` is within ``tolerance`` of the
    total improvement above its best value. The rule fires when the plateau covers at least
    ``min_plateau_epochs`` epochs and ``min_plateau_fraction`` of the run, the validation
    loss did improve before it, it is not rising again (its last third's median no more than
    ``max_rise`` of the improvement above its first third's: that is overfitting, RL301's job), and
    the learning rate (after any warm-up) never dropped by more than 5 %.

    Decaying is advice (``info``) for a run that sits on its plateau: it may settle a little
    lower. It is a ``warning`` only with evidence that decay would help: on the plateau the
    validation loss bounces around a level clearly above its best (median above the best by
    ``bounce_gap`` of the improvement, spread ``bounce_spread`` of it) while the training loss
    no longer falls (less than ``still_falling``) — the steps are too large to settle. A run
    that has converged (validation accuracy ≥ ``converged_acc``, or a validation loss that fell
    to ``converged_loss`` of its start) gets nothing: halving the rate cannot help it.

    ## Why it matters
    At a constant learning rate the parameters keep bouncing around the bottom of the bowl;
    halving the rate when the validation loss stalls lets them settle lower. Epochs spent on
    the plateau are wasted.

    ## Known problems
    - Adaptive optimizers (Adam, RMSprop) adapt per-parameter steps but, as the seed notes,
      still benefit from a global decay; they are judged the same way.
    - A run that reached the irreducible error of its data set, short of converged, gets the
      info: the rule cannot tell that floor from a plateau.
    - Adagrad and Adadelta are not judged: their steps shrink monotonically without a schedule
      (the seed warns that Adagrad's decay is, if anything, too aggressive).

    ## Fix
    Halve the learning rate when val_loss stops improving
    (``torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5)``), or use step decay (×0.5
    every few epochs) or cosine.

    ## Seed
    "实践中,先用固定学习率训练,看验证集 loss,当损失不降时,将学习率减半。选择较慢的衰减,训练时间
    长点。" and "虽然个体学习率会自适应,并不意味着全局学习率不用衰减。"
    """

    code = "RL205"
    name = "lr-not-decayed"
    severity = Severity.INFO
    requires = ("epochs.val_loss", "steps.lr")
    whole_run = True

    @dataclass
    class Options(Rule.Options):
        tolerance: float = option(
            0.05, "on the plateau: within this fraction of the total improvement above the best"
        )
        min_plateau_epochs: int = option(5, "the plateau lasts at least this many epochs ...")
        min_plateau_fraction: float = option(0.4, "... and at least this fraction of the run")
        min_improvement: float = option(
            0.05, "val_loss must first improve by this fraction of its first value"
        )
        max_rise: float = option(
            0.1,
            "the plateau's last third above its first third by more than this × the improvement "
            "is overfitting",
        )
        converged_acc: float = option(0.995, "validation accuracy at least this: converged")
        converged_loss: float = option(
            1e-3, "best val_loss at most this × its first value: converged"
        )
        bounce_gap: float = option(
            0.25, "warning: the plateau's median val_loss is above the best by this × improvement"
        )
        bounce_spread: float = option(
            0.1, "... its median absolute deviation is at least this × the improvement ..."
        )
        still_falling: float = option(
            0.1, "... and the training loss fell less than this fraction over the plateau"
        )

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        optimizer = run.setup.optimizer_class
        if optimizer in _SELF_DECAYING:
            return  # its per-parameter steps shrink monotonically by construction
        lr = run.steps["lr"].to_numpy(dtype=float, na_value=np.nan)
        if curves.decays(lr):
            return
        epochs, val = curves.series(run.epochs, "val_loss")
        if val.size < opts.min_plateau_epochs + 1 or val[0] <= 0:
            return
        best = float(val.min())
        improvement = float(val[0]) - best
        if improvement < opts.min_improvement * float(val[0]):
            return  # never improved: RL204 / RL201 territory
        start = int(np.argmax(val <= best + opts.tolerance * improvement))
        length = val.size - start
        if length < opts.min_plateau_epochs or length < opts.min_plateau_fraction * val.size:
            return
        third = max(1, length // 3)
        rise = float(np.median(val[-third:]) - np.median(val[start : start + third]))
        if rise > opts.max_rise * improvement:
            return  # rising again: overfitting, not a plateau
        if self._converged(run, best, float(val[0])):
            return
        lr_now = float(lr[np.isfinite(lr)][-1])
        step = run.epochs["step"] if "step" in run.epochs.columns else None
        span = None
        if step is not None:
            steps = step.to_numpy()
            span = (int(steps[start]), int(steps[-1]))
        plateau = val[start:]
        level = float(np.median(plateau))
        gap = (level - best) / improvement
        spread = float(np.median(np.abs(plateau - level))) / improvement
        fall = _training_fall(run, span[0] if span else None)
        bounces = (
            gap >= opts.bounce_gap
            and spread >= opts.bounce_spread
            and fall is not None
            and fall < opts.still_falling
        )
        evidence = {
            "best_val_loss": best,
            "plateau_from_epoch": int(epochs[start]),
            "plateau_epochs": length,
            "plateau_median": level,
            "lr": lr_now,
            "training_fall": fall,
        }
        message = (
            f"val_loss has stayed within {opts.tolerance:.0%} of its best {best:.3g} since epoch "
            f"{int(epochs[start])} ({length} of {val.size} epochs) while the learning rate never "
            f"decayed (lr {lr_now:.3g})"
        )
        if bounces:
            message = (
                f"val_loss bounces around {level:.3g} on its plateau since epoch "
                f"{int(epochs[start])} ({length} of {val.size} epochs), above its best "
                f"{best:.3g} by {gap:.0%} of what it improved, while the training loss no longer "
                f"falls ({fall:+.0%}) and the learning rate never decayed (lr {lr_now:.3g}): the "
                "steps are too large to settle"
            )
        yield self.finding(
            run,
            message,
            severity=Severity.WARNING if bounces else self.severity,
            steps=span,
            where="val_loss",
            evidence=evidence,
        )

    def _converged(self, run: Run, best: float, first: float) -> bool:
        """Validation is as good as it gets: nothing for a decay to win."""
        opts = self.options
        if best <= opts.converged_loss * first:
            return True
        column = run.column("epochs", "val_acc")
        if column is None:
            return False
        acc = curves.finite(run.epochs[column].to_numpy(dtype=float, na_value=np.nan))
        return bool(acc.size and acc.max() >= opts.converged_acc)


def _training_fall(run: Run, from_step: int | None) -> float | None:
    """How much the smoothed training loss fell from ``from_step`` to the end, as a fraction."""
    curve = curves.prepare(run)
    if curve is None or from_step is None:
        return None
    at = int(np.searchsorted(curve.steps, from_step))
    if at >= len(curve.steps) - 1 or curve.smooth[at] <= 0:
        return None
    return float((curve.smooth[at] - curve.smooth[-1]) / curve.smooth[at])
