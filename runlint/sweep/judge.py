"""Judgement the sweep rules share: values of a hyperparameter, its scale, and wording."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeGuard

from runlint.analysis.wording import fmt
from runlint.sweep.model import Dimension, Search, Trial
from runlint.sweep.space import uses_log

__all__ = ["fmt", "is_number", "pct", "sampled", "scale_of", "trial_value", "word_scale"]


def is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def sampled(search: Search, name: str, trials: Sequence[Trial] | None = None) -> list[float]:
    """The numeric values of ``name`` the search sampled (every trial, whatever its outcome:
    sampling does not depend on the result)."""
    chosen = search.trials if trials is None else trials
    return [float(t.params[name]) for t in chosen if is_number(t.params.get(name))]


def scale_of(search: Search, dim: Dimension) -> bool:
    """Whether ``dim`` is searched on a log scale (declared, else as its values fit)."""
    return uses_log(dim, sampled(search, dim.name))


def word_scale(log: bool) -> str:
    return "log scale" if log else "linear scale"


def pct(share: float) -> str:
    return f"{100 * share:.0f}%"


def trial_value(search: Search, trial: Trial) -> str:
    """``#12 (val_loss 0.412)``."""
    value = trial.value if trial.value is not None else math.nan
    return f"{trial.label} ({search.objective.name} {fmt(value)})"
