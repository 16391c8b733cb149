"""RL602 momentum-off."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run
from runlint.schema.meta import as_number


class MomentumOff(Rule):
    """SGD's momentum is outside the seed's 0.5–0.99 range, or absent on a long run.

    - momentum ≥ 1: the velocity never decays and the run diverges (error);
    - momentum above ``max_momentum``: the velocity carries over so many steps that the
      parameters overshoot and oscillate (warning);
    - 0 < momentum < ``min_momentum``: little gain over plain SGD (info);
    - no momentum on a run of at least ``long_run`` steps: plain SGD converges slower (info).

    ## Why it matters
    Momentum lets the parameters build up speed along directions with consistent gradients
    and damps the zig-zag across a ravine; 0.9 is the usual value, annealed up to 0.99.

    ## Known problems
    - Only ``torch.optim.SGD`` is judged (Adam's beta1 is RL601's job).
    - Plain SGD is a legitimate choice for convex problems and for studying optimization.

    ## Fix
    Use ``SGD(..., momentum=0.9, nesterov=True)``.

    ## Seed
    "交叉验证时,mu 一般为[0.5, 0.9, 0.95, 0.99],和学习率衰减类似,摩擦系数在学习后期会增加,在多个
    epoch 内从 0.5 到 0.99." and "两个推荐优化器:Adam,SGD + Nesterov Momentum。"
    """

    code = "RL602"
    name = "momentum-off"
    severity = Severity.WARNING
    requires = ("meta.optimizer",)

    @dataclass
    class Options(Rule.Options):
        min_momentum: float = option(0.5, "SGD momentum below this (but above 0): too little")
        max_momentum: float = option(0.99, "SGD momentum above this: the velocity never forgets")
        long_run: int = option(2000, "steps from which plain SGD without momentum is reported")

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        optimizer = run.setup.optimizer
        if optimizer is None or optimizer.cls != "SGD":
            return
        values = [as_number(g.get("momentum")) or 0.0 for g in optimizer.settings]
        if "momentum" in run.steps.columns:  # a scheduler may change it (OneCycle)
            recorded = run.steps["momentum"].to_numpy(dtype=float, na_value=np.nan)
            if np.isfinite(recorded).any():
                values.append(float(np.nanmax(recorded)))
        if not values:
            return
        top = max(values)
        n_steps = len(run.steps)
        evidence = {"momentum": top, "steps": n_steps}
        if top >= 1.0:
            yield self.finding(
                run,
                f"SGD momentum is {top:g}: a velocity that never decays makes the run diverge",
                "use momentum 0.9 (at most 0.99)",
                severity=Severity.ERROR,
                where="optimizer",
                evidence=evidence,
            )
        elif top > opts.max_momentum:
            yield self.finding(
                run,
                f"SGD momentum is {top:g}, above {opts.max_momentum:g}: the parameters "
                "overshoot and oscillate",
                "use momentum 0.9 (anneal toward 0.99 late in training if at all)",
                where="optimizer",
                evidence=evidence,
            )
        elif 0 < top < opts.min_momentum:
            yield self.finding(
                run,
                f"SGD momentum is {top:g}, below the usual 0.5–0.99",
                "use momentum 0.9 (Nesterov)",
                severity=Severity.INFO,
                where="optimizer",
                evidence=evidence,
            )
        elif top == 0 and n_steps >= opts.long_run:
            yield self.finding(
                run,
                f"plain SGD without momentum for {n_steps} steps",
                "use SGD(..., momentum=0.9, nesterov=True): it converges faster at the same lr",
                severity=Severity.INFO,
                where="optimizer",
                evidence=evidence,
            )
