"""What the model's output says about the run: whether it still depends on the input."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from runlint.analysis import curves
from runlint.analysis.expected import SQUARED_LOSSES
from runlint.run import Run

__all__ = [
    "CONSTANT_SHARE",
    "LOGIT_SPREAD",
    "ConstantOutput",
    "constant_output",
    "loss_form",
    "output_width",
    "regression_evidence",
    "signature_within",
]

#: Late spread across the examples of a batch below this share of the output's scale: the
#: prediction no longer depends on the input (drawn healthy classifiers: 0.3 and up).
CONSTANT_SHARE = 0.1
#: The fraction of the recorded output steps judged (the last ones).
LATE = 0.25
#: Logits whose spread across the examples of a batch is below this move the predicted
#: probabilities by at most a fortieth (σ' ≤ 1/4): the prediction no longer depends on the
#: input, whatever the spread between the classes' own logits (drawn healthy classifiers: 0.30
#: at least, late in their runs; labels shuffled every batch in a multi-label task: 0.065).
LOGIT_SPREAD = 0.1
#: The loss's gradient has a classifier loss's form within this (targets smoothed: 0.04).
LOGIT_FORM_TOLERANCE = 0.05
#: Outputs inside [0, 1] at least this share: probabilities, not logits.
PROBABILITIES = 0.999
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
    one). A finished run whose loss's gradient says its outputs are a classifier's logits is
    also judged by their absolute spread (``LOGIT_SPREAD``): when every class gets the same
    prior, the classes' logits differ as little as the examples' do.
    """
    out = run.outputs
    if len(out) < min_steps or float(out["rows"].min()) < min_rows:
        return None
    tail = out.iloc[len(out) - max(1, int(np.ceil(late * len(out)))) :]
    across = float(np.median(tail["batch_std"].to_numpy(dtype=float)))
    if not np.isfinite(across):
        return None
    width = output_width(out)
    steps = (int(tail.index[0]), int(tail.index[-1]))
    # logits start close together by design (a small last layer: the seed's initial loss at
    # chance), so their absolute spread is judged on a finished run only
    logits = (
        run.complete
        and loss_form(out, LOGIT_FORM_TOLERANCE) != ""
        and float(out["unit_fraction"].median()) < PROBABILITIES
    )
    if logits and across < LOGIT_SPREAD:
        against = (
            "one logit (the loss's gradient at the output is a classifier's: these are logits, "
            f"and below {LOGIT_SPREAD} apart the predicted probabilities hardly differ)"
        )
        return ConstantOutput(across, 1.0, against, width, steps)
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
    if not np.isfinite(scale) or scale <= 0 or across >= share * scale:
        return None
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
    if output_width(out) != 1:
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


def output_width(out: pd.DataFrame) -> int:
    """The output's width (its last dimension) over the recorded steps of a non-empty table."""
    return int(np.median(out["width"].to_numpy(dtype=float)))


def loss_form(out: pd.DataFrame, tolerance: float) -> str:
    """``"softmax"`` or ``"sigmoid"`` when the loss's gradient at the output has the form of a
    loss of its softmax or of a sigmoid cross-entropy at every recorded step, else ``""``."""
    for column, applies in (("grad_row_shift", "softmax"), ("grad_sigmoid_fit", "sigmoid")):
        if signature_within(out, column, tolerance):
            return applies
    return ""


def signature_within(out: pd.DataFrame, column: str, tolerance: float) -> bool:
    """Whether a gradient signature is at most ``tolerance`` at every recorded step (NaN, no
    gradient, never is; nor is a column runs recorded before it existed lack)."""
    if column not in out.columns or out.empty:
        return False
    values = out[column].to_numpy(dtype=float, na_value=np.nan)
    return bool((values <= tolerance).all())
