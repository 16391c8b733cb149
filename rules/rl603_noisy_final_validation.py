"""RL603 noisy-final-validation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.analysis import curves
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run


class NoisyFinalValidation(Rule):
    """The validation loss still jumps around over the last epochs: average the weights.

    Over the last ``max(min_epochs, last_fraction × epochs)`` epochs the rule fits a line to
    ``val_loss`` and measures the std of the residual. It reports (as advice) when that std is
    above ``min_noise`` of the run's total improvement of the validation loss and above
    ``min_level`` of the loss level: the model ends bouncing around a minimum.

    ## Why it matters
    When the parameters bounce around the bottom of the bowl, the average of the last
    iterates lies closer to the minimum than any one of them: an exponential moving average of
    the weights (or SWA) typically gains 1–2 points for free.

    ## Known problems
    - A small validation set makes ``val_loss`` noisy without the weights bouncing.
    - A learning rate that is too high also makes the end noisy; RL202 reports that.

    ## Fix
    Evaluate an exponential moving average of the weights
    (``torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999))``),
    or decay the learning rate further at the end.

    ## Seed
    "Running average of parameters during training. 一种低成本提升1-2个点性能的方式:把网络权重copy
    下来,其中包含训练时权重的指数衰减记录。取最后几个迭代,求权重的均值。"
    """

    code = "RL603"
    name = "noisy-final-validation"
    severity = Severity.INFO
    requires = ("epochs.val_loss",)
    whole_run = True
    explained_by = ("RL202",)

    @dataclass
    class Options(Rule.Options):
        min_epochs: int = option(5, "fewer epochs are not judged")
        last_fraction: float = option(0.3, "fraction of the epochs judged (the last ones)")
        min_noise: float = option(0.05, "residual std / (first val_loss − best val_loss)")
        min_level: float = option(0.02, "residual std / mean val_loss of the window")

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        epochs, val = curves.series(run.epochs, "val_loss")
        if val.size < opts.min_epochs + 3:
            return
        k = max(opts.min_epochs, int(opts.last_fraction * val.size))
        window = val[-k:]
        x = np.arange(k, dtype=float)
        slope, intercept = np.polyfit(x, window, 1)
        noise = float(np.std(window - (slope * x + intercept)))
        improvement = float(val[0] - val.min())
        level = float(np.mean(np.abs(window)))
        if improvement <= 0 or level <= 0:
            return
        if noise < opts.min_noise * improvement or noise < opts.min_level * level:
            return
        a, b = int(epochs[-k]), int(epochs[-1])
        yield self.finding(
            run,
            f"val_loss fluctuates by ±{noise:.3g} (±{noise / level:.0%} of its level "
            f"{level:.3g}) over the last {k} epochs ({a}–{b}) around its trend",
            where="val_loss",
            evidence={"noise": noise, "level": level, "improvement": improvement, "epochs": k},
        )
