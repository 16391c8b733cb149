"""What the model's output says about the run: whether it still depends on the input."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runlint.analysis import curves
from runlint.analysis.expected import SQUARED_LOSSES
from runlint.run import Run

__all__ = ["CONSTANT_SHARE", "ConstantOutput", "constant_output", "regression_evidence"]

#: Late spread across the examples of a batch below this share of the output's scale: the
#: prediction no longer depends on the input (drawn healthy classifiers: 0.3 and up).
CONSTANT_SHARE = 0.1
#: The fraction of the recorded output steps judged (the last ones).
LATE = 0.25
#: Recorded output steps needed.
MIN_STEPS = 4
#: Rows a recorded batch must hold to have a spread (batch size 1 has none).
MIN_ROWS = 2


@dataclass(frozen=True)
class ConstantOutput:
    """The output's late spread across examples, against the scale it is judged by."""

    across: float
    scale: float
    against: str  # what ``scale`` is, in words
    width: int
    steps: tuple[int, int]


def constant_output(
    run: Run,
    share: float = CONSTANT_SHARE,
    late: float = LATE,
    min_steps: int = MIN_STEPS,
    min_rows: int = MIN_ROWS,
) -> ConstantOutput | None:
    """The late output spread when it is below ``share`` of its scale, else None.

    From the ``outputs`` table, over the last ``late`` of the recorded steps: the median
    spread of each output across the examples of a batch (``batch_std``). An output of several
    units is compared with its whole spread (``std``); a single output (a regression) with the
    targets' scale from the first loss (√loss for a squared error, the loss for an absolute
    one).
    """
    out = run.outputs
    if len(out) < min_steps or float(out["rows"].min()) < min_rows:
        return None
    tail = out.iloc[len(out) - max(1, int(np.ceil(late * len(out)))) :]
    across = float(np.median(tail["batch_std"].to_numpy(dtype=float)))
    width = int(np.median(out["width"].to_numpy(dtype=float)))
    if width > 1:
        scale = float(np.median(tail["std"].to_numpy(dtype=float)))
        against = f"the spread of its {width} outputs ({scale:.3g})"
    else:
        _, values = curves.series(run.steps, "loss")
        if values.size == 0 or values[0] <= 0:
            return None
        squared = (run.setup.loss or "mse") in SQUARED_LOSSES
        scale = float(np.sqrt(values[0]) if squared else values[0])
        against = f"the targets' scale from the first loss ({scale:.3g})"
    if not (np.isfinite(across) and np.isfinite(scale)) or scale <= 0:
        return None
    if across >= share * scale:
        return None
    steps = (int(tail.index[0]), int(tail.index[-1]))
    return ConstantOutput(across, scale, against, width, steps)


#: ``grad_sigmoid_fit`` above this: the loss's gradient at the output is not a binary
#: cross-entropy's of its sigmoid (drawn BCE runs: 0.0018 at most; regressions 0.02 and up).
NOT_SIGMOID_FIT = 0.01


def regression_evidence(run: Run) -> str | None:
    """Why a run whose loss is not named looks like a regression, or None.

    One output, no accuracy logged, and a gradient at the output that is not a sigmoid
    cross-entropy's (a binary classifier with one logit is the other single-output run). A
    run that names its loss, or was recorded without the gradient signatures, is not inferred.
    """
    out = run.outputs
    if run.setup.loss is not None or out.empty or "grad_sigmoid_fit" not in out.columns:
        return None
    if int(np.median(out["width"].to_numpy(dtype=float))) != 1:
        return None
    if not run.epochs.empty and any(run.column("epochs", c) for c in ("val_acc", "train_acc")):
        return None
    fit = out["grad_sigmoid_fit"].to_numpy(dtype=float)
    fit = fit[np.isfinite(fit)]
    if fit.size == 0 or float(np.median(fit)) <= NOT_SIGMOID_FIT:
        return None
    return (
        "the loss is not named; one output, no accuracy logged and a gradient that is not a "
        "sigmoid cross-entropy's say regression"
    )
