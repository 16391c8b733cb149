"""Long ``(name, step, value)`` scalars to the recorder's raw tables: steps, groups, epochs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from runlint.run.importers.names import Signal, classify, sanitize

__all__ = ["DERIVED_TRAIN_LOSS", "Scalars", "scalar_tables", "with_counts"]


@dataclass
class Scalars:
    """What a log's scalars become: raw tables, where each name went, and the summaries."""

    raw: dict[str, pa.Table]
    mapping: dict[str, str]  # logged name -> "table.column" ("train/loss" -> "steps.loss")
    summary: dict[str, float] = field(default_factory=dict)  # test and end-of-run metrics


def scalar_tables(scalars: pd.DataFrame) -> Scalars:
    """Raw ``steps``, ``groups`` and ``epochs`` tables from long scalars.

    ``scalars`` has columns ``name``, ``step``, ``value`` and optionally ``time`` (wall clock,
    seconds), ``epoch`` (an epoch number logged with each row, as in Lightning's CSV: rows of
    one epoch are one row of ``epochs``) and ``progress`` (the fractional epoch logged with an
    evaluation, as Hugging Face does: each evaluation is a row of ``epochs``). A name logged
    twice at one step keeps its last value (a resumed run rewrites its tail).

    The tables are Arrow: a value a row lacks (nothing of that name logged at that step) is
    null, a logged NaN stays NaN. An evaluation row without a training loss of its own gets
    the mean logged training loss since the previous evaluation (so train and validation can be
    compared). Test metrics and end-of-run summaries go to ``summary``, never into a curve.
    """
    if scalars.empty:
        return Scalars({}, {})
    scalars = scalars.dropna(subset=["step"])
    names = list(pd.unique(scalars["name"]))
    counts = scalars["name"].value_counts()
    signals = _resolve({n: classify(n) for n in names}, counts)
    codes, uniques = pd.factorize(scalars["name"])
    sigs = [signals[n] for n in uniques]
    frame = scalars.assign(
        table=np.asarray([s.table for s in sigs], dtype=object)[codes],
        column=np.asarray([s.column for s in sigs], dtype=object)[codes],
        group=np.asarray([s.group for s in sigs], dtype=np.int64)[codes],
        ambiguous=np.asarray([s.ambiguous for s in sigs], dtype=bool)[codes],
    )
    frame = frame[frame["table"] != "skip"]
    frame = frame.assign(step=frame["step"].astype("int64"))
    rows = frame["table"] == "summary"
    summary = {
        str(c): float(v)
        for c, v in frame[rows].drop_duplicates("column", keep="last")[["column", "value"]].values
    }
    frame = frame[~rows]
    epoch_rows = frame[(frame["table"] == "epochs") & ~frame["ambiguous"]]
    boundaries = set(epoch_rows["step"].unique())
    for name in frame.loc[frame["ambiguous"], "name"].unique():
        rows = frame["name"] == name
        if not boundaries or not set(frame.loc[rows, "step"].unique()) <= boundaries:
            frame.loc[rows, "table"] = "steps"  # logged every step: a per-step metric
    steps = frame[frame["table"] == "steps"]
    raw = {
        "steps": _steps(steps),
        "groups": _groups(frame[frame["table"] == "groups"]),
        "epochs": _epochs(frame[frame["table"] == "epochs"], steps),
    }
    mapping = {n: f"{signals[n].table}.{signals[n].column}" for n in names}
    for name in frame.loc[frame["ambiguous"] & (frame["table"] == "steps"), "name"].unique():
        mapping[name] = f"steps.{signals[name].column}"
    epochs = raw["epochs"]
    if epochs is not None and DERIVED_TRAIN_LOSS in epochs.column_names:
        mapping[DERIVED_TRAIN_LOSS] = "epochs.train_loss"
    return Scalars({k: v for k, v in raw.items() if v is not None}, mapping, summary)


#: The mapping's key for the per-evaluation training loss the builder derives.
DERIVED_TRAIN_LOSS = "(mean of steps.loss since the previous evaluation)"


def _resolve(signals: dict[str, Signal], counts: pd.Series) -> dict[str, Signal]:
    """When several names map to one signal, the most logged keeps it; others keep their name."""
    by_target: dict[tuple[str, str, int], list[str]] = {}
    for name, sig in signals.items():
        if sig.table != "skip":
            by_target.setdefault((sig.table, sig.column, sig.group), []).append(name)
    out = dict(signals)
    for (table, _column, _group), names in by_target.items():
        if len(names) < 2:
            continue
        keep = max(names, key=lambda n: int(counts.get(n, 0)))
        for name in names:
            if name != keep:
                own = table if table != "groups" else "steps"
                out[name] = Signal(own, sanitize(name), ambiguous=signals[name].ambiguous)
    return out


