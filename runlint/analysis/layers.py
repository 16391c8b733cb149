"""Per-layer views for the RL3/RL4/RL5/RL7 rules: parameter kinds, depth order, window summaries.

Torch-free. Everything works on whole columns (groupby/numpy): a rule asks for a per-parameter
or per-module summary over a window of steps and compares a layer with its *peers* — dense
weights with dense weights, never an embedding or a LayerNorm gain with a Linear weight.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from runlint.run import Run

__all__ = [
    "BATCH_NORMS",
    "BIAS",
    "DENSE",
    "EMBEDDING",
    "NORM",
    "OTHER",
    "RELU_KINDS",
    "SQUASHING_KINDS",
    "Long",
    "acts_long",
    "batchnorm_inputs",
    "capacity_limit",
    "dense_params",
    "dense_update_ratios",
    "input_output_ratio",
    "lr_mask",
    "module_table",
    "param_table",
    "params_long",
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
    return run.memo("param_table", lambda: _param_table(run))


def _param_table(run: Run) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    if run.setup.params:
        for p in run.setup.params:
            rows.append(
                {
                    "param": p.name,
                    "module_type": p.module_type,
                    "role": p.role,
                    "trainable": p.trainable,
                    "in_optimizer": p.in_optimizer,
                    "group": p.group,
                    "fan_in": p.fan_in,
                    "numel": p.numel,
                    "ndim": len(p.shape) if p.shape is not None else None,
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
    cols = ["param", "module_type", "role", "trainable", "in_optimizer", "group", "fan_in"]
    data: dict[str, Any] = {c: [r[c] for r in rows] for c in [*cols, "numel", "ndim"]}
    data["layer"] = [_owner(n) for n in data["param"]]
    data["kind"] = [
        _kind(m, r, n, d)
        for m, r, n, d in zip(
            data["module_type"], data["role"], data["param"], data["ndim"], strict=True
        )
    ]
    dense = np.array([k == DENSE for k in data["kind"]], dtype=bool)
    data["depth"] = np.arange(len(dense))
    data["dense_depth"] = np.where(dense, np.cumsum(dense) - 1, np.nan)
    data["trainable"] = np.array(data["trainable"], dtype=bool)
    data["in_optimizer"] = np.array(data["in_optimizer"], dtype=bool)
    index = pd.Index(np.array(data.pop("param"), dtype=object), name="param")
    table = pd.DataFrame(
        {k: np.asarray(v, dtype=object) if isinstance(v, list) else v for k, v in data.items()},
        index=index,
    )
    return table


class Long:
    """A long table (``params`` or ``activations``) as numpy arrays, factorized by its key.

    Reductions per key are numpy (a row sort of a keys × samples grid, or ``bincount``), so a
    rule costs well under a millisecond per summary even on 10,000-step runs. Get one with
    ``params_long(run)`` or ``acts_long(run)``: built once per run (``Run.memo``) and shared
    by every rule; what it derives from its own columns it keeps.
    """

    def __init__(self, frame: pd.DataFrame, key: str) -> None:
        self.frame = frame
        codes, uniques = pd.factorize(frame[key], sort=False)
        self.codes = np.asarray(codes, dtype=np.int64)
        self.keys = pd.Index(np.asarray(uniques, dtype=object).astype(str), name=key)
        self.step = frame["step"].to_numpy(dtype=np.int64)
        self.order = np.argsort(self.codes, kind="stable")  # rows grouped by key
        self._derived: dict[Any, Any] = {}  # steps, first rows, finite masks
        self._cols: dict[str, np.ndarray] = {}

    def steps(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct steps, and for every row the index of its step among them."""
        if "_steps" not in self._derived:
            step = self.step
            if len(step) and bool((step[1:] >= step[:-1]).all()):  # sorted: no sort needed
                new = np.concatenate(([True], step[1:] != step[:-1]))
                self._derived["_steps"] = (step[new], np.cumsum(new) - 1)
            else:
                self._derived["_steps"] = np.unique(step, return_inverse=True)
        found: tuple[np.ndarray, np.ndarray] = self._derived["_steps"]
        return found

    def first(self, column: str) -> pd.Series:
        """The value of a (non-numeric) column at each key's first row, e.g. ``kind``."""
        if ("_first", column) not in self._derived:
            idx = self.first_rows()
            values = self.frame[column].take(idx).to_numpy(dtype=object)
            self._derived[("_first", column)] = pd.Series(
                np.asarray(values, dtype=object).astype(str), index=self.keys[: len(idx)]
            )
        found: pd.Series = self._derived[("_first", column)]
        return found

    def first_rows(self) -> np.ndarray:
        """Each distinct code's first row, in code order (``np.unique``'s ``return_index``)."""
        if "_first_rows" not in self._derived:
            grouped = self.codes[self.order]
            new = np.ones(len(grouped), dtype=bool)
            new[1:] = grouped[1:] != grouped[:-1]
            self._derived["_first_rows"] = self.order[new]
        found: np.ndarray = self._derived["_first_rows"]
        return found

    def rows_of(self, keys: Iterable[str]) -> np.ndarray:
        """Mask of the rows whose key is in ``keys``."""
        wanted = np.zeros(len(self.keys) + 1, dtype=bool)
        wanted[self.keys.get_indexer(list(keys))] = True
        wanted[-1] = False  # get_indexer's -1 for unknown keys
        return wanted[self.codes]

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def empty(self) -> bool:
        return len(self.codes) == 0

    def col(self, name: str) -> np.ndarray:
        """A column as float64 (NaN where absent)."""
        if name not in self._cols:
            if name in self.frame.columns:
                self._cols[name] = self.frame[name].to_numpy(dtype=float, na_value=np.nan)
            else:
                self._cols[name] = np.full(len(self.codes), np.nan)
        return self._cols[name]

    def finite(self, *columns: str) -> np.ndarray:
        """Rows where every named column is finite (a NaN forward pass says nothing); a copy."""
        key = ("_finite", columns)
        if key not in self._derived:
            mask = np.ones(len(self), dtype=bool)
            for c in columns:
                mask &= np.isfinite(self.col(c))
            self._derived[key] = mask
        found: np.ndarray = self._derived[key]
        return found.copy()

    def window(self, start: float, stop: float) -> np.ndarray:
        """Mask of rows whose step lies in the ``[start, stop]`` fraction of the step range."""
        if self.empty:
            return np.zeros(0, dtype=bool)
        lo, hi = int(self.step.min()), int(self.step.max())
        span = hi - lo
        return (self.step >= lo + start * span) & (self.step <= lo + stop * span)

    def steps_in(self, mask: np.ndarray | None = None) -> tuple[int, int]:
        steps = self.step if mask is None else self.step[mask]
        if len(steps) == 0:
            return (0, 0)
        return int(steps.min()), int(steps.max())

    def quantile(self, values: np.ndarray, q: float, mask: np.ndarray | None = None) -> pd.Series:
        """Per-key ``q`` quantile of ``values`` over the finite rows in ``mask``."""
        ok = np.isfinite(values) if mask is None else mask & np.isfinite(values)
        sel = self.order[ok[self.order]]
        codes, vals = self.codes[sel], values[sel]
        n = len(self.keys)
        counts = np.bincount(codes, minlength=n)
        out = np.full(n, np.nan)
        if len(vals) == 0:
            return pd.Series(out, index=self.keys)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        width = int(counts.max())
        has = counts > 0
        pos = q * (counts[has] - 1)
        lo = np.floor(pos).astype(np.int64)
        frac = pos - lo
        hi = np.minimum(lo + 1, counts[has] - 1)
        if n * width <= 4 * len(vals) + 4096:  # balanced keys: sort each row of a grid
            if bool((counts == width).all()):  # rows come grouped by key: the grid is vals
                grid = vals.reshape(n, width)
            else:
                grid = np.full((n, width), np.inf)
                grid[codes, np.arange(len(vals)) - starts[codes]] = vals
            grid.sort(axis=1)
            flat, base = grid.reshape(-1), np.arange(n) * width
        else:
            flat = vals[np.lexsort((vals, codes))]
            base = starts
        out[has] = flat[base[has] + lo] * (1 - frac) + flat[base[has] + hi] * frac
        return pd.Series(out, index=self.keys)

    def median(self, values: np.ndarray, mask: np.ndarray | None = None) -> pd.Series:
        return self.quantile(values, 0.5, mask)

    def at_start(self, values: np.ndarray, mask: np.ndarray) -> pd.Series:
        """Per-key median of ``values`` at the first step in ``mask``: what the run began with
        (a run recorded from a later step has no start; its first recorded step stands in)."""
        if not mask.any():
            return pd.Series(np.nan, index=self.keys)
        return self.median(values, mask & (self.step == self.step[mask].min()))

    def reduce(self, values: np.ndarray, how: str, mask: np.ndarray | None = None) -> pd.Series:
        """Per-key ``max``/``min``/``sum``/``count`` over the finite rows in ``mask``."""
        ok = np.isfinite(values) if mask is None else mask & np.isfinite(values)
        n = len(self.keys)
        codes, vals = self.codes[ok], values[ok]
        if how == "count":
            return pd.Series(np.bincount(codes, minlength=n).astype(float), index=self.keys)
        if how == "sum":
            return pd.Series(np.bincount(codes, vals, minlength=n), index=self.keys)
        fill = -np.inf if how == "max" else np.inf
        out = np.full(n, fill)
        (np.maximum if how == "max" else np.minimum).at(out, codes, vals)
        out[out == fill] = np.nan
        return pd.Series(out, index=self.keys)


