"""RL103 non-finite-loss."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run


class NonFiniteLoss(Rule):
    """The loss or a logged metric became NaN or infinite.

    Every loss-like column (any name with ``loss`` in it, ``mean_loss``, ``eval_g1_loss``, ...)
    and the ``columns`` / ``epoch_columns`` named are checked. Only a value that was *logged*
    non-finite counts: a row where the column was not logged (sparse logs write each metric on
    its own rows) is missing, not NaN.

    ## Why it matters
    Once the loss is NaN every later update is NaN too: the run is dead from that step on.
    The seed ("Babysitting the learning process") warns that with too high a learning rate
    the loss "explodes"; a NaN is the end point of that, or of a numerical bug (log of 0,
    division by a zero norm).

    ## Known problems
    Mixed-precision runs with a ``GradScaler`` skip steps whose gradients overflow; those steps
    never reach the optimizer and are not recorded, so they do not trigger this rule.

    Metrics per epoch (``val_loss``, ``val_acc``, …) are checked too, unless the training loss
    is already reported.

    ## Fix
    Lower the learning rate (÷10), clip gradients, and check the loss for ``log(0)``
    (``log(softmax(x))`` instead of ``log_softmax``).

    ## Seed
    "在第一个 epoch 内进行初始的粗粒度搜索,因为很多不正确的超参数设置会导致模型不学习,或loss爆炸。"
    """

    code = "RL103"
    name = "non-finite-loss"
    severity = Severity.ERROR
    requires = ("steps",)  # not "steps.loss": a loss that is NaN from step 0 must still fire
    explained_by = ("RL202", "RL403", "RL602")

    @dataclass
    class Options(Rule.Options):
        columns: tuple[str, ...] = option(
            ("loss", "data_loss", "reg_loss"),
            "per-step columns checked for NaN/Inf (besides every column named *loss*)",
        )
        epoch_columns: tuple[str, ...] = option(
            ("train_loss", "val_loss", "train_acc", "val_acc"),
            "per-epoch columns checked, besides every *loss* column (when the per-step loss is "
            "finite)",
        )

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        found = False
        for column in _checked(run.steps.columns, self.options.columns):
            finding = self._column(run, "steps", column, "step")
            if finding is not None:
                found = True
                yield finding
        if found or run.epochs.empty:
            return  # a NaN training loss explains NaN epoch metrics: report it once
        for column in _checked(run.epochs.columns, self.options.epoch_columns):
            finding = self._column(run, "epochs", column, "epoch")
            if finding is not None:
                yield finding

    def _column(self, run: Run, table: str, column: str, unit: str) -> Finding | None:
        frame = run.steps if table == "steps" else run.epochs
        if column not in frame.columns:
            return None
        logged = run.logged(table, column)  # a value that was not logged is not a NaN
        values = frame[column].to_numpy(dtype=float, na_value=np.nan)[logged]
        index = frame.index.to_numpy()[logged]
        bad = ~np.isfinite(values)
        if not bad.any():
            return None
        at = int(np.argmax(bad))
        first = int(index[at])
        last_good = values[:at][np.isfinite(values[:at])]
        before = f"; last finite value {last_good[-1]:.4g}" if last_good.size else ""
        if unit == "epoch":
            steps = frame["step"].to_numpy()[logged] if "step" in frame.columns else None
            span = (int(steps[at]), int(steps[-1])) if steps is not None else None
        else:
            span = (first, int(index[-1]))
        return self.finding(
            run,
            f"{column} is {values[at]} from {unit} {first} ({int(bad.sum())} of {len(values)} "
            f"logged {unit}s non-finite{before})",
            "lower the learning rate ×0.1, clip gradients (torch.nn.utils.clip_grad_norm_) and "
            "use log_softmax / cross_entropy instead of log(softmax)",
            steps=span,
            where=column,
            evidence={f"first_{unit}": first, f"non_finite_{unit}s": int(bad.sum())},
        )


def _checked(present: Iterable[str], named: Iterable[str]) -> list[str]:
    """The columns to check: those named, then every other loss-like column (``mean_loss``,
    ``eval_g1_loss``, ...), in the view's order."""
    present = list(present)
    named = [c for c in named if c in present]
    return [*named, *(c for c in present if "loss" in c and c not in named)]