def _wide(frame: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Values per key and column, and which of them were logged (a missing cell is absent from
    the log, unlike a logged NaN)."""
    frame = frame.drop_duplicates([*keys, "column"], keep="last")
    wide = frame.pivot(index=keys, columns="column", values="value")
    logged = frame.assign(one=1.0).pivot(index=keys, columns="column", values="one").notna()
    wide.columns.name = logged.columns.name = None
    return wide.astype("float64"), logged


def _steps(frame: pd.DataFrame) -> pa.Table | None:
    if frame.empty:
        return None
    wide, logged = _wide(frame, ["step"])
    if "time" in frame.columns and frame["time"].notna().any():
        wide["time"] = frame.groupby("step")["time"].max()
    return _finish(wide, logged)


def _groups(frame: pd.DataFrame) -> pa.Table | None:
    if frame.empty:
        return None
    return _finish(*_wide(frame, ["step", "group"]))


def _epochs(frame: pd.DataFrame, steps: pd.DataFrame) -> pa.Table | None:
    """One row per epoch (by the logged epoch number, when there is one) or per evaluation."""
    if frame.empty:
        return None
    if "epoch" in frame.columns and frame["epoch"].notna().all():
        frame = frame.assign(epoch=frame["epoch"].astype("int64"))
        wide, logged = _wide(frame, ["epoch"])
        wide.insert(0, "step", frame.groupby("epoch")["step"].max())
        if "elapsed_epochs" not in wide.columns:  # a row at the end of epoch N: N + 1 done
            wide["elapsed_epochs"] = wide.index.to_numpy(dtype=float) + 1
    else:
        wide, logged = _wide(frame, ["step"])
        if "progress" in frame.columns and frame["progress"].notna().any():
            wide["elapsed_epochs"] = frame.groupby("step")["progress"].max()
        wide, logged = wide.reset_index(), logged.reset_index(drop=True)
        wide.index.name = logged.index.name = "epoch"
    if "train_loss" not in wide.columns:
        derived = _train_loss_since(wide["step"].to_numpy(), steps)
        if derived is not None:
            wide["train_loss"] = derived
            logged["train_loss"] = np.isfinite(derived)
    return _finish(wide, logged)


def _train_loss_since(at: np.ndarray, steps: pd.DataFrame) -> np.ndarray | None:
    """Per evaluation step in ``at``: the mean logged ``loss`` after the previous one up to it."""
    losses = steps[steps["column"] == "loss"] if not steps.empty else steps
    if losses.empty:
        return None
    losses = losses.drop_duplicates("step", keep="last").sort_values("step")
    where = losses["step"].to_numpy()
    values = losses["value"].to_numpy(dtype=float)
    out = np.full(len(at), np.nan)
    previous = -1
    for i, step in enumerate(at):
        inside = (where > previous) & (where <= step) & np.isfinite(values)
        if inside.any():
            out[i] = float(values[inside].mean())
        previous = step
    if not np.isfinite(out).any():
        return None
    return out


def _finish(wide: pd.DataFrame, logged: pd.DataFrame) -> pa.Table:
    """The raw table as Arrow: keys first, then ``rank``, then the values, null where a value
    was not logged."""
    out = wide.reset_index()
    logged = logged.reset_index(drop=True)
    out.insert(1 if "group" not in out.columns else 2, "rank", 0)
    if "epoch" in out.columns and "step" in out.columns:
        out = out[["epoch", "step", *[c for c in out.columns if c not in ("epoch", "step")]]]
    columns = {}
    for name in out.columns:
        values = out[name].to_numpy()
        if name in logged.columns:
            columns[name] = pa.array(values, mask=~logged[name].to_numpy(dtype=bool))
        else:
            columns[name] = pa.array(values)
    return pa.table(columns)


def with_counts(meta: dict[str, Any], raw: dict[str, pa.Table]) -> dict[str, Any]:
    """``meta`` with ``steps`` (the last step logged + 1) and ``epochs`` (rows) set."""
    steps = raw.get("steps")
    if steps is not None and steps.num_rows:
        meta["steps"] = int(pc.max(steps.column("step")).as_py()) + 1
    epochs = raw.get("epochs")
    meta["epochs"] = 0 if epochs is None else epochs.num_rows
    return meta
