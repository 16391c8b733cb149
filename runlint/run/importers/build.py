"""Long ``(name, step, value)`` scalars to the recorder's raw tables: steps, groups, epochs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from runlint.run.importers.names import Signal, classify, sanitize

__all__ = ["scalar_tables"]


def scalar_tables(
    scalars: pd.DataFrame,
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Raw ``steps``, ``groups`` and ``epochs`` tables from long scalars, and the name mapping.

    ``scalars`` has columns ``name``, ``step``, ``value`` and optionally ``time`` (wall clock,
    seconds) and ``epoch`` (an epoch number logged with each row, as in Lightning's CSV). A name
    logged twice at one step keeps its last value (a resumed run rewrites its tail). The mapping
    says where each logged name went (``"train/loss" -> "steps.loss"``).
    """
    if scalars.empty:
        return {}, {}
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
    epoch_rows = frame[(frame["table"] == "epochs") & ~frame["ambiguous"]]
    boundaries = set(epoch_rows["step"].unique())
    for name in frame.loc[frame["ambiguous"], "name"].unique():
        rows = frame["name"] == name
        if not boundaries or not set(frame.loc[rows, "step"].unique()) <= boundaries:
            frame.loc[rows, "table"] = "steps"  # logged every step: a per-step metric
    raw = {
        "steps": _steps(frame[frame["table"] == "steps"]),
        "groups": _groups(frame[frame["table"] == "groups"]),
        "epochs": _epochs(frame[frame["table"] == "epochs"]),
    }
    mapping = {n: f"{signals[n].table}.{signals[n].column}" for n in names}
    for name in frame.loc[frame["ambiguous"] & (frame["table"] == "steps"), "name"].unique():
        mapping[name] = f"steps.{signals[name].column}"
    return {k: v for k, v in raw.items() if not v.empty}, mapping


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


def _wide(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    frame = frame.drop_duplicates([*keys, "column"], keep="last")
    wide = frame.pivot(index=keys, columns="column", values="value")
    wide.columns.name = None
    return wide.astype("float64")


def _steps(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame()
    wide = _wide(frame, ["step"])
    if "time" in frame.columns and frame["time"].notna().any():
        wide["time"] = frame.groupby("step")["time"].max()
    return _finish(wide)


def _groups(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame()
    return _finish(_wide(frame, ["step", "group"]))


def _epochs(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per epoch: by the logged epoch number when there is one, else by step order."""
    if frame.empty:
        return pd.DataFrame()
    if "epoch" in frame.columns and frame["epoch"].notna().all():
        frame = frame.assign(epoch=frame["epoch"].astype("int64"))
        wide = _wide(frame, ["epoch"])
        wide.insert(0, "step", frame.groupby("epoch")["step"].max())
    else:
        wide = _wide(frame, ["step"]).reset_index()
        wide.index.name = "epoch"
    return _finish(wide)


def _finish(wide: pd.DataFrame) -> pd.DataFrame:
    out = wide.reset_index()
    out.insert(1 if "group" not in out.columns else 2, "rank", 0)
    if "epoch" in out.columns and "step" in out.columns:
        out = out[["epoch", "step", *[c for c in out.columns if c not in ("epoch", "step")]]]
    return out
