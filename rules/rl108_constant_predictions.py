"""RL108 constant-predictions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from runlint.analysis.outputs import (
    CONSTANT_SHARE,
    LATE,
    MIN_ROWS,
    MIN_STEPS,
    constant_output,
)
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run


class ConstantPredictions(Rule):
    """By the end of the run the model gives every example the same prediction.

    From the ``outputs`` table: over the last ``late`` of the recorded steps, how much each
    output varies across the examples of a batch (``batch_std``). For an output of several
    units it is compared with the output's whole spread (``std``); for a single output (a
    regression) with the scale of the targets, which the first loss gives (√loss for a squared
    error, the loss for an absolute one). Below ``share`` of it, the prediction no longer
    depends on the input. A finished run whose outputs are logits (by the loss's gradient) is
    also judged by their absolute spread (``analysis.outputs.constant_output``).

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
    - A finished classifier whose logits differ by less than ``LOGIT_SPREAD`` (0.1) between
      examples is flagged even where its inputs carry almost no signal about the labels (then
      the prior is the best it can predict, and the finding says so much).

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
            CONSTANT_SHARE,
            "late spread across examples below this share of the output's scale: constant",
        )
        late: float = option(LATE, "the fraction of the recorded steps judged (the last ones)")
        min_steps: int = option(MIN_STEPS, "recorded output steps needed")
        min_rows: int = option(MIN_ROWS, "rows a recorded batch must hold to have a spread")

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        o = self.options
        found = constant_output(run, o.share, o.late, o.min_steps, o.min_rows)
        if found is None:
            return
        a, b = found.steps
        yield self.finding(
            run,
            f"the model's output varies by {found.across:.3g} across the examples of a batch "
            f"(median over steps {a}–{b}), {found.across / found.scale:.1%} of {found.against}: "
            "it gives every input the same prediction",
            steps=found.steps,
            where="outputs",
            evidence={"batch_std": found.across, "scale": found.scale, "width": found.width},
        )
