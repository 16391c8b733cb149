"""Where a search's trials come from, and how they become one ``Search``.

A *source* is anything with a ``location`` and a ``load(want)`` that returns ``Loaded``: its
trials, the objective it declares (if any), notes and unreadable parts. Three ship:

- ``RunsSource``: runlint run directories and the logs the importers read (Hugging Face,
  Lightning, TensorBoard) found under a folder, one trial each;
- ``runlint.sweep.optuna_storage.OptunaSource``: a study in an Optuna storage (an RDB URL);
- ``runlint.sweep.ray_tune.RayTuneSource``: a Ray Tune experiment folder, read as plain files.

``open_source(target)`` picks one from the text given on the command line; ``load_search``
merges the sources of one ``runlint sweep`` into a ``Search`` (each source is a stage unless
its trials name their own). Another source (an object store, a live study) implements the
same two members.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from runlint.run.remote import is_url
from runlint.sweep.model import Direction, Objective, Search, Trial, direction_of
from runlint.sweep.params import dedupe, hyperparameters
from runlint.sweep.space import build_space, build_stages

if TYPE_CHECKING:
    from runlint.run.remote import RemoteRun

__all__ = [
    "Loaded",
    "RunsSource",
    "SourceError",
    "TrialSource",
    "Want",
    "config_anchor",
    "load_search",
    "open_source",
]

#: Objective metrics tried in order when none is named: the seed's validation loss, then
#: validation accuracy (and the names other tools give them).
AUTO_METRICS = ("val_loss", "val_acc")
URL_RE = re.compile(r"^[a-z][a-z0-9+]*://", re.I)
RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "oracle", "mssql")


class SourceError(Exception):
    """A source that cannot be read at all; the message is one line naming it."""


@dataclass(frozen=True)
class Want:
    """What the command line asks of the sources: the objective, the direction, studies."""

    objective: str | None = None
    direction: Direction | None = None
    studies: tuple[str, ...] = ()
    hyperparameters: tuple[str, ...] = ()


@dataclass
class Loaded:
    """What a source read: trials, the objective it declares, notes and unreadable parts."""

    trials: list[Trial]
    objective: Objective | None = None
    metric: str | None = None  # a metric the source names without a direction (Ray's)
    notes: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, one line)


class TrialSource(Protocol):
    location: str

    def load(self, want: Want) -> Loaded: ...


def config_anchor(target: str) -> Path:
    """Where the ``pyproject.toml`` of a target is looked for: its folder (a SQLite file's
    folder), the working directory for other URLs."""
    if target.lower().startswith("sqlite:///"):
        return Path(target[len("sqlite:///") :].partition("#")[0]).parent
    return Path(target) if not URL_RE.match(target) else Path.cwd()


def open_source(target: str) -> TrialSource:
    """The source that reads ``target``: an RDB URL is an Optuna storage, a folder holding
    ``experiment_state-*.json`` a Ray Tune experiment, anything else a folder of runs."""
    if URL_RE.match(target):
        scheme = target.split(":", 1)[0].lower().split("+", 1)[0]
        if scheme in RDB_SCHEMES:
            from runlint.sweep.optuna_storage import OptunaSource

            return OptunaSource(target)
        return RunsSource(target)  # runs in object storage: any fsspec URL
    path = Path(target)
    if path.is_file() and path.suffix in (".db", ".sqlite", ".sqlite3"):
        from runlint.sweep.optuna_storage import OptunaSource

        return OptunaSource(f"sqlite:///{path}")
    from runlint.sweep import ray_tune

    if ray_tune.is_experiment(path):
        return ray_tune.RayTuneSource(path)
    return RunsSource(path)


@dataclass
class _RunTrial:
    trial: Trial
    columns: dict[str, list[float]]  # epochs metric name -> values
    train_loss: list[float]


class RunsSource:
    """Every run found under a folder (``runlint check``'s discovery) is one trial."""

    def __init__(self, path: Path | str) -> None:
        self.path: Path | str = path if is_url(path) else Path(path)
        self.location = str(path)

    def load(self, want: Want) -> Loaded:
        from runlint.check.engine import runs_or_errors
        from runlint.extras import MissingExtra
        from runlint.run import RunError, load_run
        from runlint.run.remote import RemoteError, RemoteRun, local_copy

        out = Loaded([])
        found: list[_RunTrial] = []
        for path, error in runs_or_errors([self.path]):
            if error is not None:
                out.errors.append((str(path), error))
                continue
            try:
                if isinstance(path, RemoteRun):
                    # read in a temporary copy; the trial keeps the URL, and the run is fetched
                    # again when it is checked
                    with local_copy(path) as local:
                        found.append(_remote_trial(load_run(local), local, path, str(self.path)))
                else:
                    found.append(_run_trial(load_run(path), Path(self.path)))
            except (RunError, RemoteError, MissingExtra) as exc:
                out.errors.append((str(path), " ".join(str(exc).split())))
            except Exception as exc:
                out.errors.append((str(path), f"{path}: cannot read ({type(exc).__name__}: {exc})"))
        metric = want.objective or next(
            (m for m in AUTO_METRICS if any(m in r.columns for r in found)), None
        )
        if metric is None:
            if found:
                out.notes.append(
                    f"{self.location}: no run logged val_loss or val_acc per epoch; name the "
                    "objective with --objective"
                )
            metric = AUTO_METRICS[0]
        direction = want.direction or direction_of(metric) or "minimize"
        objective = Objective(metric, direction, "--direction" if want.direction else "its name")
        for item in found:
            t = item.trial
            curve = item.columns.get(metric, [])
            t.curve = curve
            t.train_loss = item.train_loss
            t.value = objective.best(curve) if curve else None
            if t.value is not None and math.isnan(t.value):
                t.state = "failed" if curve and not any(map(math.isfinite, curve)) else t.state
            out.trials.append(t)
        if want.objective is None and found:
            missing = sum(metric not in r.columns for r in found)
            if missing:
                out.notes.append(f"{missing} of {len(found)} runs did not log {metric} per epoch")
        out.objective = objective if want.direction or direction_of(metric) else None
        out.metric = metric
        return out


def _remote_trial(run: Any, local: Path, remote: RemoteRun, root: str) -> _RunTrial:
    """A trial read from a temporary copy of a run in object storage, named by its URL."""
    item = _run_trial(run, local.parent, mtime=remote.mtime)
    t = item.trial
    rel = remote.url[len(root.rstrip("/")) + 1 :] if remote.url.startswith(root) else ""
    t.id = rel or remote.name or remote.url
    t.run = remote
    t.where = remote.url
    return item


def _run_trial(run: Any, root: Path, mtime: float | None = None) -> _RunTrial:
    import numpy as np

    epochs = run.epochs
    columns: dict[str, list[float]] = {}
    train_loss: list[float] = []
    if not epochs.empty:
        for name in (*AUTO_METRICS, *epochs.columns):
            col = run.column("epochs", name) if name in AUTO_METRICS else name
            if col is None or col not in epochs.columns or name in columns:
                continue
            try:
                values = epochs[col].to_numpy(dtype=float, na_value=np.nan)
            except (TypeError, ValueError):
                continue
            columns[name] = [float(v) for v in values]
        col = run.column("epochs", "train_loss")
        if col is not None:
            train_loss = [float(v) for v in epochs[col].to_numpy(dtype=float, na_value=np.nan)]
    start = end = None
    steps = run.steps
    if "time" in steps.columns and not steps.empty:
        times = steps["time"].to_numpy(dtype=float, na_value=np.nan)
        times = times[np.isfinite(times)]
        if times.size:
            start, end = float(times.min()), float(times.max())
    if end is None:
        try:
            end = mtime if mtime is not None else run.path.stat().st_mtime
        except OSError:
            end = None
    try:
        rel = run.path.relative_to(root).as_posix()
    except ValueError:
        rel = run.path.name
    params = hyperparameters(run)
    stage = run.meta.get("stage")
    params.pop("stage", None)
    n_epochs = len(epochs) if not epochs.empty else None
    trial = Trial(
        id=rel if rel != "." else run.path.name,
        number=0,
        params=params,
        state="complete" if run.complete else "running",
        epochs=n_epochs,
        start=start,
        end=end,
        stage=str(stage) if isinstance(stage, str | int) else "",
        run=run.path,
        where=str(run.path),
    )
    return _RunTrial(trial, columns, train_loss)


def load_search(
    sources: Sequence[TrialSource], want: Want
) -> tuple[Search | None, list[tuple[str, str]]]:
    """The one ``Search`` of ``sources`` (``None`` when none yielded a trial) and every part
    that could not be read, as ``(path, message)``.

    Each source is a stage of its own when several are given, unless its trials name their
    stage; trials are numbered in the order they started.
    """
    errors: list[tuple[str, str]] = []
    trials: list[Trial] = []
    notes: list[str] = []
    objective: Objective | None = None
    metrics: list[str] = []
    for source in sources:
        try:
            loaded = source.load(want)
        except SourceError as exc:
            errors.append((source.location, str(exc)))
            continue
        errors += loaded.errors
        notes += loaded.notes
        if loaded.objective is not None and objective is None:
            objective = loaded.objective
        if loaded.metric:
            metrics.append(loaded.metric)
        for t in loaded.trials:
            if not t.stage and len(sources) > 1:
                t.stage = Path(source.location).name or source.location
            trials.append(t)
    if not trials:
        return None, errors
    if objective is None:
        metric = want.objective or (metrics[0] if metrics else AUTO_METRICS[0])
        direction = want.direction or direction_of(metric)
        how = "--direction" if want.direction else "its name"
        if direction is None:
            direction = "minimize"
            how = "assumed (the name says neither; pass --direction)"
            notes.append(f"objective {metric}: direction not known, minimized (pass --direction)")
        objective = Objective(metric, direction, how)
    _number(trials)
    params = [t.params for t in trials]
    for name in dedupe(params):
        for t in trials:
            t.params.pop(name, None)
    only = list(want.hyperparameters) or None
    space = build_space(trials, only)
    stages = build_stages(trials, space)
    location = sources[0].location if len(sources) == 1 else ", ".join(s.location for s in sources)
    kinds = sorted({type(s).__name__ for s in sources})
    source_kind = {
        "RunsSource": "runs",
        "OptunaSource": "optuna",
        "RayTuneSource": "ray",
    }
    kind = "+".join(source_kind.get(k, k) for k in kinds)
    return Search(location, kind, trials, objective, space, stages, notes), errors


def _number(trials: Iterable[Trial]) -> None:
    """Keep the trials' own numbers when they are unique (one Optuna study, one Ray
    experiment), else number them in the order they started."""
    items = list(trials)
    numbers = [t.number for t in items]
    if len(set(numbers)) == len(items) and any(numbers):
        return
    order = sorted(
        range(len(items)),
        key=lambda i: (
            items[i].start if items[i].start is not None else math.inf,
            items[i].end if items[i].end is not None else math.inf,
            items[i].id,
        ),
    )
    for rank, i in enumerate(order):
        items[i].number = rank
