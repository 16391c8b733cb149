"""RL203 noisy-loss."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from runlint import curves
from runlint.rule import Finding, Rule, Severity
from runlint.run import Run


class NoisyLoss(Rule):
    """The loss oscillates around its trend by a large fraction of its level.

    The noise is the mean absolute deviation of the loss from a centered EMA trend, divided by
    the trend, over the last 80 % of the run (the trend is floored at 10 % of the initial loss
    so a loss near zero does not inflate it). The batch size (``meta.batch_size``) decides the
    fix.

    ## Why it matters
    The wiggle of the loss comes from the batch: the smaller the batch, the noisier each
    gradient step. Too much noise hides the trend and keeps the parameters from settling.

    ## Known problems
    - Losses with many exact zeros per sample (hinge, small data sets near zero loss) are
      noisier by nature; raise ``max_noise`` for them.
    - Dropout and heavy augmentation add noise on purpose.

    ## Fix
    Raise the batch size (×4 to halve the noise), or lower the learning rate.

    ## Seed
    "loss 的震荡和 batch size 有关,越小震荡幅度越大,当 batch size 是整个数据集时,理论最小"
    and "右图:看似合理的学习率,(...且 batch size 小了,因为噪声较多,震荡较大。)"
    """

    code = "RL203"
    name = "noisy-loss"
    severity = Severity.WARNING
    requires = ("steps.loss",)

    @dataclass
    class Options(Rule.Options):
        max_noise: float = 0.35  # mean |loss − trend| / trend
        small_batch: int = 16  # below this the fix is to raise the batch size
        min_steps: int = 50

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        curve = curves.prepare(run.steps)
        if curve is None or len(curve.values) < opts.min_steps:
            return
        noise = curve.relative_noise()
        if not noise > opts.max_noise:
            return
        batch = run.meta.get("batch_size")
        a = int(curve.steps[int(0.2 * len(curve.steps))])
        b = int(curve.steps[-1])
        if isinstance(batch, int) and batch < opts.small_batch:
            about = f" with batch size {batch}"
            fix = f"raise the batch size (e.g. {batch} → {max(32, batch * 16)}) or lower the lr"
        elif isinstance(batch, int):
            about = f" although the batch size is {batch}"
            fix = "lower the learning rate ×0.3 (the batch is not small), or raise the batch size"
        else:
            about = ""
            fix = "raise the batch size or lower the learning rate"
        yield self.finding(
            run,
            f"the loss oscillates by ±{noise:.0%} of its trend (mean deviation, steps {a}–{b}; "
            f"limit {opts.max_noise:.0%}){about}",
            fix,
            steps=(a, b),
            where="loss",
            evidence={"relative_noise": noise, "batch_size": batch},
        )
