"""RL601 adam-settings-off."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run
from runlint.schema.meta import as_number

_ADAM = {"Adam", "AdamW", "NAdam", "RAdam", "Adamax", "SparseAdam", "FusedAdam"}


class AdamSettingsOff(Rule):
    """Adam's eps or betas are far from the values the method relies on (1e-8, 0.9, 0.999).

    Flags, per param group: ``eps`` above ``max_eps`` (the denominator √v + eps is then
    dominated by eps and Adam degenerates into plain SGD with a step lr/eps), ``beta1``
    outside [``min_beta1``, ``max_beta1``] (no gradient smoothing, or momentum so long it
    overshoots), ``beta2`` below ``min_beta2`` (a second-moment estimate over a handful of
    steps: erratic per-parameter steps) or ``beta2`` ≥ 1.

    ## Why it matters
    Adam's adaptive step only works when eps is negligible next to √v and the moment
    averages span enough steps; far-off values silently turn it into another optimizer.

    ## Known problems
    - Some recipes use eps 1e-6 (BERT), beta2 0.95–0.98 (large transformers) or beta1 0.5
      (GANs); the defaults leave room for them.
    - Only the settings at the start of the run are read (``meta.optimizer``).

    ## Fix
    Use eps=1e-8 and betas=(0.9, 0.999), torch's defaults, unless a recipe says otherwise.

    ## Seed
    "Adam:引入动量(摩擦力),对原始梯度平滑处理。eps = 1e-8, beta1 = 0.9, beta2 = 0.999"
    """

    code = "RL601"
    name = "adam-settings-off"
    severity = Severity.WARNING
    requires = ("meta.optimizer",)

    @dataclass
    class Options(Rule.Options):
        max_eps: float = option(1e-4, "Adam's eps above this: it swamps the second-moment estimate")
        min_beta1: float = option(0.5, "beta1 below this: too little momentum")
        max_beta1: float = option(
            0.99, "beta1 above this: the momentum barely follows the gradient"
        )
        min_beta2: float = option(0.9, "beta2 below this: a noisy second-moment estimate")

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        optimizer = run.setup.optimizer
        if optimizer is None or optimizer.cls not in _ADAM:
            return
        name = optimizer.cls
        problems: list[str] = []
        evidence: dict[str, Any] = {}
        for i, group in enumerate(optimizer.settings):
            eps = as_number(group.get("eps"))
            betas = group.get("betas")
            if not isinstance(betas, list | tuple):
                betas = (group.get("beta1"), group.get("beta2"))
            beta1 = as_number(betas[0]) if len(betas) > 0 else None
            beta2 = as_number(betas[1]) if len(betas) > 1 else None
            where = f"group {i}: " if len(optimizer.groups) > 1 else ""
            if eps is not None and eps > opts.max_eps:
                problems.append(f"{where}eps {eps:g} (expected ~1e-8; above {opts.max_eps:g})")
            if beta1 is not None and not opts.min_beta1 <= beta1 <= opts.max_beta1:
                problems.append(
                    f"{where}beta1 {beta1:g} (expected ~0.9; outside "
                    f"{opts.min_beta1:g}–{opts.max_beta1:g})"
                )
            if beta2 is not None and (beta2 < opts.min_beta2 or beta2 >= 1.0):
                problems.append(f"{where}beta2 {beta2:g} (expected ~0.999)")
            evidence[f"group{i}"] = {"eps": eps, "beta1": beta1, "beta2": beta2}
        if problems:
            yield self.finding(
                run,
                f"{name} runs with " + "; ".join(problems),
                where="optimizer",
                evidence=evidence,
            )
