"""What the page draws of one run: its plots (small, quantized series), notes, and findings.

``run_payload(run, findings, first)`` returns a ``RunPage``: the JSON the page's script draws
from (``plots`` by id), the plot cards in page order (title, what each axis shows), one line
for every plot left out because the run lacks its data, where each finding is drawn, and the
row of the overview table. Nothing here imports a plotting library: the page draws with the
vendored uPlot (``assets/``).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from runlint.check.rule import Finding
from runlint.report.html.series import (
    BUCKETS,
    MISSING,
    bucket_minmax,
    deltas,
    drop_flat,
    ema,
    quantize,
    smooth,
)
from runlint.run import Run, RunError

__all__ = ["Card", "RunPage", "overlays", "place", "run_payload"]

LAYER_BUCKETS = 150  # per-layer curves: 20 lines on one plot, 4 pixels a bucket
HIST_COLUMNS = 60  # time columns of a histogram heatmap
MAX_FILTERS = 64  # first-layer filters shown (the recorder keeps at most 64 rows)
OVERLAY_POINTS = 300
CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"  # heatmap intensity, one character a cell
_CHAR_CODES = np.frombuffer(CHARS.encode("ascii"), dtype=np.uint8)


@dataclass
class Card:
    """One plot of a run section: ``id`` keys its data in the run's JSON."""

    id: str
    title: str
    about: str  # what it shows, one line under the title
    kind: str = "line"  # line | heatmaps | images
    findings: list[int] = field(default_factory=list)  # indices into the report's findings


@dataclass
class RunPage:
    """Everything the page shows of one run."""

    data: dict[str, Any]
    cards: list[Card]
    notes: list[str]
    row: dict[str, Any]
    overlay: dict[str, Any]
    placed: dict[int, list[str]] = field(default_factory=dict)  # finding → plot ids
    meta_rows: list[tuple[str, str]] = field(default_factory=list)
    params_rows: list[dict[str, Any]] = field(default_factory=list)


# -- the run -----------------------------------------------------------------------------------