def _long(run: Run, table: str, key: str) -> Long:
    def build() -> Long:
        frame = getattr(run, table)
        if frame.empty or key not in frame.columns:
            frame = pd.DataFrame({key: pd.Series([], dtype=object), "step": []})
        return Long(frame, key)

    return run.memo(("long", table), build)


def params_long(run: Run) -> Long:
    """``run.params`` factorized by ``param`` (cached per run)."""
    return _long(run, "params", "param")


def acts_long(run: Run) -> Long:
    """``run.activations`` factorized by ``module`` (cached per run)."""
    return _long(run, "activations", "module")


def module_table(run: Run) -> pd.DataFrame:
    """Leaf modules in definition order (index: name) with ``type``, ``activation`` and ``depth``.

    From ``meta["modules"]``; for runs without it, the modules seen in ``activations`` in order
    of first appearance. Built once per run (do not modify the frame returned).
    """
    return run.memo("module_table", lambda: _module_table(run))


def _module_table(run: Run) -> pd.DataFrame:
    mods = run.setup.modules
    if mods:
        frame = pd.DataFrame(
            [{"module": m.name, "type": m.type, "activation": m.activation} for m in mods]
        )
    elif not run.activations.empty:
        long = acts_long(run)
        if "kind" in long.frame.columns and not bool((long.codes < 0).any()):
            # codes number the modules in order of first appearance: no drop_duplicates
            first = long.first_rows()
            return pd.DataFrame(
                {
                    "type": "",
                    "activation": long.frame["kind"].take(first).to_numpy(),
                    "depth": np.arange(len(first)),
                },
                index=pd.Index(long.keys.to_numpy(), name="module"),
            )
        acts = run.activations.drop_duplicates("module")
        frame = pd.DataFrame(
            {"module": acts["module"].astype(str), "type": "", "activation": acts["kind"]}
        )
    else:
        frame = pd.DataFrame(columns=["module", "type", "activation"])
    frame["depth"] = np.arange(len(frame))
    return frame.set_index("module")


