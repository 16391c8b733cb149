"""Train/validation curves over epochs (RL301 overfit-gap, RL302 underfit, RL205, ...)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runlint.run import Run
from runlint.schema import any_of

__all__ = ["TRAIN_AND_VAL", "Curves", "curves", "initial_loss"]

#: What the epoch-curve rules need: train and validation accuracy, or train and validation loss.
TRAIN_AND_VAL = any_of(
    ("epochs.train_acc", "epochs.val_acc"), ("epochs.train_loss", "epochs.val_loss")
)


@dataclass
class Curves:
    """Train/validation curves over epochs (finite rows only), with the step each epoch closed."""

    metric: str  # "acc" or "loss"
    train_col: str
    val_col: str
    train: np.ndarray
    val: np.ndarray
    steps: np.ndarray

    def late(self, frac: float) -> slice:
        """The last ``frac`` of the epochs (at least one)."""
        n = len(self.train)
        return slice(n - max(1, int(np.ceil(frac * n))), n)

    def span(self, part: slice) -> tuple[int, int]:
        steps = self.steps[part]
        return int(steps[0]), int(steps[-1])


def curves(run: Run, metric: str) -> Curves | None:
    """The ``acc`` or ``loss`` train/val curves of a run, or ``None`` when not both recorded.

    Columns are found by their schema names and aliases (``val_accuracy`` for ``val_acc``).
    Built once per run (shared by the rules: do not modify the arrays).
    """
    return run.memo(("epoch_curves", metric), lambda: _curves(run, metric))


def _curves(run: Run, metric: str) -> Curves | None:
    epochs = run.epochs
    if epochs.empty:
        return None
    train_col = run.column("epochs", f"train_{metric}")
    val_col = run.column("epochs", f"val_{metric}")
    if train_col is None or val_col is None:
        return None
    train = epochs[train_col].to_numpy(dtype=float, na_value=np.nan)
    val = epochs[val_col].to_numpy(dtype=float, na_value=np.nan)
    ok = np.isfinite(train) & np.isfinite(val)
    if not ok.any():
        return None
    if "step" in epochs.columns:
        steps = epochs["step"].to_numpy(dtype=float, na_value=np.nan)
        steps = np.where(np.isfinite(steps), steps, 0).astype(np.int64)
    else:
        steps = epochs.index.to_numpy(dtype=np.int64)
    return Curves(metric, train_col, val_col, train[ok], val[ok], steps[ok])


def initial_loss(run: Run, loss: Curves | None) -> float | None:
    """The loss at the start: median of the first recorded steps, else the first epoch's."""
    if run.has("steps.loss"):
        values = run.steps["loss"].to_numpy(dtype=float, na_value=np.nan)
        values = values[np.isfinite(values)][:5]
        if len(values):
            return float(np.median(values))
    if loss is not None and len(loss.train):
        return float(loss.train[0])
    return None
