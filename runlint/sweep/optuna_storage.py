"""An Optuna study read from its storage (an RDB URL: ``sqlite:///study.db``,
``postgresql://user@host/db``), through Optuna's own API (``runlint[optuna]``).

Each trial brings its number, state, value, parameters, *declared* distributions (range and
log scale, so the rules need not infer them), intermediate values (the objective per epoch:
``trial.report(value, epoch)``), start and end times, and its user attributes:
``runlint_run`` (the run directory the trial recorded with ``runlint.record``; relative paths
are taken from the working directory, else from the database's folder), ``stage`` (its stage
of a coarse-to-fine search) and ``epochs`` (epochs trained, when it reported none).

A storage holding several studies is read whole unless studies are named (``--study``, or
``#study=NAME`` after the URL); each study is a stage. Reading never writes: a SQLite file
that does not exist is an error here, not an empty database created by SQLAlchemy.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from runlint.extras import requires_extra
from runlint.sweep.model import Dimension, Objective, Trial
from runlint.sweep.sources import Loaded, SourceError, Want

__all__ = ["OptunaSource", "display_url"]

_STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}


def display_url(url: str) -> str:
    """The URL without its password (``postgresql://me:***@host/db``)."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


class OptunaSource:
    """The studies of one Optuna storage."""

    def __init__(self, url: str) -> None:
        url, _, fragment = url.partition("#")
        self.url = url
        self.studies: tuple[str, ...] = tuple(
            v for k, _, v in (p.partition("=") for p in fragment.split("&") if p) if k == "study"
        )
        self.file: Path | None = None
        if url.lower().startswith("sqlite:///"):
            self.file = Path(url[len("sqlite:///") :])
        self.location = str(self.file) if self.file is not None else display_url(url)

    def load(self, want: Want) -> Loaded:
        if self.file is not None and not self.file.is_file():
            raise SourceError(f"{self.location}: no such SQLite file")
        with requires_extra("optuna", f"reading the Optuna storage {self.location}"):
            import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            summaries = optuna.get_all_study_summaries(self.url, include_best_trial=False)
        except Exception as exc:
            raise SourceError(
                f"{self.location}: not a readable Optuna storage ({_line(exc)})"
            ) from None
        names = [s.study_name for s in summaries]
        wanted = list(self.studies or want.studies)
        for name in wanted:
            if name not in names:
                raise SourceError(
                    f"{self.location}: no study {name!r} (studies: {', '.join(names) or 'none'})"
                )
        chosen = [n for n in names if not wanted or n in wanted]
        out = Loaded([])
        if not chosen:
            raise SourceError(f"{self.location}: the storage holds no study")
        directions: list[str] = []
        metrics: list[str] = []
        for name in chosen:
            try:
                study = optuna.load_study(study_name=name, storage=self.url)
                frozen = study.get_trials(deepcopy=False)
            except Exception as exc:
                out.errors.append((self.location, f"{self.location}: study {name!r}: {_line(exc)}"))
                continue
            dirs = [d.name.lower() for d in study.directions]
            if len(dirs) > 1:
                out.notes.append(
                    f"study {name!r} has {len(dirs)} objectives: the first one is judged"
                )
            directions.append(dirs[0] if dirs else "minimize")
            names_of = getattr(study, "metric_names", None)
            if names_of and isinstance(names_of[0], str):
                metrics.append(names_of[0])
            stage = name if len(chosen) > 1 else ""
            for ft in frozen:
                out.trials.append(self._trial(ft, name, stage))
        if directions:
            direction = directions[0]
            if len(set(directions)) > 1:
                out.notes.append(
                    "the studies optimize in different directions: the first's is used"
                )
            metric = want.objective or (metrics[0] if metrics else "value")
            out.objective = Objective(
                metric,
                "maximize" if direction == "maximize" else "minimize",
                "the study's direction",
            )
        if want.direction is not None and out.objective is not None:
            out.objective = Objective(out.objective.name, want.direction, "--direction")
        return out

    def _trial(self, ft: Any, study: str, stage: str) -> Trial:
        state = _STATES.get(getattr(ft.state, "name", str(ft.state)), "failed")
        values = getattr(ft, "values", None)
        value = float(values[0]) if values else None
        steps = sorted(ft.intermediate_values.items())
        curve = [float(v) if v is not None else math.nan for _, v in steps]
        attrs = dict(ft.user_attrs)
        if state == "pruned" and value is None and curve:
            value = curve[-1]
        epochs = len(curve) if curve else _int(attrs.get("epochs"))
        start = ft.datetime_start.timestamp() if ft.datetime_start else None
        end = ft.datetime_complete.timestamp() if ft.datetime_complete else None
        return Trial(
            id=str(ft.number) if not stage else f"{study}#{ft.number}",
            number=int(ft.number),
            params={k: _plain(v) for k, v in ft.params.items()},
            value=value,
            state=state,
            curve=curve,
            epochs=epochs,
            start=start,
            end=end,
            stage=str(attrs.get("stage") or stage),
            run=self._run_dir(attrs.get("runlint_run")),
            where=f"{self.location} study {study!r} trial {ft.number}",
            distributions={k: _dimension(k, d) for k, d in ft.distributions.items()},
        )

    def _run_dir(self, value: Any) -> Path | None:
        if not isinstance(value, str) or not value:
            return None
        path = Path(value)
        if path.is_absolute() or path.exists() or self.file is None:
            return path
        beside = self.file.parent / path
        return beside if beside.exists() else path


def _dimension(name: str, dist: Any) -> Dimension:
    kind = type(dist).__name__
    if kind in ("FloatDistribution", "UniformDistribution", "LogUniformDistribution"):
        log = bool(getattr(dist, "log", kind == "LogUniformDistribution"))
        step = getattr(dist, "step", None)
        return Dimension(name, "float", float(dist.low), float(dist.high), log, step, declared=True)
    if kind in ("IntDistribution", "IntUniformDistribution", "IntLogUniformDistribution"):
        log = bool(getattr(dist, "log", kind == "IntLogUniformDistribution"))
        return Dimension(
            name,
            "int",
            float(dist.low),
            float(dist.high),
            log,
            getattr(dist, "step", 1),
            declared=True,
        )
    choices = tuple(_plain(c) for c in getattr(dist, "choices", ()))
    numbers = [c for c in choices if isinstance(c, int | float) and not isinstance(c, bool)]
    low = float(min(numbers)) if len(numbers) == len(choices) and numbers else None
    high = float(max(numbers)) if low is not None else None
    return Dimension(name, "categorical", low, high, None, choices=choices, declared=True)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
