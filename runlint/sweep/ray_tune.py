"""A Ray Tune experiment folder, read as the plain files Ray writes; Ray need not be installed.

The layout (Ray 2.x, ``RunConfig(storage_path=..., name=...)``)::

    <experiment>/
      experiment_state-<date>.json      trials: id, status, config, relative_logdir;
                                        runner_data._metric (the TuneConfig metric)
      <trainable>_<id>_<n>_<tag>_<date>/
        params.json                     the trial's config
        result.json                     one JSON object per reported result
        progress.csv                    the same results as a table
        (a runlint run directory, when the trial recorded with runlint.record)

Only JSON and CSV are parsed. ``tuner.pkl``, ``params.pkl``, ``*-state-*.json`` of the search
algorithms and every value Ray stored as a pickle (``CLOUDPICKLE_FALLBACK``, hex blobs) are
never decoded: an experiment folder is untrusted input. A trial that reported fewer iterations
than the longest one and did not fail counts as stopped early (a scheduler such as ASHA, or a
stopper), i.e. ``pruned``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from runlint.sweep.model import Objective, Trial, direction_of
from runlint.sweep.sources import AUTO_METRICS, Loaded, SourceError, Want

__all__ = ["RayTuneSource", "is_experiment"]

STATE_GLOB = "experiment_state-*.json"
_STATUS = {"TERMINATED": "complete", "ERROR": "failed", "RUNNING": "running", "PENDING": "running"}
#: Keys of every Ray result that are bookkeeping, not metrics.
_RAY_KEYS = frozenset(
    {
        "timestamp",
        "checkpoint_dir_name",
        "done",
        "training_iteration",
        "trial_id",
        "date",
        "time_this_iter_s",
        "time_total_s",
        "pid",
        "hostname",
        "node_ip",
        "config",
        "time_since_restore",
        "iterations_since_restore",
        "experiment_tag",
        "should_checkpoint",
        "episodes_total",
        "timesteps_total",
    }
)
MAX_BYTES = 256 * 2**20  # a result file larger than this is not read


def is_experiment(path: Path) -> bool:
    """Whether ``path`` is a Ray Tune experiment folder."""
    if not path.is_dir():
        return False
    if any(path.glob(STATE_GLOB)):
        return True
    return any(_is_trial_dir(p) for p in _children(path))


def _children(path: Path) -> Iterator[Path]:
    try:
        yield from sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return


def _is_trial_dir(path: Path) -> bool:
    return (path / "params.json").is_file() and (
        (path / "result.json").is_file() or (path / "progress.csv").is_file()
    )


class RayTuneSource:
    """The trials of one Ray Tune experiment folder."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.location = str(path)

    def load(self, want: Want) -> Loaded:
        out = Loaded([])
        state, metric = self._state(out)
        folders: dict[str, dict[str, Any]] = {}
        for entry in state:
            rel = entry.get("relative_logdir")
            if isinstance(rel, str) and rel and "/" not in rel.strip("/") and ".." not in rel:
                folders[rel] = entry
        for child in _children(self.path):
            if child.name not in folders and _is_trial_dir(child):
                folders[child.name] = {}
        if not folders:
            raise SourceError(f"{self.location}: a Ray Tune experiment folder with no trials")
        rows_of: dict[str, list[dict[str, Any]]] = {}
        for rel in folders:
            rows_of[rel] = _results(self.path / rel, out)
        if want.objective:
            metric = want.objective
        if metric is None:
            keys = {k for rows in rows_of.values() for r in rows for k in r}
            metric = next((m for m in (*AUTO_METRICS, "val_accuracy", "loss") if m in keys), None)
            if metric is None:
                raise SourceError(
                    f"{self.location}: the experiment names no metric; pass --objective"
                )
        direction = want.direction or direction_of(metric)
        if direction is not None:
            how = "--direction" if want.direction else "its name"
            out.objective = Objective(metric, direction, how)
        out.metric = metric
        objective = out.objective or Objective(metric, "minimize")
        longest = max((_iterations(r) for r in rows_of.values()), default=0)
        for i, (rel, entry) in enumerate(sorted(folders.items())):
            folder = self.path / rel
            rows = rows_of[rel]
            params = _params(folder, entry)
            curve = [_float(r.get(metric)) for r in rows if metric in r]
            status = entry.get("status")
            state_name = _STATUS.get(status, "complete") if isinstance(status, str) else "complete"
            iterations = _iterations(rows)
            if state_name == "complete" and 0 < iterations < longest:
                state_name = "pruned"
            value = objective.best(curve) if curve else None
            if value is not None and math.isnan(value) and state_name == "complete":
                state_name = "failed"
            start, end = _times(rows)
            tid = entry.get("trial_id") or (rows[0].get("trial_id") if rows else None)
            stage = params.pop("stage", "")
            out.trials.append(
                Trial(
                    id=str(tid or rel),
                    number=i,
                    params=params,
                    value=value,
                    state=state_name,
                    curve=curve,
                    epochs=iterations or None,
                    start=start,
                    end=end,
                    stage=str(stage) if isinstance(stage, str | int) else "",
                    run=_run_dir(folder),
                    where=str(folder),
                )
            )
        missing = sum(not t.curve for t in out.trials)
        if missing:
            out.notes.append(f"{missing} of {len(out.trials)} trials reported no {metric}")
        return out

    def _state(self, out: Loaded) -> tuple[list[dict[str, Any]], str | None]:
        """The trials of the newest ``experiment_state-*.json`` and the metric it names."""
        files = sorted(self.path.glob(STATE_GLOB))
        if not files:
            return [], None
        file = files[-1]
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            out.errors.append((str(file), f"{file}: not readable JSON ({exc})"))
            return [], None
        if not isinstance(doc, dict):
            return [], None
        trials = []
        for item in doc.get("trial_data") or []:
            raw = item[0] if isinstance(item, list) and item else item
            try:
                entry = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                continue
            if isinstance(entry, dict):
                trials.append(entry)
        runner = doc.get("runner_data")
        metric = runner.get("_metric") if isinstance(runner, dict) else None
        return trials, metric if isinstance(metric, str) and metric else None


