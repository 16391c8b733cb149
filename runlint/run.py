"""``Run``: what the rules read — pandas views over one recorded (or imported) training run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from runlint import importers
from runlint.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    META_FILE,
    PARTS_DIR,
    TABLES,
    parse_compact,
    parse_part,
)

__all__ = ["Run", "RunError", "find_runs", "load_run"]


class RunError(Exception):
    """A run that cannot be read; the message names the run and what is wrong, in one line."""


@dataclass
class Run:
    """One training run, as tables.

    ``steps``       one row per optimizer step (index ``step``): ``loss`` and every scalar given
                    to ``rec.log``, ``lr``/``momentum``/``weight_decay`` of param group 0, ``time``.
                    Ranks and gradient-accumulation micro-steps are averaged.
    ``groups``      long: ``step, group, lr, momentum, beta1, beta2, weight_decay, eps, ...``.
    ``epochs``      one row per ``rec.log_epoch`` (index ``epoch``), with the ``step`` it closed.
    ``params``      long: ``step, param, grad_norm, param_norm, update_norm, update_ratio``.
    ``activations`` long: ``step, module, kind, mean, std, saturated, dead, dead_units``.
    ``histograms``  long: ``step, source, name, edges, counts``.
    ``weights``     long: ``step, param, shape, values`` (first-layer snapshots).
    ``meta``        dict: ``num_classes``, ``batch_size``, ``loss``, ``optimizer``, ``params``,
                    ``provenance`` (``given``/``inferred``/... per key), ...
    ``raw``         every table as read, with ``rank`` (and ``micro``) columns kept.
    """

    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    steps: pd.DataFrame = field(default_factory=pd.DataFrame)
    groups: pd.DataFrame = field(default_factory=pd.DataFrame)
    epochs: pd.DataFrame = field(default_factory=pd.DataFrame)
    params: pd.DataFrame = field(default_factory=pd.DataFrame)
    activations: pd.DataFrame = field(default_factory=pd.DataFrame)
    histograms: pd.DataFrame = field(default_factory=pd.DataFrame)
    weights: pd.DataFrame = field(default_factory=pd.DataFrame)
    raw: dict[str, pd.DataFrame] = field(default_factory=dict)
    source: str = "runlint"
    complete: bool = True

    @property
    def name(self) -> str:
        return self.path.name

    def has(self, requirement: str) -> bool:
        """Whether data named like ``"steps.loss"``, ``"params"``, ``"meta.num_classes"`` exists."""
        table, _, column = requirement.partition(".")
        if table == "meta":
            return self.meta.get(column) is not None
        frame = getattr(self, table, None)
        if not isinstance(frame, pd.DataFrame) or frame.empty:
            return False
        if not column:
            return True
        return column in frame.columns and bool(frame[column].notna().any())


def find_runs(path: Path) -> Iterator[Path]:
    """Runs at or below ``path``: runlint run directories and folders an importer recognizes."""
    if is_run_dir(path) or importers.detect(path) is not None:
        yield path
        return
    for child in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        yield from find_runs(child)


def is_run_dir(path: Path) -> bool:
    if (path / META_FILE).is_file() or (path / PARTS_DIR).is_dir():
        return True
    return any(parse_compact(p.name) for p in path.glob("*.parquet"))


def load_run(path: str | Path) -> Run:
    """Read a run directory written by ``runlint.record``; raises ``RunError`` on bad input."""
    root = Path(path)
    if not root.exists():
        raise RunError(f"{root}: no such file or directory")
    importer = importers.detect(root) if not is_run_dir(root) else None
    if importer is not None:
        return importer(root)
    if not root.is_dir() or not is_run_dir(root):
        raise RunError(f"{root}: not a runlint run directory (no {META_FILE} or run tables)")
    meta = _read_meta(root)
    raw = {table: _read_table(root, table) for table in TABLES}
    complete = bool(meta.get("complete", False))
    if all(frame.empty for frame in raw.values()) and not meta:
        raise RunError(f"{root}: run directory holds no data")
    return from_tables(root, meta.get("meta", meta), raw, complete=complete)


def from_tables(
    path: Path,
    meta: dict[str, Any],
    raw: dict[str, pd.DataFrame],
    *,
    source: str = "runlint",
    complete: bool = True,
) -> Run:
    """Build the views of a ``Run`` from raw long tables (also used by the importers)."""
    raw = {t: raw.get(t, pd.DataFrame()) for t in TABLES}
    steps = _mean_by(raw["steps"], ["step"])
    groups = raw["groups"]
    if not groups.empty:
        groups = _mean_by(groups, ["step", "group"]).reset_index()
        group0 = groups[groups["group"] == 0].set_index("step").drop(columns="group")
        steps = steps.join(group0, how="outer", rsuffix="_group0") if not steps.empty else group0
    epochs = _mean_by(raw["epochs"], ["epoch"])
    params = raw["params"]
    if not params.empty:
        params = _mean_by(params, ["step", "param"]).reset_index()
    acts = raw["activations"]
    if not acts.empty:
        keys = ["step", "module", "kind"] if "kind" in acts.columns else ["step", "module"]
        acts = _mean_by(acts, keys).reset_index()
    return Run(
        path=path,
        meta=meta,
        steps=steps,
        groups=groups,
        epochs=epochs,
        params=params,
        activations=acts,
        histograms=raw["histograms"],
        weights=raw["weights"],
        raw=raw,
        source=source,
        complete=complete,
    )


def _mean_by(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Average numeric columns over ranks and micro-steps; keep the first of other columns."""
    if frame.empty or not set(keys) <= set(frame.columns):
        return pd.DataFrame()
    frame = frame.drop(columns=[c for c in ("rank", "micro") if c in frame.columns])
    value_cols = [c for c in frame.columns if c not in keys]
    numeric = [c for c in value_cols if pd.api.types.is_numeric_dtype(frame[c])]
    other = [c for c in value_cols if c not in numeric]
    grouped = frame.groupby(keys, sort=True)
    out = grouped[numeric].mean() if numeric else grouped.size().to_frame("_n").drop(columns="_n")
    for col in numeric:  # a mean of integers that are equal per key stays an integer
        if pd.api.types.is_integer_dtype(frame[col]) and (out[col] % 1 == 0).all():
            out[col] = out[col].astype(frame[col].dtype)
    if other:
        out = out.join(grouped[other].first())
    return out


