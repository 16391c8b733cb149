"""RL702 batchnorm-after-activation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from runlint.analysis.wording import names
from runlint.check import Finding, Rule, Severity
from runlint.run import Run


class BatchNormAfterActivation(Rule):
    """BatchNorm placed after the nonlinearity instead of between the linear layer and it.

    ## Why it matters
    The seed places BatchNorm "在全连接层后,非线性层前": it normalizes the pre-activations so
    the nonlinearity sees zero-mean, unit-variance inputs — no saturated tanh, no dead ReLU
    at the start. After the nonlinearity it normalizes outputs that were already cut or
    squashed, and the layer in front still feeds the nonlinearity unnormalized values.

    The rule reads the model's leaf modules in definition order (``meta.modules``) and reports
    every ``Linear/Conv → activation → BatchNorm`` triple. ``info``: both orders train, the
    seed's is the conventional one.

    ## Known problems
    Definition order is execution order for ``nn.Sequential`` but not necessarily for a custom
    ``forward``; a model that defines its modules in another order than it calls them can be
    misread. Pre-activation residual blocks (BN → ReLU → Conv) are not matched.

    ## Fix
    Reorder to Linear → BatchNorm → activation (``Conv2d → BatchNorm2d → ReLU``) and drop the
    linear layer's bias (BatchNorm's shift replaces it).

    ## Seed
    "BatchNorm:在全连接层后,非线性层前。可以看做是在网络每一层进行预处理。"
    """

    code = "RL702"
    name = "batchnorm-after-activation"
    severity = Severity.INFO
    requires = ("meta.modules",)

    @dataclass
    class Options(Rule.Options):
        pass

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        mods = run.setup.modules
        hits: list[str] = []
        for before, act, norm in zip(mods, mods[1:], mods[2:], strict=False):
            kind = before.type
            if (
                (kind.endswith("Linear") or kind.startswith("Conv"))
                and act.activation
                and norm.type.startswith("BatchNorm")
            ):
                hits.append(norm.name)
        if not hits:
            return
        yield self.finding(
            run,
            f"{len(hits)} BatchNorm layer{'s' if len(hits) > 1 else ''} ({names(hits)}) "
            "follow the nonlinearity: Linear/Conv → activation → BatchNorm",
            where=hits[0],
            evidence={"modules": hits},
        )
