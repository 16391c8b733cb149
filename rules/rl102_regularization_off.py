"""RL102 regularization-off."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from runlint.analysis import curves
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run
from runlint.schema.meta import OptimizerInfo

_DECOUPLED = {"AdamW", "SGDW", "Lion", "LAMB", "Lamb"}


class RegularizationOff(Rule):
    """The regularization term swamps the data loss, or adding it does not raise the loss.

    Uses the logged ``data_loss`` and ``reg_loss`` when present. Without them it estimates the
    L2 term that coupled weight decay adds, ``weight_decay / 2 × Σ‖θ‖²`` (parameter norms at
    step 0, per param group), and compares it with the initial loss. For decoupled weight decay
    (AdamW) it checks the shrink per step ``lr × weight_decay`` instead: weights that lose half
    their size within a hundred steps are dominated by the decay, not by the data.

    ## Why it matters
    When the L2 term outweighs the data loss the gradient comes mostly from the penalty: the
    weights are pulled to zero, the model underfits and errors in the data loss stay hidden.
    A logged regularization term that is 0 at init means the penalty is wired to no parameter.

    ## Known problems
    - A deliberately strong penalty (tiny data set, heavy shrinkage on purpose) is flagged.
    - The weight-decay estimate includes every parameter of a decayed group (biases too).
    - For the data-loss comparison the first recorded loss must be the step-0 loss.

    ## Fix
    Lower the regularization strength (÷10 at a time, searched on a log scale) until the L2
    term is a fraction of the data loss; make sure the penalty sums over the weight tensors.

    ## Seed
    "然后加上正则项,总损失应当增加。" and "Don't let the regularization overwhelm the data.
    如果 正则化loss 盖过了 data loss,梯度主要来自正则化,可能掩盖 data loss 的错误。"
    """

    code = "RL102"
    name = "regularization-off"
    severity = Severity.WARNING
    requires = ("steps.loss",)

    @dataclass
    class Options(Rule.Options):
        max_reg_fraction: float = option(
            1.0, "the regularization term over the data loss at step 0 above this: it swamps"
        )
        max_decay_per_step: float = option(
            5e-3,
            "weight decay's shrink per step (lr × weight_decay, SGD: ÷ (1 − momentum)) above this",
        )
        first_steps: int = option(5, "steps averaged for the initial values")

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        if run.has("steps.reg_loss"):
            yield from self._logged(run)
        else:
            yield from self._weight_decay(run)

    def _logged(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        steps = run.steps
        reg = steps["reg_loss"].to_numpy(dtype=float, na_value=np.nan)
        if "data_loss" in steps.columns:
            data = steps["data_loss"].to_numpy(dtype=float, na_value=np.nan)
        else:
            data = steps["loss"].to_numpy(dtype=float, na_value=np.nan) - reg
        head = slice(0, max(1, opts.first_steps))
        reg0 = float(np.nanmedian(reg[head])) if np.isfinite(reg[head]).any() else np.nan
        data0 = float(np.nanmedian(data[head])) if np.isfinite(data[head]).any() else np.nan
        first = int(steps.index[0])
        if not (np.isfinite(reg0) and np.isfinite(data0)):
            return
        evidence: dict[str, Any] = {"reg_loss": reg0, "data_loss": data0}
        if reg0 <= 0:
            yield self.finding(
                run,
                f"reg_loss is {reg0:.3g} at the start (data_loss {data0:.3g}): adding the "
                "regularization term does not raise the loss, so it penalizes no parameter",
                "make the L2 term sum over the weight tensors (e.g. p.dim() > 1) and check that "
                "the loss rises when it is added",
                steps=(first, first + len(reg[head]) - 1),
                where="reg_loss",
                evidence=evidence,
            )
        elif data0 > 0 and reg0 > opts.max_reg_fraction * data0:
            yield self.finding(
                run,
                f"reg_loss {reg0:.3g} is {reg0 / data0:.1f}× the data_loss {data0:.3g} at the "
                "start: the regularization swamps the data loss",
                f"lower the regularization strength ×{_tenfold(reg0 / data0)} so the L2 term "
                "is a fraction of the data loss",
                steps=(first, first + len(reg[head]) - 1),
                where="reg_loss",
                evidence=evidence,
            )

    def _weight_decay(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        groups = _group_table(run)
        if groups.empty or "weight_decay" not in groups.columns:
            return
        wd = groups["weight_decay"].to_numpy(dtype=float, na_value=0.0)
        if not (wd > 0).any():
            return
        settings = run.setup.optimizer or OptimizerInfo("", {}, ())
        optimizer = settings.cls
        decoupled = bool(settings.defaults.get("decoupled_weight_decay"))
        if optimizer in _DECOUPLED or decoupled:
            lr = groups["lr"].to_numpy(dtype=float, na_value=0.0) if "lr" in groups else wd * 0
            shrink = lr * wd
            worst = int(np.argmax(shrink))
            if shrink[worst] > opts.max_decay_per_step:
                half_life = np.log(2) / shrink[worst]
                yield self.finding(
                    run,
                    f"{optimizer} weight_decay {wd[worst]:.3g} at lr {lr[worst]:.3g} shrinks "
                    f"the weights by {shrink[worst]:.2%} per step (half-life {half_life:.0f} "
                    "steps): the decay dominates the data gradient",
                    f"lower weight_decay ×{_tenfold(shrink[worst] / opts.max_decay_per_step)}"
                    " (0.01–0.1 is usual for AdamW)",
                    where=f"param group {int(groups.index[worst])}",
                    evidence={"weight_decay": float(wd[worst]), "lr": float(lr[worst])},
                )
            return
        if optimizer == "SGD":
            yield from self._sgd_decay(run, groups, settings)
            return
        term = _l2_term(run, groups)
        if term is None:
            return
        _, loss = curves.series(run.steps, "loss")
        if loss.size == 0:
            return
        loss0 = float(np.median(loss[: max(1, opts.first_steps)]))
        data0 = loss0  # coupled weight decay is not part of the logged loss
        if data0 > 0 and term > opts.max_reg_fraction * data0:
            yield self.finding(
                run,
                f"weight_decay {float(wd.max()):.3g} adds an L2 term ½·wd·Σ‖θ‖² ≈ {term:.3g} "
                f"at init, {term / data0:.1f}× the initial loss {data0:.3g}: the "
                "regularization swamps the data loss",
                f"lower weight_decay ×{_tenfold(term / data0)} (1e-4–5e-4 is usual for SGD)",
                steps=(int(run.steps.index[0]), int(run.steps.index[0])),
                where="weight_decay",
                evidence={"l2_term": term, "initial_loss": data0, "weight_decay": float(wd.max())},
            )

    def _sgd_decay(
        self, run: Run, groups: pd.DataFrame, settings: OptimizerInfo
    ) -> Iterator[Finding]:
        """SGD's coupled weight decay: the shrink per step, ``lr × wd / (1 − momentum)``.

        The L2 term of a big network at init is large whatever the decay (a CIFAR ResNet at
        wd 5e-4 has one near ln 10), so its size says little; what the decay does per step
        does: with momentum μ its pull adds up to lr·wd/(1 − μ) of every weight per step.
        """
        opts = self.options
        wd = groups["weight_decay"].to_numpy(dtype=float, na_value=0.0)
        lr = _peak_lrs(run, groups)
        momentum = _momenta(settings, len(groups))
        shrink = lr * wd / np.maximum(1.0 - momentum, 1e-2)
        worst = int(np.argmax(shrink))
        if not shrink[worst] > opts.max_decay_per_step:
            return
        half_life = np.log(2) / shrink[worst]
        term = _l2_term(run, groups)
        _, loss = curves.series(run.steps, "loss")
        l2 = ""
        if term is not None and loss.size and loss[0] > 0:
            l2 = f"; its L2 term ½·wd·Σ‖θ‖² ≈ {term:.3g} is {term / loss[0]:.1f}× the initial loss"
        yield self.finding(
            run,
            f"SGD weight_decay {wd[worst]:.3g} at lr {lr[worst]:.3g} with momentum "
            f"{momentum[worst]:g} shrinks the weights by {min(shrink[worst], 1.0):.2%} per step "
            f"(half-life {half_life:.0f} steps){l2}: the decay swamps the data gradient",
            f"lower weight_decay ×{_tenfold(shrink[worst] / opts.max_decay_per_step)} "
            "(1e-4–5e-4 is usual for SGD; no reg_loss is logged, so the penalty is invisible "
            "in the loss)",
            steps=(int(run.steps.index[0]), int(run.steps.index[0])),
            where=f"param group {int(groups.index[worst])}",
            evidence={
                "weight_decay": float(wd[worst]),
                "lr": float(lr[worst]),
                "momentum": float(momentum[worst]),
                "shrink_per_step": float(shrink[worst]),
                "l2_term": term,
            },
        )


def _peak_lrs(run: Run, groups: pd.DataFrame) -> np.ndarray:
    """Per param group, the largest lr recorded (past any warm-up), else the first one."""
    first = (
        groups["lr"].to_numpy(dtype=float, na_value=0.0)
        if "lr" in groups
        else np.zeros(len(groups))
    )
    table = run.groups
    if not table.empty and {"group", "lr"} <= set(table.columns):
        peak = table.groupby("group")["lr"].max()
        return np.array(
            [max(float(peak.get(g, 0.0)), f) for g, f in zip(groups.index, first, strict=True)]
        )
    if "lr" in run.steps.columns and len(groups) == 1:
        lr = run.steps["lr"].to_numpy(dtype=float, na_value=np.nan)
        if np.isfinite(lr).any():
            return np.array([max(float(np.nanmax(lr)), float(first[0]))])
    return first


def _momenta(settings: OptimizerInfo, n: int) -> np.ndarray:
    """Per param group, SGD's momentum (0 when not recorded)."""
    meta_groups = settings.groups
    default = float(settings.defaults.get("momentum") or 0.0)
    values = [
        float(g["momentum"]) if g.get("momentum") is not None else default for g in meta_groups
    ][:n]
    values += [default] * (n - len(values))
    return np.array(values, dtype=float)


