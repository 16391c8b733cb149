"""RL203 noisy-loss."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from runlint.analysis import curves
from runlint.analysis.curves import MIN_CURVE_POINTS
from runlint.analysis.layers import BATCH_NORMS
from runlint.analysis.wording import names
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run


class NoisyLoss(Rule):
    """The loss oscillates around its trend by a large fraction of its level.

    The noise is the mean absolute deviation of the loss from a centered EMA trend, divided by
    the trend, over the last 80 % of the run. The trend is floored at ``level_floor`` (30 %) of
    the initial loss: once a classifier is mostly right its per-example losses are mostly ≈ 0
    with a few large ones, and a batch mean of such a spread swings by ±50 % of a low trend
    at batch 16 in a perfectly healthy run. The batch size (``meta.batch_size``) decides the
    fix. The limit is ``max_noise`` for a batch below ``small_batch`` (or unknown) and
    ``max_noise_large_batch`` from ``small_batch`` on: healthy runs at batch 32 reach ±32 %
    late in training (a low loss has a heavy-tailed per-batch spread), and a large batch that
    bounces is a learning rate too high, RL202's finding. Noise is what small batches do:
    it is a ``warning`` only at a batch of at most ``tiny_batch``, where the run is clearly
    worse for it; at larger or unknown batch sizes it is advice (``info``).

    A second face, from the recorded model graph: BatchNorm layers (``BatchNorm1d/2d/3d``,
    ``SyncBatchNorm``) trained at a batch of at most ``tiny_batch``. Each normalizes over that
    few examples, so in training its statistics are noise (at batch 2 every feature becomes
    ±1 whatever the input), and the running statistics used at evaluation differ from what the
    model was trained on. That is a ``warning`` whatever the loss looks like.

    ## Why it matters
    The wiggle of the loss comes from the batch: the smaller the batch, the noisier each
    gradient step (the std of a batch mean falls as 1/√B). Too much noise hides the trend and
    keeps the parameters from settling.

    ## Known problems
    - Losses with many exact zeros per sample (hinge, small data sets near zero loss) are
      noisier by nature; raise ``max_noise`` for them.
    - Dropout and heavy augmentation add noise on purpose.
    - The BatchNorm face needs ``meta.batch_size`` to be the per-device batch that reaches
      the layer; BatchNorm layers kept in eval mode (frozen statistics) are flagged too, though
      their statistics are fixed: ignore RL203 for such runs.

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
        max_noise: float = option(
            0.35,
            "mean |loss − trend| / trend above this is noisy (batch below small-batch, or unknown)",
        )
        max_noise_large_batch: float = option(
            0.5, "... the limit at a known batch size of at least small-batch"
        )
        small_batch: int = option(16, "below this batch size the fix is to raise the batch size")
        tiny_batch: int = option(
            4, "noise at a batch size of at most this is a warning; otherwise it is advice (info)"
        )
        level_floor: float = option(0.3, "the trend is floored at this × the initial loss")
        min_steps: int = option(MIN_CURVE_POINTS, "fewer logged loss points are not judged")

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        batch = run.setup.batch_size
        norms = [m.name for m in run.setup.modules if m.type in BATCH_NORMS]
        if norms and isinstance(batch, int) and 0 < batch <= opts.tiny_batch:
            yield self.finding(
                run,
                f"{len(norms)} BatchNorm layer(s) ({names(norms)}) normalize over a batch of "
                f"{batch}: their batch statistics are noise, and the running statistics used "
                "at evaluation differ from what the model trained on",
                "raise the batch size (≥ 16 per device), or use GroupNorm/LayerNorm instead of "
                "BatchNorm",
                where=norms[0],
                evidence={"batch_size": batch, "batchnorm": norms},
            )
            return
        curve = curves.prepare(run)
        if curve is None or len(curve.values) < opts.min_steps:
            return
        noise = curve.relative_noise(floor=opts.level_floor)
        large = isinstance(batch, int) and batch >= opts.small_batch
        limit = opts.max_noise_large_batch if large else opts.max_noise
        if not noise > limit:
            return
        a = int(curve.steps[curve.judged()])
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
        # noise is what small batches do: only a tiny batch makes it a strong sign of a run
        # worse than it needs to be; else (or with the batch unknown) it is advice
        tiny = isinstance(batch, int) and batch <= opts.tiny_batch
        yield self.finding(
            run,
            f"the loss oscillates by ±{noise:.0%} of its trend (mean deviation, steps {a}–{b}; "
            f"limit {limit:.0%}){about}",
            fix,
            severity=self.severity if tiny else Severity.INFO,
            steps=(a, b),
            where="loss",
            evidence={"relative_noise": noise, "batch_size": batch},
        )
