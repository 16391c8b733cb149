"""RL101 initial-loss-off."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from runlint.analysis import curves
from runlint.analysis.expected import BINARY, SVM, chance_loss, is_classification, output_layer
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run


class InitialLossOff(Rule):
    """The data loss at step 0 is far from what a classifier with small weights gives.

    With small random weights every class gets the same score, so the softmax loss starts at
    ln(C) (2.303 for 10 classes) and the multiclass SVM loss at C − 1 (9 for 10 classes; PyTorch's
    ``multi_margin_loss`` divides by C, giving (C − 1)/C). A step-0 loss far above that means the
    scores are large at init (a last layer initialized too large, unnormalized inputs, a loss
    summed instead of averaged); far below means the run did not start from scratch.

    ## Why it matters
    A classifier that starts confidently wrong spends its first epochs undoing the init, and a
    wrong initial loss is often the first visible sign of a bug in the loss or the data.

    A wrong start is a ``warning``, never an ``error``: the run may still recover and train well
    (its results are not untrustworthy by themselves), only slower.

    ## Known problems
    - Label smoothing raises the floor of the loss, not its start: the initial loss is still
      ln(C), so it is judged the same way.
    - Regression losses (``meta.loss`` = mse, l1, huber, …) have no expected value: skipped.
    - Fine-tuned or resumed runs start below ln(C): reported as info only.
    - A He-initialized output layer (the seed's own ``randn(n) * sqrt(2/n)`` applied to every
      layer, ``kaiming_normal_`` on all Linear layers) on unit-scale features gives logits of
      std ≈ √2 and starts ~0.4 (2 classes) to ~0.8 (10 classes) nats above ln(C); in a
      deep stack the features' mean square drifts from 1 (step-0 losses of 2.8–3.7 for 10
      classes in 8-layer MLPs). When the
      output layer's init std is at most ``he_tolerance``× He, an initial loss up to what
      Gaussian logits of variance 2 × ``he_signal`` × (std/He)² give is read as that head
      and reported as info (scaling the head down still gives the textbook start); above it
      (unnormalized inputs, a summed loss) it is a warning as usual. A smaller excess than
      the thresholds is reported only when the output layer's init std is above 2× He, which
      explains it.
    - When ``num_classes`` is inferred from the last Linear layer (not given in ``meta``) the
      task may be a multi-output regression: findings are capped at info.
    - Hugging Face logs average the first ``logging_steps`` losses
      (``meta.first_loss_is_average``): the step-0 loss cannot be verified; an info says so.

    ## Fix
    Scale the last layer's weights down (×0.01) and zero its bias, normalize the inputs, and
    check the loss's reduction (mean, not sum).

    ## Seed
    "参数初始化后,检查一下数据损失的初始值. 10 类,Softmax 初始化 loss = -ln(p=0.1) = 2.302;
    SVM loss = 9" and "确保使用小参数进行初始化时得到预期损失。先只用数据损失,初始化每个类的概率应
    相同,算loss:-ln(0.1) = 2.302。"
    """

    code = "RL101"
    name = "initial-loss-off"
    severity = Severity.WARNING
    requires = ("steps.loss", "meta.num_classes")
    explained_by = ("RL104", "RL105")

    @dataclass
    class Options(Rule.Options):
        high_ratio: float = option(1.25, "warning when the initial loss exceeds expected × this")
        min_excess: float = option(
            0.25, "... and by at least this many nats (a small C has a small ln C)"
        )
        head_excess: float = option(
            0.05, "nats above expected that suffice when the output layer starts large"
        )
        head_factor: float = option(
            2.0, 'a "large" output layer: init std above He √(2/fan_in) × this'
        )
        he_tolerance: float = option(
            1.2, "output-layer init std at most He × this: a He-scaled head, which ..."
        )
        he_signal: float = option(
            3.0, "... on features of mean square up to this explains the excess (info)"
        )
        low_ratio: float = option(0.5, "info when the initial loss is below expected × this")
        first_steps: int = option(1, "steps averaged for the initial loss (step 0 only by default)")

    options: Options

    def applies(self, run: Run) -> str | None:
        if not is_classification(run.setup):
            return f"meta.loss is {run.setup.loss!r}, not a classification loss"
        return None

    def check(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        setup = run.setup
        chance = chance_loss(setup)
        if chance is None:
            return  # fewer than 2 classes of a softmax or SVM: nothing to compare with
        classes = chance.classes
        column = "data_loss" if run.has("steps.data_loss") else "loss"
        steps, values = curves.series(run.steps, column)
        if values.size == 0:
            return
        first_step = int(steps[0])
        if setup.first_loss_is_average:
            yield self.finding(
                run,
                f"the first logged {column} ({values[0]:.3g}) is an average over the first "
                "logging steps, so the step-0 loss cannot be verified",
                "log the loss at step 0 (logging_first_step=True) to check the initial loss",
                severity=Severity.INFO,
                steps=(first_step, first_step),
                where=column,
            )
            return
        if first_step > 0:
            return  # the recording starts mid-run: step 0 is not there to check
        initial = float(np.median(values[: max(1, opts.first_steps)]))
        expected, what = chance.value, chance.formula
        inferred = not setup.given("num_classes")
        where = f"{column} at step 0"
        evidence: dict[str, Any] = {
            "initial_loss": initial,
            "expected": expected,
            "num_classes": classes,
        }
        head = _head(run)
        head_large = head is not None and head[1] > opts.head_factor * head[2]
        clear = initial > expected * opts.high_ratio and initial - expected > opts.min_excess
        he_head = (
            clear
            and not head_large
            and head is not None
            and chance.kind != SVM
            and head[1] <= opts.he_tolerance * head[2]
        )
        if he_head and head is not None:
            sigma = math.sqrt(2.0 * opts.he_signal) * head[1] / head[2]
            allowed = _gaussian_logit_loss(sigma, classes, binary=chance.kind == BINARY)
            if initial <= allowed:
                evidence.update(head=head[0], head_std=head[1], head_he_std=head[2])
                evidence["he_head_bound"] = allowed
                yield self.finding(
                    run,
                    f"initial {column} {initial:.3g} at step 0 is {initial - expected:.3g} above "
                    f"the expected {what} = {expected:.2f} for a {classes}-class "
                    f"{chance.kind}, within what a He-scaled output layer gives (≤ "
                    f"{allowed:.3g}: {head[0]} starts with std {head[1]:.3g}, "
                    f"{head[1] / head[2]:.2f}× He √(2/fan_in))",
                    "for the textbook start at ln(C), scale the last layer's weights ×0.1 "
                    "(or initialize it with a small std) and zero its bias",
                    severity=Severity.INFO,
                    steps=(first_step, first_step),
                    where=where,
                    evidence=evidence,
                )
                return
        if clear or (head_large and initial - expected > opts.head_excess):
            severity = self.severity
            if inferred:
                severity = Severity.INFO
            note = " (num_classes inferred from the last layer)" if inferred else ""
            cause = "the scores are large at init"
            if head is not None and head_large:
                cause = (
                    f"the output layer {head[0]} starts with std {head[1]:.3g}, "
                    f"{head[1] / head[2]:.1f}× He √(2/fan_in) = {head[2]:.3g}"
                )
                evidence.update(head=head[0], head_std=head[1], head_he_std=head[2])
            yield self.finding(
                run,
                f"initial {column} {initial:.3g} at step 0 is {initial - expected:.3g} above "
                f"(×{initial / expected:.3g}) the expected {what} = {expected:.2f} for a "
                f"{classes}-class {chance.kind}{note}: {cause}",
                "scale the last layer's weights ×0.01 and zero its bias (and normalize the "
                "inputs; average, not sum, the loss)",
                severity=severity,
                steps=(first_step, first_step),
                where=where,
                evidence=evidence,
            )
        elif initial < expected * opts.low_ratio:
            yield self.finding(
                run,
                f"initial {column} {initial:.3g} at step 0 is below the expected {what} = "
                f"{expected:.2f} for a {classes}-class {chance.kind}: the model did not "
                "start from a fresh init (fine-tuning, a resumed run) or the loss is scaled",
                "if this run should start from scratch, check the loss's reduction and that "
                "no checkpoint is loaded",
                severity=Severity.INFO,
                steps=(first_step, first_step),
                where=where,
                evidence=evidence,
            )


def _head(run: Run) -> tuple[str, float, float] | None:
    """``(name, init std, He std)`` of the output layer."""
    found = output_layer(run.setup)
    if found is None:
        return None
    param, scales = found
    return param.name, float(param.init_std or 0.0), scales.he


def _gaussian_logit_loss(sigma: float, classes: int, *, binary: bool) -> float:
    """Mean softmax (or logistic) loss of i.i.d. N(0, sigma²) logits, by a seeded Monte Carlo.

    ``binary``: one logit against a fixed 0 (BCE with logits), else ``classes`` logits.
    """
    width = 2 if binary else max(2, classes)
    rng = np.random.default_rng(0)
    samples = max(1000, 200_000 // width)
    z = rng.standard_normal((samples, width)) * sigma
    if binary:
        z[:, 1] = 0.0
    top = z.max(axis=1)
    lse = top + np.log(np.exp(z - top[:, None]).sum(axis=1))
    return float(np.mean(lse - z[:, 0]))