class _Epochs:
    """Step → epoch (fraction of epochs completed), from the steps at which epochs closed."""

    def __init__(self, run: Run) -> None:
        ep = _frame(run, "epochs")
        self.xp: np.ndarray | None = None
        if "step" in ep.columns and len(ep):
            s = pd.to_numeric(ep["step"], errors="coerce").to_numpy(dtype=float)
            s = s[np.isfinite(s)]
            if s.size and np.all(np.diff(s) > 0):
                self.xp = np.concatenate([[0.0], s]) if s[0] > 0 else s
                first = 0 if s[0] > 0 else 1
                self.fp = np.arange(first, first + self.xp.size, dtype=float)

    @property
    def on(self) -> bool:
        return self.xp is not None and self.xp.size >= 2

    def __call__(self, steps: Any) -> np.ndarray:
        t = np.asarray(steps, dtype=float)
        if not self.on:
            return t
        assert self.xp is not None
        xp, fp = self.xp, self.fp
        out = np.interp(t, xp, fp)
        slope_hi = (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
        slope_lo = (fp[1] - fp[0]) / (xp[1] - xp[0])
        out = np.where(t > xp[-1], fp[-1] + (t - xp[-1]) * slope_hi, out)
        return np.where(t < xp[0], fp[0] + (t - xp[0]) * slope_lo, out)

    def mapping(self) -> dict[str, list[float]] | None:
        if not self.on:
            return None
        assert self.xp is not None
        return {"xp": self.xp.tolist(), "fp": self.fp.tolist()}


def _frame(run: Run, name: str) -> pd.DataFrame:
    try:
        frame = getattr(run, name)
    except RunError:
        raise
    except Exception:
        return pd.DataFrame()
    return frame if isinstance(frame, pd.DataFrame) else pd.DataFrame()


def _floats(series: Any) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _log_axis(values: np.ndarray, ratio: float = 100.0) -> bool:
    v = values[np.isfinite(values)]
    if v.size == 0 or (v <= 0).any():
        return False
    return bool(v.max() / v.min() > ratio)


def _line(
    x: np.ndarray, columns: dict[str, np.ndarray], log: bool, buckets: int = BUCKETS
) -> dict[str, Any]:
    """A line plot's data: steps as deltas and one quantized series per column."""
    names = list(columns)
    ys = np.column_stack([columns[n] for n in names]) if names else np.empty((len(x), 0))
    bx, by = bucket_minmax(np.asarray(x, dtype=np.int64), ys, buckets)
    bx, by = drop_flat(bx, by)
    series = []
    for i, name in enumerate(names):
        q = quantize(by[:, i], log=log)
        if q is not None:
            series.append({"label": name, "y": q})
        elif log and np.isfinite(by[:, i]).any():  # all 0 (a frozen layer): named, not drawn
            gap = np.full(by.shape[0], MISSING, dtype="<u2").tobytes()
            q = {"o": 0.0, "s": 1.0, "b": base64.b64encode(gap).decode(), "l": 1}
            series.append({"label": f"{name} (0: off the log axis)", "y": q})
    return {"x": deltas(bx), "series": series, "log": bool(log)}


def _wide(frame: pd.DataFrame, key: str, value: str) -> pd.DataFrame:
    """``step`` × ``key`` of a long table's ``value`` (order of first appearance)."""
    if value not in frame.columns or key not in frame.columns or "step" not in frame.columns:
        return pd.DataFrame()
    values = _floats(frame[value])
    if not np.isfinite(values).any():
        return pd.DataFrame()
    codes, names = pd.factorize(frame[key], sort=False)  # order of first appearance
    steps, row = np.unique(frame["step"].to_numpy(dtype=np.int64), return_inverse=True)
    ok = codes >= 0
    grid = np.full((steps.size, len(names)), np.nan)
    grid[row[ok], codes[ok]] = values[ok]  # views hold one row per step and key
    used = np.isfinite(grid).any(axis=0)
    columns = [str(n) for n, u in zip(names, used, strict=True) if u]
    return pd.DataFrame(grid[:, used], index=pd.Index(steps, name="step"), columns=columns)


def _layer_plot(wide: pd.DataFrame, log: bool) -> dict[str, Any]:
    cols = {str(c): wide[c].to_numpy(dtype=float, na_value=np.nan) for c in wide.columns}
    return _line(wide.index.to_numpy(), cols, log, LAYER_BUCKETS)


def _epoch_columns(run: Run, frame: pd.DataFrame, metric: str) -> list[str]:
    """Epoch columns of ``metric`` (loss or acc): train first, then validation, then others."""
    named = [run.column("epochs", f"{p}_{metric}") for p in ("train", "val")]
    found = [c for c in named if c is not None]
    for c in frame.columns:
        text = str(c).lower()
        if c in found or c == "step" or not pd.api.types.is_numeric_dtype(frame[c]):
            continue
        if metric in text or (metric == "acc" and "accuracy" in text):
            found.append(str(c))
    return found


def _heatmaps(frame: pd.DataFrame, source: str) -> list[dict[str, Any]]:
    """One heatmap per layer: time columns × bins, each column scaled to its largest bin."""
    rows = frame[frame["source"] == source] if "source" in frame.columns else frame.iloc[:0]
    out = []
    for name, group in rows.groupby("name", sort=False):
        group = group.sort_values("step")
        try:
            counts = np.stack([np.asarray(c, dtype=float) for c in group["counts"]])
            edges = np.asarray(group["edges"].iloc[0], dtype=float)
        except (ValueError, TypeError):
            continue
        steps = group["step"].to_numpy(dtype=np.int64)
        if counts.ndim != 2 or counts.shape[0] == 0:
            continue
        if counts.shape[0] > HIST_COLUMNS:  # sum neighbouring columns
            starts = np.linspace(0, counts.shape[0], HIST_COLUMNS + 1).astype(int)[:-1]
            counts = np.add.reduceat(counts, starts, axis=0)
            steps = steps[starts]
        counts = np.nan_to_num(counts, nan=0.0, posinf=0.0, neginf=0.0)
        top = counts.max(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            level = np.where(top > 0, counts / np.where(top > 0, top, 1.0), 0.0)
        cells = np.rint(np.sqrt(level) * (len(CHARS) - 1)).astype(int)  # sqrt: faint bins show
        text = _CHAR_CODES[cells.ravel()].tobytes().decode("ascii")
        bins = counts.shape[1]
        outer = bins == edges.size + 1  # below the first edge, between, above the last
        out.append(
            {
                "name": str(name),
                "x": deltas(steps),
                "bins": bins,
                "lo": float(edges[0]) if edges.size else 0.0,
                "hi": float(edges[-1]) if edges.size else 1.0,
                "outer": outer,
                "cells": text,
            }
        )
    return out


def _image_layout(shape: Sequence[int]) -> tuple[int, int, int] | None:
    """(channels, height, width) of one filter when the first layer takes an image."""
    dims = [int(d) for d in shape]
    if len(dims) == 4 and dims[1] in (1, 3) and dims[2] >= 2 and dims[3] >= 2:
        return dims[1], dims[2], dims[3]
    if len(dims) == 2:
        for c in (1, 3):
            side = math.isqrt(dims[1] // c) if dims[1] % c == 0 else 0
            if side >= 8 and side * side * c == dims[1]:
                return c, side, side
    return None


def _weights(run: Run, notes: list[str]) -> dict[str, Any] | None:
    frame = _frame(run, "weights")
    if frame.empty or not {"step", "param", "values"} <= set(frame.columns):
        notes.append("first-layer weights: none recorded")
        return None
    param = str(frame["param"].iloc[0])
    shapes = {str(p.get("name")): p.get("shape") for p in run.meta.get("params", []) or []}
    shape = shapes.get(param) or list(frame["shape"].iloc[0])
    layout = _image_layout(shape)
    if layout is None:
        dims = "×".join(str(int(d)) for d in shape)
        notes.append(
            f"first-layer weights: {param} ({dims}) does not take an image, so its weights "
            "are not drawn as pictures"
        )
        return None
    c, h, w = layout
    rows = frame[frame["param"] == param].sort_values("step")
    snaps = [rows.iloc[0]] if len(rows) == 1 else [rows.iloc[0], rows.iloc[-1]]
    images = []
    for snap in snaps:
        values = np.asarray(snap["values"], dtype=float)
        per = c * h * w
        n = min(values.size // per, MAX_FILTERS)
        if n == 0:
            continue
        filt = values[: n * per].reshape(n, c, h, w)
        lo = np.nanmin(filt, axis=(1, 2, 3), keepdims=True)
        hi = np.nanmax(filt, axis=(1, 2, 3), keepdims=True)
        scaled = (filt - lo) / np.where(hi > lo, hi - lo, 1.0)  # each filter to its own range
        pixels = np.nan_to_num(scaled * 255).astype(np.uint8).transpose(0, 2, 3, 1)  # n h w c
        data = base64.b64encode(pixels.tobytes()).decode("ascii")
        images.append({"step": int(snap["step"]), "n": n, "data": data})
    if not images:
        notes.append(f"first-layer weights: {param} snapshots are empty")
        return None
    return {"param": param, "c": c, "h": h, "w": w, "snapshots": images}


def place(finding: Finding, plots: set[str], params: set[str], modules: set[str]) -> list[str]:
    """The plots a finding is drawn on: the signal it names (``where``), else its family's."""
    where = (finding.where or "").strip()
    base = where.split(" at ")[0].strip()
    low = base.lower()
    code = finding.code
    if base in params:
        wanted = ["update-ratio", "grad-norm", "hist-gradient"]
        if code.startswith("RL40") and code in ("RL402", "RL403"):
            wanted = ["grad-norm", "hist-gradient", "update-ratio"]
        if code in ("RL703", "RL104"):
            wanted = ["weights", *wanted]
    elif base in modules:
        wanted = ["act-saturated", "act-dead", "act-dead-units", "act-std", "hist-activation"]
        if code == "RL503":
            wanted = ["act-dead-units", "act-dead", "act-std", "hist-activation"]
        if code == "RL502":
            wanted = ["act-std", "act-saturated", "act-dead", "hist-activation"]
    elif low in ("loss", "data_loss", "reg_loss", "train_loss_step") or low.startswith("loss"):
        wanted = ["loss"]
    elif "acc" in low:
        wanted = ["epoch-acc"]
    elif low.startswith(("val_", "eval_", "train_", "test_")) and "loss" in low:
        wanted = ["epoch-loss"]
    elif low == "update_ratio":
        wanted = ["update-ratio"]
    elif low in ("optimizer", "lr", "weight_decay", "momentum") or low.startswith("param group"):
        wanted = ["lr"]
    else:
        family = {
            "RL1": ["loss"],
            "RL2": ["loss"],
            "RL3": ["epoch-acc", "epoch-loss"],
            "RL4": ["grad-norm", "update-ratio"] if code == "RL403" else ["update-ratio"],
            "RL5": ["act-saturated", "act-dead", "act-std"],
            "RL6": ["lr"],
        }
        wanted = family.get(code[:3], [])
        if code in ("RL401",):
            wanted = ["update-ratio"]
    present = [p for p in wanted if p in plots]
    if present:
        return present
    return ["loss"] if "loss" in plots and finding.steps is not None else ["meta"]


def run_payload(run: Run, findings: Sequence[tuple[int, Finding]], index: int) -> RunPage:
    """The page's view of ``run``; ``findings`` are (report-wide index, finding) pairs."""
    notes: list[str] = []
    stopped = run.meta.get("stopped")
    if isinstance(stopped, dict):  # the live check ended training (runlint.check.live)
        notes.append(
            f"training stopped by the live check at step {stopped.get('step', '?')} "
            f"(stop_on={stopped.get('policy', '?')}): {stopped.get('reason', '')}"
        )
    cards: list[Card] = []
    plots: dict[str, Any] = {}
    epochs = _Epochs(run)
    xunit = "epoch" if epochs.on else "step"

    steps = _frame(run, "steps")
    loss_smooth: np.ndarray | None = None
    loss_steps: np.ndarray | None = None
    if "loss" in steps.columns and steps["loss"].notna().any():
        s = steps.index.to_numpy(dtype=np.int64)
        loss = _floats(steps["loss"])
        loss_smooth, loss_steps = smooth(loss), s
        cols = {"loss": loss, "smoothed": loss_smooth}
        for extra in ("data_loss", "reg_loss"):
            if extra in steps.columns and steps[extra].notna().any():
                cols[extra] = _floats(steps[extra])
        plots["loss"] = _line(s, cols, _log_axis(loss))
        cards.append(
            Card(
                "loss",
                "Loss",
                f"per step (min/max per pixel) and smoothed (EMA both ways), against {xunit}s",
            )
        )
    else:
        notes.append("loss: no per-step loss recorded")

    groups = _frame(run, "groups")
    lr_cols: dict[str, np.ndarray] = {}
    lr_x: np.ndarray | None = None
    if "lr" in groups.columns and groups["lr"].notna().any() and "step" in groups.columns:
        wide = _wide(groups.assign(group=groups.get("group", 0)), "group", "lr")
        if not wide.empty:
            lr_x = wide.index.to_numpy()
            lr_cols = {
                f"group {c}" if len(wide.columns) > 1 else "lr": wide[c].to_numpy(dtype=float)
                for c in wide.columns
            }
    elif "lr" in steps.columns and steps["lr"].notna().any():
        lr_x, lr_cols = steps.index.to_numpy(), {"lr": _floats(steps["lr"])}
    if lr_x is not None and lr_cols:
        allv = np.concatenate(list(lr_cols.values()))
        plots["lr"] = _line(lr_x, lr_cols, _log_axis(allv, 10.0))
        cards.append(Card("lr", "Learning rate", f"schedule per param group, against {xunit}s"))
    else:
        notes.append("learning rate: not recorded")

    ep = _frame(run, "epochs")
    if not ep.empty and "step" in ep.columns and epochs.on:
        ex = epochs(ep["step"].to_numpy(dtype=float))
        for metric, title in (("loss", "Train / validation loss"), ("acc", "Train / val accuracy")):
            cols_e = _epoch_columns(run, ep, metric)
            if not cols_e:
                notes.append(f"epoch {metric}: no {metric} per epoch recorded")
                continue
            series = []
            for c in cols_e:
                q = quantize(_floats(ep[c]))
                if q is not None:
                    series.append({"label": c, "y": q})
            plots[f"epoch-{metric}"] = {
                "xf": [round(float(v), 4) for v in ex],
                "series": series,
                "log": False,
            }
            cards.append(Card(f"epoch-{metric}", title, "per epoch (the gap is the overfitting)"))
    else:
        notes.append("train/validation curves: no epochs recorded")

    params = _frame(run, "params")
    param_names: set[str] = set()
    if not params.empty and "param" in params.columns:
        param_names = {str(n) for n in params["param"].unique()}
        wide = _wide(params, "param", "update_ratio")
        if not wide.empty:
            plots["update-ratio"] = _layer_plot(wide, log=True)
            plots["update-ratio"]["band"] = [1e-4, 1e-2]
            plots["update-ratio"]["target"] = 1e-3
            cards.append(
                Card(
                    "update-ratio",
                    "Update / parameter ratio",
                    "‖Δθ‖/‖θ‖ per parameter, log axis; the seed wants ~1e-3 (shaded 1e-4…1e-2)",
                )
            )
        wide = _wide(params, "param", "grad_norm")
        if not wide.empty:
            plots["grad-norm"] = _layer_plot(wide, log=True)
            cards.append(Card("grad-norm", "Gradient norm", "‖∇θ‖ per parameter, log axis"))
    else:
        notes.append("per-layer update ratios and gradients: not recorded")
    acts = _frame(run, "activations")
    modules: set[str] = set()
    if not acts.empty and "module" in acts.columns:
        modules = {str(n) for n in acts["module"].unique()}
        kinds = acts["kind"].astype(str).str.lower() if "kind" in acts.columns else None
        is_relu = kinds.str.contains("relu") if kinds is not None else None
        relu = acts[is_relu] if is_relu is not None else acts.iloc[:0]
        squashing = acts[~is_relu] if is_relu is not None else acts
        for pid, frame, col, title, about in (
            (
                "act-saturated",
                squashing,
                "saturated",
                "Saturated activations",
                "fraction |a|>0.99 (tanh) or outside 0.01…0.99 (sigmoid), per module",
            ),
            ("act-dead", relu, "dead", "Dead ReLU outputs", "fraction a ≤ 0, per ReLU module"),
            (
                "act-dead-units",
                relu,
                "dead_units",
                "Dead units",
                "fraction of units never positive in the sample, per ReLU module",
            ),
            ("act-std", acts, "std", "Activation std", "standard deviation, per module"),
        ):
            wide = _wide(frame, "module", col)
            if wide.empty:
                continue
            plots[pid] = _layer_plot(wide, log=False)
            cards.append(Card(pid, title, about))
    else:
        notes.append("activation statistics: not recorded")

    hist = _frame(run, "histograms")
    for source, pid, title, about in (
        ("activation", "hist-activation", "Activation histograms", "per module, over steps"),
        ("gradient", "hist-gradient", "Gradient histograms", "log10 |g| per parameter"),
    ):
        maps = _heatmaps(hist, source) if not hist.empty else []
        if maps:
            plots[pid] = {"maps": maps}
            cards.append(Card(pid, title, about, kind="heatmaps"))
        else:
            notes.append(f"{title.lower()}: none recorded")

    weights = _weights(run, notes)
    if weights is not None:
        plots["weights"] = weights
        cards.append(
            Card(
                "weights",
                "First-layer weights",
                f"{weights['param']}: each filter scaled to its own range, first vs last snapshot",
                kind="images",
            )
        )

    # findings: where each is drawn
    ids = set(plots)
    placed: dict[int, list[str]] = {}
    by_card = {c.id: c for c in cards}
    marks = []
    for k, f in findings:
        where = place(f, ids, param_names, modules)
        placed[k] = where
        for pid in where:
            if pid in by_card:
                by_card[pid].findings.append(k)
        layer = f.where if f.where in param_names or f.where in modules else None
        marks.append(
            {
                "k": k,
                "code": f.code,
                "sev": f.severity.value,
                "steps": list(f.steps) if f.steps is not None else None,
                "plots": where,
                "layer": layer,
                "msg": f.message,
            }
        )
    data = {
        "i": index,
        "name": run.name,
        "xunit": xunit,
        "epochs": epochs.mapping(),
        "plots": plots,
        "findings": marks,
    }
    overlay = _overlay(run, epochs, loss_steps, loss_smooth)
    page = RunPage(data, cards, notes, _row(run, ep), overlay, placed)
    page.meta_rows, page.params_rows = _meta(run)
    return page


# -- overview ----------------------------------------------------------------------------------


def _last(frame: pd.DataFrame, column: str | None) -> float | None:
    if column is None or column not in frame.columns:
        return None
    v = _floats(frame[column])
    v = v[np.isfinite(v)]
    return float(v[-1]) if v.size else None


def _row(run: Run, ep: pd.DataFrame) -> dict[str, Any]:
    """The overview table's numbers: final metrics and the main hyperparameters."""
    row: dict[str, Any] = {}
    for metric in ("train_loss", "val_loss", "train_acc", "val_acc"):
        col = run.column("epochs", metric) if not ep.empty else None
        row[metric] = _last(ep, col)
    steps = _frame(run, "steps")
    if row["train_loss"] is None and "loss" in steps.columns:
        sm = ema(_floats(steps["loss"]))
        sm = sm[np.isfinite(sm)]
        row["train_loss"] = float(sm[-1]) if sm.size else None
    meta = run.meta
    opt = _dict(meta.get("optimizer"))
    defaults = _dict(opt.get("defaults"))
    groups = opt.get("groups") if isinstance(opt.get("groups"), list) else []
    g0 = _dict(groups[0] if groups else None)
    lr = g0.get("initial_lr", g0.get("lr", defaults.get("lr")))
    lr_seen = _frame(run, "groups")
    if "lr" in lr_seen.columns and lr_seen["lr"].notna().any():
        lr = float(np.nanmax(_floats(lr_seen["lr"])))
    elif lr is None and "lr" in steps.columns and steps["lr"].notna().any():
        lr = float(np.nanmax(_floats(steps["lr"])))
    betas = g0.get("betas", defaults.get("betas"))
    momentum = g0.get("momentum", defaults.get("momentum"))
    if momentum is None and isinstance(betas, list | tuple) and betas:
        momentum = betas[0]
    row.update(
        optimizer=str(opt.get("class", "")) or None,
        lr=_num(lr),
        batch_size=_num(meta.get("batch_size")),
        weight_decay=_num(g0.get("weight_decay", defaults.get("weight_decay"))),
        momentum=_num(momentum),
        epochs=len(ep) if not ep.empty else None,
        steps=len(steps) if not steps.empty else None,
        params=_num(meta.get("num_parameters")),
    )
    return row


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _overlay(
    run: Run, epochs: _Epochs, steps: np.ndarray | None, smooth: np.ndarray | None
) -> dict[str, Any]:
    """The run's curves for the overlay plots, on its own x (the page puts runs on one grid)."""
    out: dict[str, Any] = {"xunit": "epoch" if epochs.on else "step"}
    if steps is not None and smooth is not None and steps.size:
        x = epochs(steps)
        keep = np.linspace(0, steps.size - 1, min(OVERLAY_POINTS, steps.size)).astype(int)
        out["loss"] = (x[keep], smooth[keep])
    ep = _frame(run, "epochs")
    if not ep.empty and "step" in ep.columns and epochs.on:
        ex = epochs(ep["step"].to_numpy(dtype=float))
        for metric in ("val_loss", "val_acc"):
            col = run.column("epochs", metric)
            if col is not None:
                out[metric] = (ex, _floats(ep[col]))
    return out


def overlays(pages: Sequence[RunPage | None]) -> dict[str, Any]:
    """The overlay plots' data: every run's curve on one shared x grid per plot."""
    unit = (
        "epoch"
        if any(p is not None and p.overlay.get("xunit") == "epoch" for p in pages)
        else "step"
    )
    out: dict[str, Any] = {"xunit": unit, "plots": {}}
    left_out: list[str] = []
    for key in ("loss", "val_loss", "val_acc"):
        curves = {
            i: p.overlay[key]
            for i, p in enumerate(pages)
            if p is not None and key in p.overlay and p.overlay["xunit"] == unit
        }
        if not curves:
            continue
        if key == "loss":
            top = max(float(np.nanmax(x)) for x, _ in curves.values())
            grid = np.linspace(0.0, top, OVERLAY_POINTS)
        else:
            grid = np.unique(np.round(np.concatenate([x for x, _ in curves.values()]), 3))
        series = []
        for i, (x, y) in curves.items():
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum() == 0:
                continue
            xs, ys = x[ok], y[ok]
            if key == "loss":
                yy = np.interp(grid, xs, ys, left=np.nan, right=np.nan)
            else:
                lookup = dict(zip(np.round(xs, 3).tolist(), ys.tolist(), strict=False))
                yy = np.array([lookup.get(g, np.nan) for g in grid.tolist()])
            q = quantize(yy, log=key == "loss" and _log_axis(yy, 1e3))
            if q is not None:
                series.append({"run": i, "y": q})
        out["plots"][key] = {"xf": [round(float(g), 4) for g in grid], "series": series}
    for p in pages:
        if p is not None and p.overlay["xunit"] != unit:
            left_out.append(str(p.data["name"]))
    out["left_out"] = left_out
    return out


# -- metadata ----------------------------------------------------------------------------------

PARAM_KEYS = ("name", "shape", "numel", "role", "trainable", "in_optimizer", "group", "init_std")


def _meta(run: Run) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    rows = [("source", run.source), ("path", str(run.path))]
    if not run.complete:
        rows.append(("complete", "no (killed or still running)"))
    for key, value in run.meta.items():
        if key in ("params", "modules"):
            continue
        rows.append((str(key), _text(value)))
    params = [
        {k: p.get(k) for k in PARAM_KEYS}
        for p in (run.meta.get("params") or [])
        if isinstance(p, dict)
    ]
    return rows, params


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        text = json.dumps(value, default=str, ensure_ascii=False)
        return text if len(text) <= 600 else text[:597] + "..."
    return str(value)