def _group_table(run: Run) -> pd.DataFrame:
    """Per param group: the first recorded ``lr`` and ``weight_decay`` (index: group)."""
    groups = run.groups
    if not groups.empty and {"group", "weight_decay"} <= set(groups.columns):
        frame = groups.reset_index() if "step" not in groups.columns else groups
        at_start = frame[frame["step"].to_numpy() == frame["step"].min()]
        return at_start.drop_duplicates("group").set_index("group")
    optimizer = run.setup.optimizer
    meta_groups = optimizer.groups if optimizer is not None else ()
    rows = [
        {"group": i, "lr": g.get("lr"), "weight_decay": g.get("weight_decay")}
        for i, g in enumerate(meta_groups)
    ]
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).set_index("group").astype(float)


def _l2_term(run: Run, groups: pd.DataFrame) -> float | None:
    """½ Σ_groups wd_g Σ_{θ in g} ‖θ‖² at init, from ``meta.params`` or the params table."""
    infos = run.setup.params
    group_of = {p.name: p.group for p in infos}
    wd_of = groups["weight_decay"].to_dict()
    sq: dict[str, float] = {}
    params = run.params
    if not params.empty and {"param", "param_norm"} <= set(params.columns):
        first_step = params["step"].min()
        at0 = params[params["step"] == first_step]
        sq = dict(
            zip(at0["param"].astype(str), at0["param_norm"].to_numpy(dtype=float) ** 2, strict=True)
        )
    else:
        for p in infos:
            if p.init_std is not None and p.numel:
                mean = p.init_mean or 0.0
                sq[p.name] = float(p.numel) * (p.init_std**2 + mean**2)
    if not sq:
        return None
    total = 0.0
    for name, value in sq.items():
        group = group_of.get(name, 0)
        if group is None:
            continue
        total += 0.5 * float(wd_of.get(group, 0.0) or 0.0) * value
    return total


def _tenfold(ratio: float) -> str:
    """A round divisor that brings ``ratio`` below 1 (as "0.1", "0.01", ...)."""
    power = int(np.ceil(np.log10(max(ratio, 1.0)) + 1e-9))
    return f"{10.0 ** -max(power, 1):g}"
