"""RL108 constant-predictions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.analysis import curves
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run


class ConstantPredictions(Rule):
    """By the end of the run the model gives every example the same prediction.

    From the ``outputs`` table: over the last ``late`` of the recorded steps, how much each
    output varies across the examples of a batch (``batch_std``). For an output of several
    units it is compared with the output's whole spread (``std``); for a single output (a
    regression) with the scale of the targets, which the first loss gives (√loss for a squared
    error, the loss for an absolute one). Below ``share`` of it, the prediction no longer
    depends on the input.

    ## Why it matters
    A model that predicts the same value for every input has learnt only the targets' mean (or
    the classes' frequencies): its loss stalls at their spread. The usual causes are a loss
    that compares the wrong shapes (``mse_loss`` of a ``(B, 1)`` output against ``(B,)``
    targets broadcasts to ``(B, B)`` and is minimized by the mean), labels that do not match
    their inputs, or a network whose signal died on the way (dead or saturated units).

    ## Known problems
    - A task whose targets really are constant (or a data set of one class) is flagged.
    - The recorded batch may be a single example (batch size 1): its spread is 0; such runs
      are not judged.

    ## Fix
    Check the shapes the loss compares (``output.squeeze(-1)`` against ``(B,)`` targets; a
    ``UserWarning: Using a target size that is different to the input size`` says so), that the
    labels belong to their inputs, and that activations and gradients reach the first layers.

    ## Seed
    "检查是否所有的输出都是 0" and "确保可以实现 0 loss"
    """

    code = "RL108"
    name = "constant-predictions"
    severity = Severity.WARNING
    requires = ("outputs.batch_std", "steps.loss")
    explained_by = ("RL104", "RL201", "RL204", "RL206", "RL402", "RL404", "RL502", "RL503")

    @dataclass
    class Options(Rule.Options):
        share: float = option(
            0.1, "late spread across examples below this share of the output's scale: constant"
        )
        late: float = option(0.25, "the fraction of the recorded steps judged (the last ones)")
        min_steps: int = option(4, "recorded output steps needed")
        min_rows: int = option(2, "rows a recorded batch must hold to have a spread")

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        out = run.outputs
        if len(out) < opts.min_steps or float(out["rows"].min()) < opts.min_rows:
            return
        late = out.iloc[len(out) - max(1, int(np.ceil(opts.late * len(out)))) :]
        across = float(np.median(late["batch_std"].to_numpy(dtype=float)))
        width = int(np.median(out["width"].to_numpy(dtype=float)))
        if width > 1:
            scale = float(np.median(late["std"].to_numpy(dtype=float)))
            against = f"the spread of its {width} outputs ({scale:.3g})"
        else:
            _, values = curves.series(run.steps, "loss")
            if values.size == 0 or values[0] <= 0:
                return
            squared = (run.setup.loss or "mse") in ("mse", "l2", "mean_squared_error")
            scale = float(np.sqrt(values[0]) if squared else values[0])
            against = f"the targets' scale from the first loss ({scale:.3g})"
        if not (np.isfinite(across) and np.isfinite(scale)) or scale <= 0:
            return
        if across >= opts.share * scale:
            return
        steps = (int(late.index[0]), int(late.index[-1]))
        yield self.finding(
            run,
            f"the model's output varies by {across:.3g} across the examples of a batch (median "
            f"over steps {steps[0]}–{steps[1]}), {across / scale:.1%} of {against}: it gives "
            "every input the same prediction",
            steps=steps,
            where="outputs",
            evidence={"batch_std": across, "scale": scale, "width": width},
        )