def _read_meta(root: Path) -> dict[str, Any]:
    path = root / META_FILE
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunError(f"{root}: {META_FILE} is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise RunError(f"{root}: {META_FILE} is not a JSON object")
    if doc.get("format") == FORMAT_NAME and int(doc.get("version", 0)) > FORMAT_VERSION:
        raise RunError(
            f"{root}: format version {doc['version']} is newer than this runlint reads "
            f"({FORMAT_VERSION}); upgrade runlint"
        )
    return doc


def _read_table(root: Path, table: str) -> pd.DataFrame:
    """Compacted files per rank, else that rank's flushed parts (a live or killed run)."""
    files: dict[int, list[Path]] = {}
    for path in root.glob(f"{table}-r*.parquet"):
        parsed = parse_compact(path.name)
        if parsed and parsed[0] == table:
            files[parsed[1]] = [path]
    parts_dir = root / PARTS_DIR
    if parts_dir.is_dir():
        for path in sorted(parts_dir.glob(f"{table}-r*-*.parquet")):
            part = parse_part(path.name)
            if part and part[0] == table and part[1] not in files:
                files.setdefault(-1 - part[1], []).append(path)
    tables = []
    for paths in files.values():
        for path in paths:
            try:
                tables.append(pq.read_table(path))
            except (OSError, pa.ArrowException) as exc:
                raise RunError(
                    f"{root}: {path.name} is not a readable Parquet file ({exc})"
                ) from None
    if not tables:
        return pd.DataFrame()
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()
