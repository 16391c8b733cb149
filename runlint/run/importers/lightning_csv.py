"""Import a Lightning ``CSVLogger`` folder: ``metrics.csv`` (wide, sparse) and ``hparams.yaml``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from runlint.run import limits
from runlint.run.importers.build import scalar_tables, with_counts
from runlint.run.importers.hparams import hparams_meta
from runlint.run.views import NothingLogged, Run, RunError, from_tables

__all__ = ["load", "read_metrics"]

METRICS = "metrics.csv"


def read_metrics(text: str) -> tuple[pd.DataFrame, bool, int]:
    """Long ``(name, step, epoch, value)`` rows of a metrics.csv text.

    Returns the rows, whether the last line was cut short (a run being written: it is dropped)
    and how many lines were damaged (wrong field count, a step that is not a number).
    """
    truncated = bool(text) and not text.endswith(("\n", "\r"))
    if truncated:
        text = text[: max(text.rfind("\n"), 0)]
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return pd.DataFrame(columns=["name", "step", "epoch", "value"]), truncated, 0
    header, body = rows[0], rows[1:]
    good = [r for r in body if len(r) == len(header)]
    damaged = len(body) - len(good)
    table = pd.DataFrame(good, columns=header, dtype=str) if good else pd.DataFrame(columns=header)
    if "step" not in table.columns:
        raise ValueError("no 'step' column")
    step = pd.to_numeric(table["step"], errors="coerce")
    ok = step.notna() & (step % 1 == 0)
    damaged += int((~ok & (table["step"] != "")).sum())
    epoch = (
        pd.to_numeric(table["epoch"], errors="coerce")
        if "epoch" in table.columns
        else pd.Series(float("nan"), index=table.index)
    )
    metrics = [c for c in dict.fromkeys(header) if c not in ("step", "epoch") and c]
    if table.columns.has_duplicates:
        raise ValueError("repeated column names")
    cells = table.loc[ok, metrics].melt(var_name="name", value_name="cell", ignore_index=False)
    cells = cells[cells["cell"] != ""]
    long = pd.DataFrame(
        {
            "name": cells["name"].to_numpy(),
            "step": step[cells.index].astype("int64").to_numpy(),
            "epoch": epoch[cells.index].to_numpy(),
            "value": pd.to_numeric(cells["cell"], errors="coerce").astype("float64").to_numpy(),
        }
    )
    return long, truncated, damaged


def load(path: Path) -> Run:
    """Read ``path/metrics.csv`` (and ``hparams.yaml``) into a ``Run``."""
    file = path / METRICS if path.is_dir() else path
    folder = file.parent
    try:
        text = limits.read_text(file)
    except limits.TooLarge as exc:
        raise RunError(f"{folder}: {exc}") from None
    except OSError as exc:
        raise RunError(f"{folder}: cannot read {file.name} ({exc.strerror or exc})") from None
    try:
        long, truncated, damaged = read_metrics(text)
    except (ValueError, csv.Error) as exc:
        raise RunError(f"{folder}: {file.name} is not a Lightning metrics file ({exc})") from None
    if long.empty:
        raise NothingLogged(f"{folder}: {file.name} holds no metrics yet")
    imported = scalar_tables(long)
    raw = imported.raw
    meta, provenance = hparams_meta(folder)
    meta.update(
        {
            "provenance": provenance,
            "imported_from": "lightning",
            "imported_names": imported.mapping,
            "summary": imported.summary,
            "import": {"rows": len(long), "truncated": truncated, "damaged_lines": damaged},
        }
    )
    return from_tables(
        folder, with_counts(meta, raw), raw, source="lightning", complete=not truncated
    )
