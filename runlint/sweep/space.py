"""The searched space of a set of trials, its stages, and where a value sits in a range.

A hyperparameter is *searched* when it takes at least two values among the trials (a constant
is a setting, not a search). Its range is the one the tool declared (Optuna's distributions),
else the sampled minimum and maximum; its scale is the declared one, else the one its values
fit best (``scale_fit``: a log-uniform against a uniform density on the range, and how the
values fill the range's decades).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from runlint.sweep.model import Dimension, Kind, Stage, Trial

__all__ = ["ScaleFit", "build_space", "build_stages", "position", "scale_fit", "uses_log"]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _infer(name: str, values: Sequence[Any]) -> Dimension | None:
    """The dimension the sampled ``values`` show (``None`` when they do not vary)."""
    distinct = {repr(v) for v in values}
    if len(distinct) < 2:
        return None
    if all(_number(v) for v in values):
        nums = [float(v) for v in values]
        kind: Kind = "int" if all(isinstance(v, int) for v in values) else "float"
        return Dimension(name, kind, min(nums), max(nums))
    choices = tuple(sorted({v for v in values if v is not None}, key=repr))
    return Dimension(name, "categorical", choices=choices)


def build_space(trials: Sequence[Trial], only: Sequence[str] | None = None) -> dict[str, Dimension]:
    """The searched dimensions of ``trials`` (those ``only`` names, when given), by name.

    A declared distribution wins when every trial that has the parameter declares the same one
    (its range then is the declared one); a range changed between trials is widened to cover
    them all, marked declared only where all agree on the scale.
    """
    names: dict[str, None] = {}
    for t in trials:
        for key in t.params:
            names.setdefault(key)
    out: dict[str, Dimension] = {}
    for name in names:
        if only is not None and name not in only:
            continue
        values = [t.params[name] for t in trials if name in t.params]
        inferred = _infer(name, values)
        if inferred is None:
            continue
        declared = [t.distributions[name] for t in trials if name in t.distributions]
        if declared and len(declared) == len(values):
            first = declared[0]
            if all(d == first for d in declared):
                out[name] = first
                continue
            if all(d.kind == first.kind and d.log == first.log for d in declared):
                lows = [d.low for d in declared if d.low is not None]
                highs = [d.high for d in declared if d.high is not None]
                out[name] = replace(
                    first,
                    low=min(lows) if lows else inferred.low,
                    high=max(highs) if highs else inferred.high,
                )
                continue
        out[name] = inferred
    return out


def build_stages(trials: Sequence[Trial], space: dict[str, Dimension]) -> list[Stage]:
    """Trials grouped by the stage they name, in the order stages began; within one stage,
    a new stage starts where the declared distributions change (a study whose range was
    narrowed between trials)."""
    groups: dict[str, list[Trial]] = {}
    for t in sorted(trials, key=lambda t: (t.start if t.start is not None else math.inf, t.number)):
        groups.setdefault(t.stage, []).append(t)
    stages: list[Stage] = []
    for name, members in groups.items():
        members = sorted(members, key=lambda t: t.number)
        runs: list[list[Trial]] = []
        signature: object = None
        for t in members:
            sig = tuple(sorted((k, repr(v)) for k, v in t.distributions.items() if k in space))
            if not runs or (sig and signature and sig != signature):
                runs.append([])
            if sig:
                signature = sig
            runs[-1].append(t)
        for j, part in enumerate(runs):
            label = name or "search"
            if len(runs) > 1:
                label = f"{label} ({j + 1} of {len(runs)})"
            stages.append(Stage(label, part, _stage_space(part, space)))
    return stages


def _stage_space(trials: Sequence[Trial], space: dict[str, Dimension]) -> dict[str, Dimension]:
    """Each searched dimension's range within one stage: declared by all its trials, else
    sampled (a dimension constant in the stage has a zero-width range)."""
    out: dict[str, Dimension] = {}
    for name, dim in space.items():
        declared = [t.distributions[name] for t in trials if name in t.distributions]
        values = [t.params[name] for t in trials if name in t.params]
        if declared and len(declared) == len(values) and all(d == declared[0] for d in declared):
            out[name] = declared[0]
            continue
        nums = [float(v) for v in values if _number(v)]
        if dim.numeric and dim.kind != "categorical" and nums:
            out[name] = Dimension(name, dim.kind, min(nums), max(nums), log=dim.log)
    return out


@dataclass(frozen=True)
class ScaleFit:
    """How the sampled values of a positive hyperparameter fill its range.

    ``loglik_log`` and ``loglik_linear`` are the log-likelihoods of the values under a
    log-uniform and a uniform density on ``[low, high]``; ``ks_log``/``ks_linear`` the p-values
    of Kolmogorov-Smirnov tests against each; ``top_decade`` the share of values in the range's
    top decade; ``decades`` the range's decades and ``covered`` how many of them (unit decades,
    the top one first) hold a value.
    """

    n: int
    low: float
    high: float
    decades: float
    loglik_log: float
    loglik_linear: float
    ks_log: float
    ks_linear: float
    top_decade: float
    covered: int
    bins: int

    @property
    def prefers_log(self) -> bool:
        return self.loglik_log > self.loglik_linear

    @property
    def linear(self) -> bool:
        """The values fit a uniform density and reject a log-uniform one."""
        return self.ks_linear >= 0.05 and self.ks_log < 0.01 and not self.prefers_log

    @property
    def expected_top(self) -> float:
        """The share of log-uniform samples that would fall in the top decade."""
        return min(1.0, 1.0 / self.decades) if self.decades > 0 else 1.0


def scale_fit(values: Sequence[float], low: float, high: float) -> ScaleFit | None:
    """``ScaleFit`` of positive ``values`` on ``[low, high]`` (``None`` when not positive)."""
    from scipy import stats

    x = np.asarray([float(v) for v in values], dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2 or low <= 0 or high <= low or (x <= 0).any():
        return None
    x = np.clip(x, low, high)
    n = int(x.size)
    log_span = math.log(high / low)
    loglik_linear = -n * math.log(high - low)
    loglik_log = float(-np.log(x).sum() - n * math.log(log_span))
    ks_linear = float(stats.kstest(x, "uniform", args=(low, high - low)).pvalue)
    lx = np.log10(x)
    lo10, hi10 = math.log10(low), math.log10(high)
    ks_log = float(stats.kstest(lx, "uniform", args=(lo10, hi10 - lo10)).pvalue)
    top = float(np.mean(x >= high / 10.0))
    bins = max(1, math.ceil(hi10 - lo10 - 1e-9))
    edges = hi10 - np.arange(bins + 1)  # the top decade first
    covered = sum(
        bool(((lx <= edges[i]) & (lx > edges[i + 1] if i < bins - 1 else lx >= lo10)).any())
        for i in range(bins)
    )
    return ScaleFit(
        n, low, high, hi10 - lo10, loglik_log, loglik_linear, ks_log, ks_linear, top, covered, bins
    )


def uses_log(dim: Dimension, values: Sequence[Any]) -> bool:
    """Whether ``dim`` is searched on a log scale: as declared, else as its values fit best
    (positive values over at least one decade that fit a log-uniform density better)."""
    if dim.log is not None:
        return dim.log
    if dim.low is None or dim.high is None or dim.low <= 0 or dim.high / dim.low < 10:
        return False
    fit = scale_fit([float(v) for v in values if _number(v)], dim.low, dim.high)
    return fit is not None and fit.prefers_log


def position(value: float, dim: Dimension, log: bool) -> float | None:
    """Where ``value`` sits in ``dim``'s range on its scale: 0 at ``low``, 1 at ``high``."""
    if dim.low is None or dim.high is None or dim.high <= dim.low or not math.isfinite(value):
        return None
    if log:
        if dim.low <= 0 or value <= 0:
            return None
        return (math.log(value) - math.log(dim.low)) / (math.log(dim.high) - math.log(dim.low))
    return (value - dim.low) / (dim.high - dim.low)
