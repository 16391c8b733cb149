"""RL105 loss-input-off."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.analysis import curves
from runlint.analysis.expected import BINARY_LOSSES, REGRESSION_LOSSES, SOFTMAX_LOSSES
from runlint.analysis.outputs import loss_form, output_width, signature_within
from runlint.check import Finding, Rule, Severity, any_of, option
from runlint.run import Run

#: Losses that apply the softmax (or the sigmoid) themselves: they expect raw logits.
LOGIT_LOSSES = (SOFTMAX_LOSSES - {"nll", "log_softmax"}) | (
    BINARY_LOSSES - {"bce", "binary_cross_entropy"}
)
#: Losses that are ≥ 0 on the inputs they expect (a negative value means wrong inputs).
NON_NEGATIVE_LOSSES = SOFTMAX_LOSSES | BINARY_LOSSES | REGRESSION_LOSSES
#: The loss that takes what a final Softmax or Sigmoid gives.
_FOR_PROBABILITIES = {
    "Softmax": "probabilities (nll_loss of their log)",
    "Sigmoid": "them (BCELoss)",
}
#: Losses that expect log-probabilities (the output of log_softmax).
LOG_PROB_LOSSES = frozenset({"nll", "log_softmax"})
#: What the loss applies to the output, by the form of its gradient there
#: (``analysis.outputs.loss_form``).
_FORMS = {
    "softmax": "sums to 0 over every row",
    "sigmoid": "is c·(σ(output) − target) with targets 0 or 1",
}


class LossInputOff(Rule):
    """The model hands its loss the wrong kind of numbers: probabilities to a loss that expects
    logits, logits to one that expects log-probabilities, or an output as wide as no class count.

    A loss that cannot be negative on the inputs it expects (cross-entropy, nll, BCE, MSE, ...)
    but goes below zero is an ``error``: ``nll_loss`` of raw scores is unbounded below.
    Otherwise it is read from the model's output on the statistics steps (``outputs``) and the
    loss the run names (``meta.loss``), or, when it names none, from what the loss's gradient at
    the output shows it does: each row of it sums to 0 (``grad_row_shift`` within
    ``signature_tolerance``) for a loss of the output's softmax; it is c·(σ(x) − y) for a
    sigmoid cross-entropy (``grad_sigmoid_fit``); at every recorded step. Whatever the loss is
    named, a gradient whose every column sums to 0 over the batch (``grad_col_shift``) is a
    softmax taken over the batch dimension. Probabilities: every value in [0, 1]
    (``unit_fraction`` ≥ ``probability_share``) and, for more than one output, every row
    summing to 1 within ``sum_tolerance``, at every recorded step. Log-probabilities: rows
    whose logsumexp is 0 within ``sum_tolerance``. The width is the output's last dimension,
    compared with ``meta.num_classes`` when the user gave it.

    ## Why it matters
    ``cross_entropy`` and ``BCEWithLogitsLoss`` apply the softmax or the sigmoid themselves. A
    model that already ends in one squashes its scores twice: the loss can no longer reach 0,
    its gradients shrink as the model grows confident, and training crawls or stalls at a high
    loss. ``nll_loss`` on raw logits is not a cross-entropy at all and can go to −∞. An output
    of the wrong width compares scores with the wrong classes.

    ## Known problems
    - A model whose logits all happen to lie in [0, 1] with rows summing to 1 would be taken
      for probabilities; with two or more outputs over several steps this does not happen by
      chance.
    - The recorder sees the model's output, not what the training code does with it before
      the loss (a ``torch.log`` in the loop turns probabilities into log-probabilities): name
      the loss as it is called in ``meta.loss`` (``nll`` then).
    - A listwise ranking loss with several scores per item (a softmax over the items of the
      batch, on purpose) looks like a softmax over the wrong dimension; so may a few classes
      over a huge batch (hundreds of thousands of rows per class), whose gradient columns sum
      close to 0 by chance. A softmax over the batch under bf16 may not show within
      ``batch_tolerance``.
    - Without ``meta.loss`` only the two gradient forms are judged (probabilities are right
      for ``BCELoss``). The Brier score (MSE between probabilities and one-hot targets) has
      rows summing to 0 as well: name it (``meta.loss = "mse"``). A sigmoid cross-entropy with
      smoothed targets or a ``pos_weight`` does not show its form and is not judged.

    ## Fix
    Give the loss what it expects: remove the final Softmax/Sigmoid before ``cross_entropy`` /
    ``BCEWithLogitsLoss`` (they take raw logits), apply ``log_softmax`` before ``nll_loss``, and
    make the output layer as wide as the number of classes.

    ## Seed
    "参数初始化后,检查一下数据损失的初始值. 10 类,Softmax 初始化 loss = -ln(p=0.1) = 2.302" and
    "确保使用小参数进行初始化时得到预期损失。先只用数据损失,初始化每个类的概率应相同"
    """

    code = "RL105"
    name = "loss-input-off"
    severity = Severity.WARNING
    requires = (any_of("outputs.unit_fraction", "steps.loss"),)

    @dataclass
    class Options(Rule.Options):
        probability_share: float = option(
            0.999, "values in [0, 1] at least this share of the output at every step: probabilities"
        )
        sum_tolerance: float = option(
            1e-3, "rows summing to 1 (probabilities) or with logsumexp 0 (log-probabilities) within"
        )
        min_steps: int = option(2, "recorded steps needed to judge")
        signature_tolerance: float = option(
            0.01, "the gradient has a loss's form within (bf16: 0.0015, targets smoothed: 0.04)"
        )
        batch_tolerance: float = option(
            1e-3,
            "the gradient's columns sum to 0 over the batch within (fp32: ~1e-7; a calibrated "
            "model's columns sum to ≈ 1/(2√(rows/classes)) by chance, drawn healthy runs ≥ 0.027)",
        )
        negative_tolerance: float = option(
            1e-6, "a loss that cannot be negative below minus this: it is fed the wrong input"
        )

    options: Options

    def _negative(self, run: Run, loss: str) -> Finding | None:
        """A loss that cannot be negative on valid input went below ``-negative_tolerance``."""
        if loss not in NON_NEGATIVE_LOSSES:
            return None
        steps, values = curves.series(run.steps, "loss")
        if values.size == 0 or float(values.min()) >= -self.options.negative_tolerance:
            return None
        at = int(np.argmin(values))
        return self.finding(
            run,
            _negative_message(loss, float(values[at]), int(steps[at])),
            "apply log_softmax before nll_loss (or use cross_entropy on the logits), and give "
            "each loss the inputs its documentation names",
            severity=Severity.ERROR,
            steps=(int(steps[0]), int(steps[at])),
            where="loss",
            evidence={"loss": loss, "lowest": float(values[at])},
        )

    def check(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        loss = run.setup.loss or ""
        negative = self._negative(run, loss)
        if negative is not None:
            yield negative
            return
        out = run.outputs
        if len(out) < opts.min_steps:
            return
        steps = (int(out.index[0]), int(out.index[-1]))
        width = output_width(out)
        share = out["unit_fraction"].to_numpy(dtype=float)
        rowsum = out["row_sum"].to_numpy(dtype=float)
        lse = out["row_logsumexp"].to_numpy(dtype=float)
        in_unit = bool((share >= opts.probability_share).all())
        sums_to_one = bool((np.abs(rowsum - 1.0) <= opts.sum_tolerance).all())
        evidence: dict[str, object] = {
            "loss": loss,
            "width": width,
            "unit_fraction": float(np.median(share)),
            "row_sum": float(np.median(rowsum)),
            "row_logsumexp": float(np.median(lse)),
            "steps_recorded": len(out),
        }
        if width > 1 and signature_within(out, "grad_col_shift", opts.batch_tolerance):
            yield self.finding(
                run,
                "the loss normalizes over the batch: its gradient at the model's output sums to 0 "
                f"over the examples for every output unit at each of the {len(out)} recorded "
                f"steps ({steps[0]}–{steps[1]}), as a softmax or log_softmax over dim 0 (the "
                "batch) gives, instead of over the classes",
                "normalize over the classes: log_softmax(x, dim=-1) before nll_loss, or "
                "cross_entropy on the logits",
                steps=steps,
                where="outputs",
                evidence={**evidence, "grad_col_shift": float(out["grad_col_shift"].max())},
            )
            return
        applies = "" if loss else loss_form(out, opts.signature_tolerance)
        if applies:
            evidence["applies"] = applies
        last = _last_module(run)
        if in_unit and (
            (loss in LOGIT_LOSSES and (sums_to_one or width == 1 or loss in BINARY_LOSSES))
            or (applies == "softmax" and sums_to_one and width > 1)
            or applies == "sigmoid"
        ):
            what = (
                "a softmax's (every row sums to 1)" if sums_to_one and width > 1 else "a sigmoid's"
            )
            squash = "Softmax" if sums_to_one and width > 1 else "Sigmoid"
            does = (
                f"the loss is {loss}, which applies the {squash.lower()} itself"
                if loss
                else f"the loss applies a {applies} to it (its gradient there {_FORMS[applies]})"
            )
            yield self.finding(
                run,
                f"the model's output is {what}: all values lie in [0, 1] at each of the "
                f"{len(out)} recorded steps ({steps[0]}–{steps[1]}){last}, but {does}: the "
                "scores are squashed twice",
                f"remove the final {squash} (the loss takes raw logits), or switch to the loss "
                f"made for {_FOR_PROBABILITIES[squash]}",
                steps=steps,
                where="outputs",
                evidence=evidence,
            )
            return
        if loss in LOG_PROB_LOSSES and not bool((np.abs(lse) <= opts.sum_tolerance).all()):
            kind = (
                "probabilities (rows sum to 1)"
                if in_unit and sums_to_one
                else "not log-probabilities (its rows' logsumexp is "
                f"{float(np.median(lse)):.3g}, not 0)"
            )
            yield self.finding(
                run,
                f"the loss is {loss}, which expects log-probabilities, but the model's output is "
                f"{kind} at the recorded steps {steps[0]}–{steps[1]}{last}",
                "apply log_softmax to the output before nll_loss, or use cross_entropy on the "
                "raw logits",
                steps=steps,
                where="outputs",
                evidence=evidence,
            )
            return
        classes = run.setup.num_classes
        if (
            classes is not None
            and run.setup.given("num_classes")
            and loss in SOFTMAX_LOSSES
            and width != classes
        ):
            single = width == 1
            yield self.finding(
                run,
                f"the model's output is {width} wide but the run has {classes} classes"
                + (
                    ": a cross-entropy over one output is 0 whatever the model does"
                    if single
                    else ""
                ),
                f"make the output layer {classes} wide (one score per class)",
                severity=Severity.ERROR if single else self.severity,
                steps=steps,
                where="outputs",
                evidence={**evidence, "num_classes": classes},
            )


def _negative_message(loss: str, low: float, step: int) -> str:
    return (
        f"the loss is {loss}, which cannot go below 0 on what it expects, but it reached "
        f"{low:.3g} at step {step}: it is fed the wrong kind of numbers (raw scores to nll_loss, "
        "logits to a loss that expects probabilities)"
    )


def _last_module(run: Run) -> str:
    """`` (the model ends in nn.Softmax 'head.1')`` when its last leaf module squashes."""
    mods = run.setup.modules
    if mods and mods[-1].type in ("Softmax", "Sigmoid", "LogSoftmax", "Softmax2d"):
        return f" (the model ends in nn.{mods[-1].type} {mods[-1].name!r})"
    return ""
