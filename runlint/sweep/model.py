"""A hyperparameter search as the sweep rules see it: trials, their hyperparameters, the
objective, the searched space and the stages of the search.

Every source (runlint run directories and imported logs, an Optuna storage, a Ray Tune
experiment folder) builds the same ``Search``; the rules never know where it came from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from runlint.run.remote import RemoteRun

__all__ = [
    "Dimension",
    "Objective",
    "Search",
    "Stage",
    "Trial",
    "better",
    "direction_of",
]

Direction = Literal["minimize", "maximize"]
Kind = Literal["float", "int", "categorical"]

#: Trial states, as every source maps its own: finished with a value; stopped early by a pruner
#: or a scheduler (its value is its best so far); crashed; still running.
STATES = ("complete", "pruned", "failed", "running")

#: Words in a metric's name that say which way is better (``--direction`` overrides them).
_MAX_WORDS = ("acc", "auc", "f1", "precision", "recall", "score", "reward", "map", "bleu", "iou")
_MIN_WORDS = (
    "loss",
    "error",
    "err",
    "perplexity",
    "ppl",
    "mse",
    "mae",
    "rmse",
    "nll",
    "cer",
    "wer",
)


def direction_of(metric: str) -> Direction | None:
    """``minimize`` for a loss or an error, ``maximize`` for an accuracy or a score; ``None``
    when the name says neither."""
    words = [w for w in metric.lower().replace("-", "_").replace("/", "_").split("_") if w]
    if any(w in _MIN_WORDS for w in words):
        return "minimize"
    if any(w in _MAX_WORDS or w.startswith(("acc", "accuracy")) for w in words):
        return "maximize"
    return None


@dataclass(frozen=True)
class Objective:
    """What the search optimizes: a metric and its direction, and where that was decided."""

    name: str
    direction: Direction
    how: str = ""  # "the study's direction", "from its name", "--direction", ...

    @property
    def minimize(self) -> bool:
        return self.direction == "minimize"

    def best(self, values: Iterable[float]) -> float:
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            return math.nan
        return min(finite) if self.minimize else max(finite)


def better(objective: Objective, a: float, b: float) -> bool:
    """Whether value ``a`` is better than ``b`` (a non-finite value is never better)."""
    if not math.isfinite(a):
        return False
    if not math.isfinite(b):
        return True
    return a < b if objective.minimize else a > b


@dataclass(frozen=True)
class Dimension:
    """One searched hyperparameter: its kind, its range and its scale.

    ``declared`` is true when the search tool stated the space (an Optuna distribution); then
    ``low``/``high``/``log`` are the tool's. Otherwise the range is the sampled one and ``log``
    is ``None`` (unknown: the rules judge it from the values).
    """

    name: str
    kind: Kind
    low: float | None = None
    high: float | None = None
    log: bool | None = None
    step: float | None = None
    choices: tuple[Any, ...] = ()
    declared: bool = False

    @property
    def numeric(self) -> bool:
        return self.kind != "categorical" or (
            bool(self.choices) and all(_is_number(c) for c in self.choices)
        )

    def describe(self) -> str:
        """``[1e-06, 0.1] log`` / ``[0, 0.5]`` / ``{adam, sgd}``."""
        if self.kind == "categorical" and not self.numeric:
            return "{" + ", ".join(map(str, self.choices)) + "}"
        scale = " log" if self.log else ""
        how = "" if self.declared else " (sampled)"
        return f"[{_num(self.low)}, {_num(self.high)}]{scale}{how}"


@dataclass
class Trial:
    """One trial: its hyperparameters, its objective and what it trained.

    ``curve`` is the objective after each epoch (or each reported iteration), ``train_loss`` the
    training loss per epoch where known; ``value`` is the trial's objective as its tool reports
    it (Optuna's value, the best of the curve otherwise). ``run`` is a run directory or log
    folder that ``runlint check`` reads (a trial recorded with ``runlint.record``).
    """

    id: str
    number: int
    params: dict[str, Any]
    value: float | None = None
    state: str = "complete"
    curve: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    epochs: int | None = None
    start: float | None = None  # seconds since the epoch
    end: float | None = None
    stage: str = ""
    run: Path | RemoteRun | None = None  # a RemoteRun: a run in object storage
    where: str = ""  # where it was read from (a folder, "study 'x' trial 12")
    distributions: dict[str, Dimension] = field(default_factory=dict)

    @property
    def finite(self) -> bool:
        return self.value is not None and math.isfinite(self.value)

    @property
    def label(self) -> str:
        return f"#{self.number}" if not self.id or self.id == str(self.number) else self.id


@dataclass
class Stage:
    """Trials sampled from one range: a study, a folder given on the command line, or the
    ``stage`` each trial names (``meta={"stage": "coarse"}``, a user attribute, a config key)."""

    name: str
    trials: list[Trial]
    space: dict[str, Dimension] = field(default_factory=dict)


@dataclass
class Search:
    """Everything the sweep rules judge."""

    location: str  # what the report names: a folder, a storage, an experiment
    source: str  # "runs", "optuna", "ray"
    trials: list[Trial]
    objective: Objective
    space: dict[str, Dimension] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: run findings per trial id (``runlint.sweep.lint`` fills it for the trials it checked)
    run_results: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return Path(self.location).name or self.location

    @property
    def judged(self) -> list[Trial]:
        """Trials with a finite objective (complete or pruned), in trial order."""
        return [t for t in self.trials if t.finite and t.state in ("complete", "pruned")]

    def ranked(self) -> list[Trial]:
        """``judged`` trials, best first."""
        sign = 1.0 if self.objective.minimize else -1.0
        return sorted(self.judged, key=lambda t: (sign * float(t.value or 0.0), t.number))

    @property
    def best(self) -> Trial | None:
        ranked = self.ranked()
        return ranked[0] if ranked else None

    def values(self, name: str, trials: Sequence[Trial] | None = None) -> list[Any]:
        """The values of hyperparameter ``name`` over ``trials`` (default: all judged)."""
        chosen = self.judged if trials is None else trials
        return [t.params[name] for t in chosen if name in t.params]

    def numeric_dims(self) -> list[Dimension]:
        return [d for d in self.space.values() if d.numeric]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: float | None) -> str:
    if value is None:
        return "?"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
        return f"{value:.1e}"
    return f"{value:.3g}"
