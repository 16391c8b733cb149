"""Per-layer views for the RL3/RL4/RL5/RL7 rules: parameter kinds, depth order, window summaries.

Torch-free. Everything works on whole columns (groupby/numpy): a rule asks for a per-parameter
or per-module summary over a window of steps and compares a layer with its *peers* — dense
weights with dense weights, never an embedding or a LayerNorm gain with a Linear weight.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from runlint.run import Run

__all__ = [
    "BIAS",
    "DENSE",
    "EMBEDDING",
    "NORM",
    "OTHER",
    "RELU_KINDS",
    "SQUASHING_KINDS",
    "finite_activations",
    "fmt",
    "input_output_ratio",
    "lr_window",
    "module_table",
    "names",
    "param_table",
    "per_module",
    "per_param",
    "step_range",
    "step_window",
]

#: Parameter kinds: weight matrices/kernels of Linear, Conv, attention projections, ...
DENSE = "dense"
BIAS = "bias"
NORM = "norm"  # BatchNorm/LayerNorm/GroupNorm/RMSNorm gains and shifts
EMBEDDING = "embedding"
OTHER = "other"  # free-standing parameters: positional embeddings, scalars, gates, ...

#: Activation kinds whose outputs saturate at the ends of their range (seed: tanh in [-1, 1]).
SQUASHING_KINDS = ("tanh", "sigmoid", "hardtanh", "softsign")
#: Activation kinds that output exactly 0 for a negative input and can die.
RELU_KINDS = ("relu", "relu6")

_NORM_HINTS = ("norm", "bn", "ln", "gn")
_PARAM_TABLES: weakref.WeakKeyDictionary[Run, pd.DataFrame] = weakref.WeakKeyDictionary()


def _kind(module_type: str, role: str, name: str, ndim: int | None) -> str:
    """The kind of one parameter from its owning module type, role, name and rank."""
    mtype = module_type.lower()
    leaf = name.rsplit(".", 1)[-1].lower()
    if "norm" in mtype:
        return NORM
    if "embedding" in mtype:
        return EMBEDDING
    if not mtype:  # no metadata (imported run): guess from the name
        parts = name.lower().split(".")
        if any(p.startswith(_NORM_HINTS) for p in parts[:-1]):
            return NORM
        if any("emb" in p for p in parts[:-1]):
            return EMBEDDING
        if leaf.endswith("bias"):
            return BIAS
        return DENSE if leaf.endswith("weight") or leaf == "kernel" else OTHER
    if "bias" in role.lower() or (ndim is not None and ndim <= 1):
        return BIAS if "bias" in role.lower() or leaf.endswith("bias") else OTHER
    if role.lower().endswith("weight") or ndim is None:
        return DENSE
    return OTHER


def param_table(run: Run) -> pd.DataFrame:
    """One row per parameter (index: name) with its layer, kind and depth.

    Columns: ``layer`` (owning module's name), ``kind`` (``DENSE``/``BIAS``/``NORM``/
    ``EMBEDDING``/``OTHER``), ``depth`` (order in ``meta.params``, i.e. the model's
    ``named_parameters()`` order, input side first), ``dense_depth`` (0-based rank among the
    dense weights, NaN for others), ``module_type``, ``role``, ``trainable``, ``in_optimizer``,
    ``group``, ``fan_in``, ``numel``, ``ndim``. Built from ``meta["params"]`` when recorded, else
    from the parameter names in the ``params`` table (imported runs; kinds are guessed).
    """
    cached = _PARAM_TABLES.get(run)
    if cached is not None:
        return cached
    rows: list[dict[str, Any]] = []
    meta_params = run.meta.get("params") or []
    if meta_params:
        for p in meta_params:
            name = str(p.get("name", ""))
            shape = p.get("shape")
            ndim = len(shape) if isinstance(shape, list) else None
            rows.append(
                {
                    "param": name,
                    "module_type": str(p.get("module_type") or ""),
                    "role": str(p.get("role") or name.rsplit(".", 1)[-1]),
                    "trainable": p.get("trainable", True) is not False,
                    "in_optimizer": p.get("in_optimizer", True) is not False,
                    "group": p.get("group"),
                    "fan_in": p.get("fan_in"),
                    "numel": p.get("numel"),
                    "ndim": ndim,
                }
            )
    elif not run.params.empty:
        names = pd.unique(run.params["param"])
        rows = [
            {
                "param": str(n),
                "module_type": "",
                "role": str(n).rsplit(".", 1)[-1],
                "trainable": True,
                "in_optimizer": True,
                "group": None,
                "fan_in": None,
                "numel": None,
                "ndim": None,
            }
            for n in names
        ]
    table = pd.DataFrame(
        rows,
        columns=[
            "param",
            "module_type",
            "role",
            "trainable",
            "in_optimizer",
            "group",
            "fan_in",
            "numel",
            "ndim",
        ],
    )
    table["layer"] = [n.rsplit(".", 1)[0] if "." in n else "" for n in table["param"]]
    table["kind"] = [
        _kind(m, r, n, None if pd.isna(d) else int(d))
        for m, r, n, d in zip(
            table["module_type"], table["role"], table["param"], table["ndim"], strict=True
        )
    ]
    table["depth"] = np.arange(len(table))
    dense = table["kind"] == DENSE
    table["dense_depth"] = np.where(dense, np.cumsum(dense) - 1, np.nan)
    table = table.set_index("param")
    _PARAM_TABLES[run] = table
    return table


def module_table(run: Run) -> pd.DataFrame:
    """Leaf modules in definition order (index: name) with ``type``, ``activation`` and ``depth``.

    From ``meta["modules"]``; for runs without it, the modules seen in ``activations`` in order
    of first appearance.
    """
    mods = run.meta.get("modules") or []
    if mods:
        frame = pd.DataFrame(
            [
                {
                    "module": str(m.get("name", "")),
                    "type": str(m.get("type") or ""),
                    "activation": m.get("activation"),
                }
                for m in mods
            ]
        )
    elif not run.activations.empty:
        acts = run.activations.drop_duplicates("module")
        frame = pd.DataFrame(
            {"module": acts["module"].astype(str), "type": "", "activation": acts["kind"]}
        )
    else:
        frame = pd.DataFrame(columns=["module", "type", "activation"])
    frame["depth"] = np.arange(len(frame))
    return frame.set_index("module")


def step_range(frame: pd.DataFrame) -> tuple[int, int]:
    """First and last recorded step of a long table with a ``step`` column."""
    steps = frame["step"].to_numpy()
    return int(steps.min()), int(steps.max())


def step_window(frame: pd.DataFrame, start: float, stop: float) -> pd.DataFrame:
    """Rows whose step lies in the ``[start, stop]`` fraction of the recorded step range."""
    lo, hi = step_range(frame)
    span = hi - lo
    steps = frame["step"].to_numpy()
    keep = (steps >= lo + start * span) & (steps <= lo + stop * span)
    return frame[keep]


def lr_window(run: Run, frame: pd.DataFrame, frac: float = 0.5) -> pd.DataFrame:
    """Rows at steps where the (group 0) learning rate is at least ``frac`` × its maximum.

    Skips warm-up and the tail of a decay schedule, where update ratios are small by design.
    Without a recorded learning rate, or when that leaves too little, all rows are kept.
    """
    steps = run.steps
    if "lr" not in steps.columns:
        return frame
    lr = steps["lr"].to_numpy(dtype=float)
    finite = np.isfinite(lr)
    if not finite.any() or np.nanmax(lr) <= 0:
        return frame
    good = steps.index.to_numpy()[finite & (lr >= frac * np.nanmax(lr))]
    out = frame[np.isin(frame["step"].to_numpy(), good)]
    return out if out["step"].nunique() >= 3 else frame


def per_param(frame: pd.DataFrame, column: str, q: float = 0.5) -> pd.Series:
    """The ``q`` quantile over steps of ``column`` for every parameter (finite values only)."""
    values = frame[column].to_numpy(dtype=float)
    ok = np.isfinite(values)
    return frame[ok].groupby("param", sort=False)[column].quantile(q)


def finite_activations(frame: pd.DataFrame) -> pd.DataFrame:
    """Activation rows whose mean and std are finite (a NaN forward pass says nothing)."""
    ok = np.isfinite(frame["mean"].to_numpy(dtype=float)) & np.isfinite(
        frame["std"].to_numpy(dtype=float)
    )
    return frame[ok]


def per_module(frame: pd.DataFrame, column: str, q: float = 0.5) -> pd.Series:
    """The ``q`` quantile over steps of an activation ``column`` per module (finite only)."""
    values = frame[column].to_numpy(dtype=float)
    ok = np.isfinite(values)
    return frame[ok].groupby("module", sort=False)[column].quantile(q)


def input_output_ratio(values: pd.Series, depth: pd.Series) -> tuple[float, str, str] | None:
    """Median of the input-side third of ``values`` over the median of the output-side third.

    ``values`` is indexed like ``depth`` (e.g. dense weights); returns the ratio and the names
    of the first and last layers compared, or ``None`` with fewer than three layers.
    """
    common = values.dropna().index.intersection(depth.dropna().index)
    if len(common) < 3:
        return None
    ordered = values[common].iloc[np.argsort(depth[common].to_numpy(), kind="stable")]
    third = max(1, len(ordered) // 3)
    head = float(np.median(ordered.iloc[:third]))
    tail = float(np.median(ordered.iloc[-third:]))
    if not (np.isfinite(head) and np.isfinite(tail)) or tail <= 0:
        return None
    return head / tail, str(ordered.index[0]), str(ordered.index[-1])


def fmt(value: float) -> str:
    """A number for a message: 3 significant digits, scientific outside [1e-3, 1e4)."""
    if not np.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
        return f"{value:.1e}"
    return f"{value:.3g}"


def names(items: Iterable[str], limit: int = 3) -> str:
    """``a, b, c and 4 more``."""
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"