def _results(folder: Path, out: Loaded) -> list[dict[str, Any]]:
    """The trial's reported results: ``result.json`` (JSON lines), else ``progress.csv``."""
    file = folder / "result.json"
    rows: list[dict[str, Any]] = []
    if file.is_file() and file.stat().st_size <= MAX_BYTES:
        try:
            with file.open(encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        row = json.loads(line)
                    except ValueError:  # a trial killed while writing its last line
                        continue
                    if isinstance(row, dict):
                        rows.append(row)
        except OSError as exc:
            out.errors.append((str(file), f"{file}: cannot read ({exc.strerror or exc})"))
        if rows:
            return rows
    file = folder / "progress.csv"
    if file.is_file() and file.stat().st_size <= MAX_BYTES:
        try:
            with file.open(encoding="utf-8", errors="replace", newline="") as handle:
                for row in csv.DictReader(handle):
                    rows.append({k: _csv_value(v) for k, v in row.items() if k})
        except (OSError, csv.Error) as exc:
            out.errors.append((str(file), f"{file}: cannot read ({exc})"))
    return rows


def _csv_value(text: str | None) -> Any:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return {"True": True, "False": False}.get(text, text)


def _params(folder: Path, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's config as flat scalars (``a/b`` for nested keys, as Ray names them)."""
    config: Any = None
    try:
        config = json.loads((folder / "params.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = entry.get("config")
    return _flatten(config) if isinstance(config, dict) else {}


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            if "_type" in value:  # a value Ray stored as a pickle: never decoded
                continue
            out.update(_flatten(value, f"{prefix}{key}/"))
        elif isinstance(value, bool | str) or (
            isinstance(value, int | float) and math.isfinite(value)
        ):
            out[f"{prefix}{key}"] = value
    return out


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def _iterations(rows: list[dict[str, Any]]) -> int:
    its = [r.get("training_iteration") for r in rows]
    nums = [int(i) for i in its if isinstance(i, int | float) and not isinstance(i, bool)]
    return max(nums) if nums else len(rows)


def _times(rows: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    stamps: list[tuple[float, float]] = []
    for r in rows:
        stamp, spent = r.get("timestamp"), r.get("time_this_iter_s")
        if isinstance(stamp, int | float) and not isinstance(stamp, bool):
            took = float(spent) if isinstance(spent, int | float) else 0.0
            stamps.append((float(stamp), took))
    if not stamps:
        return None, None
    return stamps[0][0] - stamps[0][1], stamps[-1][0]


def _run_dir(folder: Path) -> Path | None:
    """A run the trial recorded: a runlint run directory (or a log an importer reads) in the
    trial folder, at most two levels down."""
    from runlint.run import importers, is_run_dir

    frontier = [folder]
    for _ in range(3):
        nxt: list[Path] = []
        for path in frontier:
            if path != folder and (is_run_dir(path) or importers.kind(path) in ("hf", "lightning")):
                return path
            if path == folder and is_run_dir(path):
                return path
            nxt.extend(_children(path))
        frontier = nxt
    return None
