"""RL404 frozen-parameters."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from runlint.analysis.expected import init_scales
from runlint.analysis.layers import param_table, params_long
from runlint.analysis.wording import fmt, names
from runlint.check import Finding, Rule, Severity, any_of, option
from runlint.run import Run

#: Weights with fewer values are not judged for a fresh init: their sample std is too noisy.
_JUDGED_SIZE = 256
#: A fresh init is centred: its mean is within this × its std of zero.
_FRESH_MEAN = 0.1


class FrozenParameters(Rule):
    """A parameter never changes: left out of the optimizer, requires_grad off, or no gradient.

    ## Why it matters
    The seed's babysitting checks assume every weight learns: "参数 更新的幅度 和 大小 的比例 …
    一般是 1e-3". A layer whose update ratio is exactly 0 keeps its random initialization for
    the whole run; the rest of the network works around it and the run looks merely mediocre.
    The usual causes are a parameter list built by hand for the optimizer that misses a layer,
    ``requires_grad_(False)`` left on after an experiment, or a module that is never used in
    ``forward``.

    Three sources, strongest first:

    - ``meta.params``: ``trainable`` but not ``in_optimizer`` — the optimizer never sees it
      (``error``, certain). When no trainable parameter is in it, one finding says so: the
      optimizer was built over another model (or a copy), not a layer left out.
    - ``meta.params``: ``trainable`` is false (``requires_grad=False``) — ``warning``, unless
      it is declared frozen on purpose (see below).
    - ``params``: the update norm is exactly 0 at every recorded step although the parameter is
      trainable and in the optimizer (``warning``; the gradient is missing or always zero).

    ## Known problems
    Freezing is sometimes deliberate (fine-tuning a pre-trained backbone). Declare it with
    ``meta={"frozen": ["backbone"]}`` (name prefixes, or ``True`` for every parameter) and those
    parameters are not reported. Undeclared, a frozen *input-side prefix* holding at least
    ``backbone_fraction`` of the parameters and ``backbone_layers`` layers is read as a frozen
    backbone and reported as ``info`` — unless every frozen weight matrix still has the
    std of a fresh fan-in-based init (PyTorch's default 1/√(3·fan_in), He, LeCun or Xavier,
    within ``fresh_tolerance``): a backbone frozen at its random initialization is no
    pre-trained feature extractor but random features, a ``warning``. Any other frozen
    parameter (a head, a middle layer, a single first layer trained from scratch) is a
    ``warning``. Updates are sampled every ``stats_every`` steps, so a parameter updated
    only between samples looks frozen.

    ## Fix
    Build the optimizer from ``model.parameters()`` (or every param group), switch
    ``requires_grad`` back on, or remove the unused module.

    ## Seed
    "Ratio of weights:updates — 参数 更新的幅度 和 大小 的比例:学习率 * 参数梯度 / 参数大小。
    一般是 1e-3,反应学习率大小。"
    """

    code = "RL404"
    name = "frozen-parameters"
    severity = Severity.WARNING
    requires = (any_of("meta.params", "params.update_norm"),)
    explained_by = ("RL402", "RL503")

    @dataclass
    class Options(Rule.Options):
        backbone_fraction: float = option(
            0.5, "share of parameters a frozen input-side prefix needs"
        )
        backbone_layers: int = option(2, "and at least this many layers, to read as a backbone")
        min_samples: int = option(3, 'recorded steps needed before "never changed" is judged')
        fresh_tolerance: float = option(0.03, "init std within this of a fan-in scale: random init")

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        table = param_table(run)
        if table.empty:
            return
        declared = _declared(run, table.index)
        steps = _steps(run)
        trainable = table["trainable"].to_numpy(dtype=bool)
        undeclared = ~declared.to_numpy(dtype=bool)
        outside = trainable & ~table["in_optimizer"].to_numpy(dtype=bool) & undeclared
        if outside.any():
            yield from self._not_in_optimizer(
                run, table[outside], steps, whole=bool(outside.sum() == trainable.sum())
            )
        frozen = ~trainable & undeclared
        if frozen.any():
            yield from self._frozen(run, table, frozen, steps)
        yield from self._never_updated(run, table, declared, steps)

    def _not_in_optimizer(
        self, run: Run, rows: pd.DataFrame, steps: tuple[int, int] | None, *, whole: bool
    ) -> Iterator[Finding]:
        """Trainable parameters in no param group (``error``): one finding when that is every
        trainable parameter (the optimizer holds another model's), else one per layer."""
        groups = [("", rows)] if whole else rows.groupby("layer", sort=False)
        for layer, part in groups:
            if whole:
                message = (
                    f"none of the model's {len(part)} trainable parameters ({_count(part)} "
                    "values) is in the optimizer's param groups: the optimizer updates other "
                    "tensors (another model, or a copy of this one) and this model keeps its "
                    "initial values"
                )
                fix = (
                    "build the optimizer from the parameters of the model that is trained: "
                    "torch.optim.SGD(model.parameters(), ...) after the model is created, moved "
                    "or copied, not from another instance"
                )
                cause = "optimizer of other tensors"
            else:
                message = (
                    f"{names(part.index)} of layer {str(layer) or '<root>'} "
                    f"({_count(part)} values) require grad but are in no optimizer param group: "
                    "they keep their initial values"
                )
                fix = (
                    "pass every parameter to the optimizer, e.g. "
                    "torch.optim.SGD(model.parameters(), ...), or add a param group for this "
                    "layer"
                )
                cause = "not in optimizer"
            yield self.finding(
                run,
                message,
                fix,
                severity=Severity.ERROR,
                steps=steps,
                where=str(part.index[0]),
                evidence={"params": list(part.index), "cause": cause},
            )

    def _frozen(
        self, run: Run, table: pd.DataFrame, frozen: np.ndarray, steps: tuple[int, int] | None
    ) -> Iterator[Finding]:
        rows = table[frozen]
        first_trained = int(np.argmin(frozen)) if not frozen.all() else len(frozen)
        prefix = bool(frozen[:first_trained].all() and not frozen[first_trained:].any())
        numel = pd.to_numeric(table["numel"], errors="coerce").fillna(1.0)
        share = float(numel[frozen].sum() / max(numel.sum(), 1.0))
        layers = rows["layer"].nunique()
        backbone = (
            prefix
            and first_trained < len(frozen)
            and share >= self.options.backbone_fraction
            and layers >= self.options.backbone_layers
        )
        fresh = (
            _fresh_init(run, list(rows.index), self.options.fresh_tolerance) if backbone else None
        )
        if backbone and fresh is not None:
            name, std, scale = fresh
            yield self.finding(
                run,
                f"the first {layers} layers ({fmt(100 * share)}% of the parameters, "
                f"{names(rows.index)}) have requires_grad=False and still hold a fresh random "
                f"init ({name} has std {fmt(std)}, the {scale}): a frozen backbone that was "
                "never pre-trained is random features, not a feature extractor",
                "call requires_grad_(True) on them, or load the pre-trained weights before "
                'freezing (and declare the freeze: meta={"frozen": ["<prefix>"]})',
                steps=steps,
                where=str(rows.index[0]),
                evidence={
                    "params": list(rows.index),
                    "share": share,
                    "cause": "random-init backbone",
                },
            )
            return
        if backbone:
            yield self.finding(
                run,
                f"the first {layers} layers ({fmt(100 * share)}% of the parameters, "
                f"{names(rows.index)}) have requires_grad=False: read as a frozen backbone",
                'if intended, declare it: runlint.record(..., meta={"frozen": ["<prefix>"]}); '
                "otherwise call requires_grad_(True) on them",
                severity=Severity.INFO,
                steps=steps,
                where=str(rows.index[0]),
                evidence={"params": list(rows.index), "share": share, "cause": "backbone"},
            )
            return
        for layer, group in rows.groupby("layer", sort=False):
            yield self.finding(
                run,
                f"{names(group.index)} of layer {str(layer) or '<root>'} ({_count(group)} values) "
                "have requires_grad=False: they never learn",
                "call requires_grad_(True) on them (or declare the freeze: "
                'meta={"frozen": ["<prefix>"]})',
                steps=steps,
                where=str(group.index[0]),
                evidence={"params": list(group.index), "cause": "requires_grad off"},
            )

    def _never_updated(
        self, run: Run, table: pd.DataFrame, declared: pd.Series, steps: tuple[int, int] | None
    ) -> Iterator[Finding]:
        if not run.has("params.update_norm"):
            return
        long = params_long(run)
        n_steps = len(long.steps()[0])
        if n_steps < self.options.min_samples:
            return
        upd = np.abs(long.col("update_norm"))
        peak = long.reduce(np.where(np.isnan(upd), np.inf, upd), "max")
        if not bool((peak.to_numpy() == 0).any()):  # every parameter moved at some step
            return
        grad_peak = long.reduce(np.abs(long.col("grad_norm")), "max")
        watched = table[table["trainable"] & table["in_optimizer"] & ~declared].index
        # a non-zero gradient with a zero update is float32 underflow (RL402), not a freeze,
        # unless the parameter's group has a zero learning rate
        zero_lr = _zero_lr_groups(run)
        group_of = table["group"].reindex(peak.index)
        no_grad = grad_peak.reindex(peak.index).fillna(0.0) == 0
        still = peak[(peak == 0) & peak.index.isin(watched) & (no_grad | group_of.isin(zero_lr))]
        if still.empty:
            return
        rows = table.loc[table.index.intersection(still.index)]
        for layer, group in rows.groupby("layer", sort=False):
            missing = bool(grad_peak.reindex(group.index).isna().all())
            cause = (
                "never receive a gradient (not used in forward?)"
                if missing
                else "get a gradient of exactly 0 or a zero learning rate"
            )
            yield self.finding(
                run,
                f"{names(group.index)} of layer {str(layer) or '<root>'} changed by exactly 0 "
                f"at all {n_steps} recorded steps: they {cause}",
                "check that the layer is used in forward and its param group's lr is > 0; "
                "a gradient of exactly 0 upstream of dead ReLUs also does this (see RL503)",
                steps=steps,
                where=str(group.index[0]),
                evidence={"params": list(group.index), "cause": "never updated"},
            )


def _declared(run: Run, index: pd.Index) -> pd.Series:
    """Parameters the user declared frozen on purpose via ``meta["frozen"]``."""
    return pd.Series([run.setup.is_frozen(str(n)) for n in index], index=index, dtype=bool)


def _fresh_init(run: Run, frozen: list[str], tolerance: float) -> tuple[str, float, str] | None:
    """``(name, std, scale)`` when every frozen weight matrix has a fresh fan-in init's std.

    Weights of at least ``_JUDGED_SIZE`` values are judged (a sample std is then within ~2 %
    of the distribution's); the scales are PyTorch's default, He, LeCun and Xavier
    (``runlint.analysis.expected``). None when a frozen weight matches none of them
    (pre-trained) or none is judged.
    """
    wanted = set(frozen)
    found: tuple[str, float, str] | None = None
    for p in run.setup.params:
        if p.name not in wanted:
            continue
        scales = init_scales(p)
        std, mean = p.init_std, p.init_mean or 0.0
        if scales is None or std is None or std <= 0:
            continue
        if math.prod(p.shape or ()) < _JUDGED_SIZE:
            continue
        match = next(
            (k for k, v in scales.named().items() if abs(std / v - 1.0) <= tolerance), None
        )
        if match is None or abs(mean) > _FRESH_MEAN * std:
            return None
        found = found or (p.name, std, match)
    return found


def _zero_lr_groups(run: Run) -> list[int]:
    """Param groups whose learning rate is 0 at every recorded step."""
    groups = run.groups
    if groups.empty or "lr" not in groups.columns or "group" not in groups.columns:
        return []
    peak = groups.groupby("group")["lr"].max()
    return [int(g) for g in peak.index[peak == 0]]


def _count(rows: pd.DataFrame) -> str:
    numel = pd.to_numeric(rows["numel"], errors="coerce")
    return str(int(numel.sum())) if numel.notna().all() else "?"


def _steps(run: Run) -> tuple[int, int] | None:
    long = params_long(run)
    return None if long.empty else long.steps_in()