def lr_mask(run: Run, long: Long, frac: float = 0.5) -> np.ndarray:
    """Rows of ``long`` at steps where the group-0 learning rate is ≥ ``frac`` × its maximum.

    Skips warm-up and the tail of a decay schedule, where update ratios are small by design.
    Without a recorded learning rate, or when that leaves fewer than 3 sampled steps, every row.
    """
    return run.memo(("lr_mask", long.keys.name, frac), lambda: _lr_mask(run, long, frac))


def _lr_mask(run: Run, long: Long, frac: float) -> np.ndarray:
    mask = np.ones(len(long), dtype=bool)
    steps = run.steps
    if not long.empty and "lr" in steps.columns:
        lr = steps["lr"].to_numpy(dtype=float, na_value=np.nan)
        index = steps.index.to_numpy()
        if np.isfinite(lr).any() and np.nanmax(lr) > 0:
            uniq, inv = long.steps()
            at = np.clip(np.searchsorted(index, uniq), 0, len(index) - 1)
            good = (index[at] == uniq) & (lr[at] >= frac * np.nanmax(lr))
            if good.sum() >= 3:
                mask = good[inv]
    return mask


def dense_params(run: Run) -> pd.Index:
    """Names of the trainable dense weights that the optimizer updates, in depth order."""

    def build() -> pd.Index:
        table = param_table(run)
        keep = (
            (table["kind"].to_numpy() == DENSE)
            & table["trainable"].to_numpy(dtype=bool)
            & table["in_optimizer"].to_numpy(dtype=bool)
        )
        return table.index[keep]

    return run.memo("dense_params", build)


