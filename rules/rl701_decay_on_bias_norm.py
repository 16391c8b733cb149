"""RL701 decay-on-bias-norm."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from runlint.analysis.layers import BIAS, EMBEDDING, NORM, param_table
from runlint.analysis.wording import fmt, names
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run
from runlint.schema.meta import as_number


class DecayOnBiasNorm(Rule):
    """Weight decay (L2) is applied to biases and normalization gains/shifts.

    ## Why it matters
    The seed's L2 regularization penalizes the squared *weights* to keep them small and
    spread out. Biases and the gain/shift of BatchNorm/LayerNorm do not multiply inputs and do
    not overfit the way weights do; decaying them pulls gains toward 0 and shifts toward 0,
    which fights normalization and costs accuracy for nothing. Common recipes put them in a
    second param group with ``weight_decay=0``.

    Read from the recorded metadata (``meta.params[*].group`` and the optimizer's param
    groups), so it holds whatever the dynamics look like. Reported as ``info``: many runs
    train fine with it.

    ## Known problems
    Decoupled weight decay (AdamW) with a small coefficient does little harm to biases; the
    finding is advice. Embeddings are not counted either way.

    ## Fix
    Put biases and norm parameters in a param group with weight_decay=0.0:
    ``{"params": weights, "weight_decay": wd}`` and
    ``{"params": biases_and_norms, "weight_decay": 0.0}``.

    ## Seed
    "L2 regularization (weight_decay): 对权重平方惩罚。分散,小权重。"
    """

    code = "RL701"
    name = "decay-on-bias-norm"
    severity = Severity.INFO
    requires = ("meta.params", "meta.optimizer")

    @dataclass
    class Options(Rule.Options):
        min_decay: float = option(0.0, "weight decay above this counts")

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        optimizer = run.setup.optimizer
        groups = optimizer.groups if optimizer is not None else ()
        settings = {i: as_number(g.get("weight_decay")) for i, g in enumerate(groups)}
        decay = {i: value for i, value in settings.items() if value is not None}
        table = param_table(run)
        if table.empty or not decay:
            return
        wd = table["group"].map(
            lambda g: decay.get(int(g), 0.0) if g == g and g is not None else 0.0
        )
        hit = table[
            table["kind"].isin([BIAS, NORM])
            & table["trainable"]
            & table["in_optimizer"]
            & (wd > self.options.min_decay)
        ]
        if hit.empty or (table["kind"] == EMBEDDING).all():
            return
        values = sorted({float(v) for v in wd[hit.index]})
        yield self.finding(
            run,
            f"weight decay {', '.join(fmt(v) for v in values)} applies to {len(hit)} bias and "
            f"normalization parameters ({names(hit.index)})",
            where=str(hit.index[0]),
            evidence={"params": list(hit.index), "weight_decay": values},
        )
