"""RL703 first-layer-unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.analysis.layers import EMBEDDING, param_table
from runlint.analysis.wording import fmt
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run


class FirstLayerUnchanged(Rule):
    """The first layer's weights end the run where they started: its features are still noise.

    ## Why it matters
    The seed's "First-layer Visualizations": plotted first-layer features that look like noise
    mean the network has not converged, the learning rate is wrong, or regularization is too
    weak; clean, smooth features mean training went well. A first layer that is still its
    random initialization is the extreme case. The rule compares the first and last recorded
    snapshots of the first layer's weights (``weights`` table): relative change
    ‖W_end − W_start‖ / ‖W_start‖ below ``change`` means the features did not learn — the
    learning rate is far too low, the gradients vanish before reaching the input, or the layer
    is frozen.

    ## Known problems
    Judges only the (up to 64 × 1024) snapshotted values of the first Linear/Conv layer.
    Embeddings are skipped (rows of rare tokens barely move by design), and so is a first layer
    with ``requires_grad=False`` (RL404's finding) or declared frozen. A pre-trained first
    layer fine-tuned with a tiny learning rate changes little on purpose: lower ``change``.
    Spatial smoothness of small (3×3) filters is not judged: it says little at that size.

    ## Fix
    Raise the learning rate (see RL401), fix vanishing gradients toward the input (ReLU and He
    init, BatchNorm; see RL402), or unfreeze the layer.

    ## Seed
    "First-layer Visualizations — 处理图像时,绘制第一层特征。左:特征为噪声,可能网络没收敛,
    学习率设置不当,权重正则化惩罚非常低。右:清楚的特征,训练很好。"
    """

    code = "RL703"
    name = "first-layer-unchanged"
    severity = Severity.WARNING
    requires = ("weights",)
    whole_run = True
    explained_by = ("RL104", "RL201", "RL206", "RL401", "RL402", "RL404", "RL502", "RL503")

    @dataclass
    class Options(Rule.Options):
        change: float = option(0.01, "relative change of the first layer's weights below this")
        min_steps: int = option(100, "steps between the first and last snapshot needed")

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        o = self.options
        weights = run.weights
        if "values" not in weights.columns or "param" not in weights.columns:
            return
        name = str(weights["param"].iloc[0])
        snaps = weights[weights["param"] == name]
        steps = snaps["step"].to_numpy()
        first, last = int(np.argmin(steps)), int(np.argmax(steps))
        if steps[last] - steps[first] < o.min_steps:
            return
        table = param_table(run)
        if name in table.index:
            row = table.loc[name]
            if row["kind"] == EMBEDDING or not row["trainable"] or not row["in_optimizer"]:
                return
        if run.setup.is_frozen(name):
            return
        start = np.asarray(snaps["values"].iloc[first], dtype=float).ravel()
        end = np.asarray(snaps["values"].iloc[last], dtype=float).ravel()
        if start.shape != end.shape or not (np.isfinite(start).all() and np.isfinite(end).all()):
            return
        scale = float(np.linalg.norm(start))
        if scale == 0:
            return
        change = float(np.linalg.norm(end - start)) / scale
        if change >= o.change:
            return
        span = (int(steps[first]), int(steps[last]))
        yield self.finding(
            run,
            f"first-layer weights {name} changed by {fmt(100 * change)}% (‖ΔW‖/‖W‖) between "
            f"steps {span[0]} and {span[1]}: its features are still the random initialization",
            steps=span,
            where=name,
            evidence={"relative_change": change},
        )