#: Adam-type first full-lr update ratio above this: each step rewrites a fifth of the weights
#: (the seed wants ~1e-3; drawn healthy runs stay below it, Adam at ×10 the lr reaches 0.23).
ADAM_FIRST_RATIO_HIGH = 0.2

#: A dense layer whose median update/param ratio is below this hardly moves: 50× under the
#: seed's ~1e-3 (drawn healthy runs: 1.2e-4 at least at their input-side layers).
UPDATE_RATIO_LOW = 2e-5


def adam_first_ratio(
    run: Run, lr_frac: float = 0.5, samples: int = 1
) -> tuple[float, tuple[int, int]] | None:
    """For Adam-type optimizers, the median dense update ratio over the first ``samples``
    recorded full-lr steps (``lr_mask``) and their steps; else None.

    Adam's bias correction makes its first steps ~lr per weight whatever the gradient, so this
    ratio is ~lr / rms(W) before the weights grow to hide it. Computed once per run (RL401 and
    RL202 both read it).
    """
    return run.memo(
        ("adam_first_ratio", lr_frac, samples), lambda: _adam_first_ratio(run, lr_frac, samples)
    )


def _adam_first_ratio(
    run: Run, lr_frac: float, samples: int
) -> tuple[float, tuple[int, int]] | None:
    if "adam" not in run.setup.optimizer_class.lower():
        return None
    dense = dense_update_ratios(run, lr_frac).index
    long = params_long(run)
    if long.empty or len(dense) == 0:
        return None
    ratio = long.col("update_ratio")
    rows = lr_mask(run, long, lr_frac) & long.rows_of(dense) & (ratio > 0)
    uniq, inv = long.steps()
    first = uniq[np.bincount(inv[rows], minlength=len(uniq)) > 0][:samples]
    if len(first) == 0:
        return None
    values = [float(np.median(ratio[rows & (long.step == s)])) for s in first]
    return float(np.median(values)), (int(first[0]), int(first[-1]))


def dense_update_ratios(run: Run, lr_frac: float = 0.5) -> pd.Series:
    """Median update/param ratio per trainable dense weight over the ``lr_mask`` steps."""
    return run.memo(("dense_update_ratios", lr_frac), lambda: _dense_update_ratios(run, lr_frac))


def _dense_update_ratios(run: Run, lr_frac: float) -> pd.Series:
    long = params_long(run)
    if long.empty or "update_ratio" not in long.frame.columns:
        return pd.Series(dtype=float)
    dense = dense_params(run)
    ratio = long.col("update_ratio")
    med = long.median(ratio, lr_mask(run, long, lr_frac) & long.rows_of(dense) & (ratio > 0))
    return med[dense.intersection(med.dropna().index)]


