"""RL103 non-finite-loss."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.rule import Finding, Rule, Severity
from runlint.run import Run


class NonFiniteLoss(Rule):
    """The loss or a logged metric became NaN or infinite.

    ## Why it matters
    Once the loss is NaN every later update is NaN too: the run is dead from that step on.
    The seed ("Babysitting the learning process") warns that with too high a learning rate
    the loss "explodes"; a NaN is the end point of that, or of a numerical bug (log of 0,
    division by a zero norm).

    ## Known problems
    Mixed-precision runs with a ``GradScaler`` skip steps whose gradients overflow; those steps
    never reach the optimizer and are not recorded, so they do not trigger this rule.

    ## Fix
    Lower the learning rate (÷10), clip gradients, and check the loss for ``log(0)``.

    ## Seed
    "在第一个 epoch 内进行初始的粗粒度搜索,因为很多不正确的超参数设置会导致模型不学习,或loss爆炸。"
    """

    code = "RL103"
    name = "non-finite-loss"
    severity = Severity.ERROR
    requires = ("steps.loss",)

    @dataclass
    class Options:
        columns: tuple[str, ...] = ("loss", "data_loss", "reg_loss")

    def check(self, run: Run) -> Iterator[Finding]:
        steps = run.steps
        for column in self.options.columns:
            if column not in steps.columns:
                continue
            values = steps[column].to_numpy(dtype=float)
            bad = ~np.isfinite(values)
            if not bad.any():
                continue
            first = int(steps.index[np.argmax(bad)])
            yield self.finding(
                run,
                f"{column} is {values[np.argmax(bad)]} from step {first} "
                f"({int(bad.sum())} of {len(values)} steps non-finite)",
                "lower the learning rate ×0.1 and clip gradients (torch.nn.utils.clip_grad_norm_)",
                steps=(first, int(steps.index[-1])),
                where=column,
                evidence={"first_step": first, "non_finite_steps": int(bad.sum())},
            )