def input_output_ratio(values: pd.Series, depth: pd.Series) -> tuple[float, str, str] | None:
    """How much smaller ``values`` are at the input side than at the output side.

    ``values`` is indexed like ``depth`` (e.g. dense weights in depth order). The input side is
    the median of the first quarter of the layers (at least one), the output side the largest
    value of the last half; returns their ratio and the names of the input-most layer and of
    the output-side maximum, or ``None`` with fewer than three layers.
    """
    if values.index.is_unique and depth.index.is_unique:
        return _input_output_ratio(values, depth)
    common = values.dropna().index.intersection(depth.dropna().index)
    if len(common) < 3:
        return None
    ordered = values[common].iloc[np.argsort(depth[common].to_numpy(), kind="stable")]
    head = float(np.median(ordered.iloc[: max(1, len(ordered) // 4)]))
    tail_part = ordered.iloc[len(ordered) // 2 :]
    tail = float(tail_part.max())
    if not (np.isfinite(head) and np.isfinite(tail)) or tail <= 0:
        return None
    return head / tail, str(ordered.index[0]), str(tail_part.idxmax())


def _input_output_ratio(values: pd.Series, depth: pd.Series) -> tuple[float, str, str] | None:
    """``input_output_ratio`` in numpy, for unique labels (parameter names): same result."""
    vals = values.to_numpy(dtype=float, na_value=np.nan)
    at = depth.index.get_indexer(values.index)
    deep = depth.to_numpy(dtype=float, na_value=np.nan)
    keep = ~np.isnan(vals) & (at >= 0)
    keep[keep] = ~np.isnan(deep[at[keep]])
    if int(keep.sum()) < 3:
        return None
    picked = np.flatnonzero(keep)  # in the order of ``values``, like Index.intersection
    picked = picked[np.argsort(deep[at[picked]], kind="stable")]
    ordered = vals[picked]
    head = float(np.median(ordered[: max(1, len(ordered) // 4)]))
    half = len(ordered) // 2
    tail_part = ordered[half:]
    tail = float(tail_part.max())
    if not (np.isfinite(head) and np.isfinite(tail)) or tail <= 0:
        return None
    labels = values.index
    return (
        head / tail,
        str(labels[picked[0]]),
        str(labels[picked[half + int(np.argmax(tail_part))]]),
    )


#: module classes that normalize each feature over the batch
BATCH_NORMS = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm")


def batchnorm_inputs(run: Run) -> set[str]:
    """Names of the modules whose output goes straight into a BatchNorm (the next module in
    ``meta.modules``): their weights are scale-invariant, so ‖∇W‖/‖W‖ shrinks as ‖W‖ grows
    whatever gradient flows back."""
    mods = run.setup.modules
    return {a.name for a, b in itertools.pairwise(mods) if b.type in BATCH_NORMS}


def capacity_limit(run: Run) -> str | None:
    """What in the recorded model graph caps its capacity, in words, or ``None``.

    Two structural limits (from ``meta.modules`` and ``meta.params``): the model is a single
    Linear layer that holds every parameter, with no activation module (a stack of them may have
    functional activations the graph cannot show; dropout or flatten change nothing), and
    a Linear layer narrower than the number of classes feeding another Linear layer (every
    class must pass through fewer dimensions than there are classes).
    """
    modules, params = run.setup.modules, run.setup.params
    classes = run.setup.num_classes
    linear = [p for p in params if p.module_type == "Linear" and p.role == "weight"]
    shapes = [(_owner(p.name), p.shape) for p in linear if p.shape and len(p.shape) == 2]
    if not shapes or len(shapes) != len(linear):
        return None
    owners = {_owner(p.name) for p in params}
    if len(shapes) == 1 and len(owners) == 1 and not any(m.activation for m in modules):
        # one Linear holds every parameter; what else there is (dropout, flatten) is linear too
        where = shapes[0][0] or "the model itself"
        return f"the model is a single Linear layer ({where}): it is linear in its inputs"
    if classes is None or classes < 3:
        return None
    fed = {shape[1] for _, shape in shapes}
    narrow = [(s[0], n) for n, s in shapes if s[0] < classes and s[0] < s[1] and s[0] in fed]
    if not narrow:
        return None
    width, layer = min(narrow)
    return f"hidden layer {layer} is {width} wide, narrower than the {classes} classes"


def _owner(param: str) -> str:
    """The module a parameter belongs to (``""``: the model itself)."""
    return param.rpartition(".")[0]
