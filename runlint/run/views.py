"""``Run``: what the rules read — pandas views over one recorded (or imported) training run.

Views are built lazily from the raw tables: a table's rows are read (and its view built) only
when a rule first touches it, so a check that needs only the loss never pays for histograms.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from runlint.schema import TABLES, AnyOf, Need, Setup, parse_setup, requirement
from runlint.schema.tables import view_columns

__all__ = ["NothingLogged", "Run", "RunError", "from_tables"]

VIEWS = tuple(TABLES)
T = TypeVar("T")


class RunError(Exception):
    """A run that cannot be read; the message names the run and what is wrong, in one line."""


class NothingLogged(RunError):
    """A readable log that holds no metric yet (a run just started, or one that never logged):
    not damaged input, so it is reported as incomplete rather than unreadable."""


class _View:
    """A table view of a ``Run``: built from ``raw`` on first access, replaceable by assignment
    (which drops whatever the rules derived from the run so far)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, run: Run, owner: type | None = None) -> pd.DataFrame:
        return run._view(self.name)

    def __set__(self, run: Run, frame: pd.DataFrame) -> None:
        run._views = {**run._views, self.name: frame}
        run._given = run._given | {self.name}
        run._memo = {}  # a fresh dict: a copy of the run keeps its own


class Run:
    """One training run, as tables (their columns: ``runlint.schema.tables``).

    ``steps``       one row per optimizer step (index ``step``): ``loss`` and every scalar given
                    to ``rec.log``, ``lr``/``momentum``/``weight_decay`` of param group 0, ``time``.
                    Ranks and gradient-accumulation micro-steps are averaged.
    ``groups``      long: ``step, group, lr, momentum, beta1, beta2, weight_decay, eps, ...``.
    ``epochs``      one row per ``rec.log_epoch`` (index ``epoch``), with the ``step`` it closed.
    ``params``      long: ``step, param, grad_norm, param_norm, update_norm, update_ratio``.
    ``activations`` long: ``step, module, kind, mean, std, saturated, dead, dead_units``.
    ``histograms``  long: ``step, source, name, edges, counts``.
    ``weights``     long: ``step, param, shape, values`` (first-layer snapshots).
    ``outputs``     one row per step (index ``step``): the model output's ``width``, range,
                    ``row_sum``, ``row_logsumexp``, ``batch_std``, ``unit_fraction``.
    ``examples``    long: ``step, phase, fingerprint`` (a hash of each example fed to the model,
                    ``train`` or ``eval``, until the recorder's budget is spent).
    ``meta``        dict as in ``meta.json`` (``runlint.schema.meta``); ``setup`` is its typed
                    reading, which rules use.
    ``raw``         every table as read, with ``rank`` (and ``micro``) columns kept.

    What rules derive from a run (curves, layer tables) is kept in ``memo`` for the run's life.
    """

    steps = _View()
    groups = _View()
    epochs = _View()
    params = _View()
    activations = _View()
    histograms = _View()
    weights = _View()
    outputs = _View()
    examples = _View()

    def __init__(
        self,
        path: Path,
        meta: dict[str, Any] | None = None,
        raw: Mapping[str, pd.DataFrame] | None = None,
        source: str = "runlint",
        complete: bool = True,
        **views: pd.DataFrame,
    ) -> None:
        self.path = Path(path)
        self._meta: dict[str, Any] = meta if meta is not None else {}
        self.raw: Mapping[str, pd.DataFrame] = raw if raw is not None else {}
        self.source = source
        self.complete = complete
        unknown = set(views) - set(VIEWS)
        if unknown:
            raise TypeError(f"Run() got unknown views {sorted(unknown)}")
        self._views: dict[str, pd.DataFrame] = dict(views)
        self._given = frozenset(views)  # views passed as frames, not built from ``raw``
        self._memo: dict[Hashable, Any] = {}
        self._setup: Setup | None = None

    @property
    def meta(self) -> dict[str, Any]:
        """The metadata as in ``meta.json``; assigning a new dict drops what was derived."""
        return self._meta

    @meta.setter
    def meta(self, meta: dict[str, Any]) -> None:
        self._meta = meta
        self._setup = None
        self._memo = {}

    def _view(self, name: str) -> pd.DataFrame:
        frame = self._views.get(name)
        if frame is None:
            try:
                frame = _BUILDERS[name](self)
            except RunError:
                raise
            except Exception as exc:  # damaged data that Parquet still read: name it, one line
                raise RunError(
                    f"{self.path}: {name} table is unusable ({_one_line(exc)})"
                ) from None
            self._views[name] = frame
        return frame

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def setup(self) -> Setup:
        """The metadata, typed (``runlint.schema.meta.Setup``)."""
        if self._setup is None:
            self._setup = parse_setup(self.meta)
        return self._setup

    def set_meta(self, key: str, value: Any, provenance: str) -> None:
        """Set ``meta[key]`` (e.g. from the command line) and record where it came from."""
        self.meta[key] = value
        how = self.meta.get("provenance")
        if not isinstance(how, dict):
            how = self.meta["provenance"] = {}
        how[key] = provenance
        self._setup = None
        self._memo = {}

    def memo(self, key: Hashable, build: Callable[[], T]) -> T:
        """``build()``, computed once per run and ``key`` (rules share what they derive)."""
        try:
            found: T = self._memo[key]
        except KeyError:
            found = self._memo[key] = build()
        return found

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, source={self.source!r}, complete={self.complete})"

    def column(self, table: str, name: str) -> str | None:
        """The column of view ``table`` that holds signal ``name``: ``name`` itself, else the
        first of its schema aliases present (``val_accuracy`` for ``val_acc``); else None."""
        frame = self._view(table)
        if name in frame.columns:
            return name
        spec = view_columns(TABLES[table]).get(name)
        for alias in spec.aliases if spec is not None else ():
            if alias in frame.columns:
                return alias
        return None

    def logged(self, table: str, column: str) -> np.ndarray:
        """Per row of view ``table``: whether ``column`` was logged there (a value, NaN and Inf
        included) rather than missing (the row exists because something else was logged then:
        another scalar, the optimizer's settings). Only a logged NaN is a non-finite value.

        Known from the raw tables' nulls; a view passed in as a frame counts every row logged.
        """
        return self.memo(("logged", table, column), lambda: _logged(self, table, column))

    def has(self, need: str | Need) -> bool:
        """Whether the data a requirement names exists (a column: a value in some row)."""
        if isinstance(need, str):
            need = requirement(need)
        if isinstance(need, AnyOf):
            return any(all(self.has(r) for r in option) for option in need.options)
        if need.table == "meta":
            prefix = f"meta.{need.column} "
            return self.meta.get(need.column) is not None and not any(
                p.startswith(prefix) for p in self.setup.problems
            )
        frame = self._view(need.table)
        if not isinstance(frame, pd.DataFrame) or frame.empty:
            return False
        if not need.column:
            return True
        column = self.column(need.table, need.column)
        if column is None:
            return False
        return self.memo(("has", need), lambda: bool(frame[column].notna().any()))


def _logged(run: Run, table: str, column: str) -> np.ndarray:
    frame = run._view(table)
    if column not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    spec = TABLES.get(table)
    read_arrow = getattr(run.raw, "arrow", None)
    everything = np.ones(len(frame), dtype=bool)
    if read_arrow is None or spec is None or not spec.index or table in run._given:
        return everything
    for source in (table, *spec.joins):
        arrow = read_arrow(source)
        if arrow is None or column not in arrow.column_names:
            continue
        valid = pc.is_valid(arrow.column(column))
        if "group" in arrow.column_names and source != table:  # the view shows group 0
            valid = pc.and_(valid, pc.equal(arrow.column("group"), 0))
        keys = arrow.column(spec.keys[0]).filter(valid).to_numpy()
        return np.isin(frame.index.to_numpy(), keys)
    return everything


class ArrowTables(Mapping[str, pd.DataFrame]):
    """Raw tables held as Arrow (an importer's), whose nulls say what was not logged; each is
    converted to pandas on first access."""

    def __init__(self, tables: Mapping[str, pa.Table]) -> None:
        self._arrow = dict(tables)
        self._frames: dict[str, pd.DataFrame] = {}

    def arrow(self, table: str) -> pa.Table | None:
        return self._arrow.get(table)

    def __getitem__(self, table: str) -> pd.DataFrame:
        if table not in self._frames:
            self._frames[table] = _to_pandas(self._arrow[table])
        return self._frames[table]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrow)

    def __len__(self) -> int:
        return len(self._arrow)


def _raw(run: Run, table: str) -> pd.DataFrame:
    frame = run.raw.get(table)
    return frame if isinstance(frame, pd.DataFrame) else pd.DataFrame()


def _view_of(run: Run, table: str, keys: list[str], *, index: bool) -> pd.DataFrame:
    """``_mean_by`` of a raw table, straight from Arrow when the keys are unique (fast)."""
    read_arrow = getattr(run.raw, "arrow", None)  # a run directory's tables (runlint.run.read)
    if read_arrow is not None:
        arrow = read_arrow(table)
        if arrow is None:
            return pd.DataFrame()
        if table == "activations":
            keys = [k for k in keys if k in arrow.column_names]
        fast = _arrow_unique_view(arrow, keys, index=index)
        if fast is not None:
            return fast
    frame = _raw(run, table)
    if table == "activations":
        keys = [k for k in keys if k in frame.columns]
    return _mean_by(frame, keys, index=index)


def _build_steps(run: Run) -> pd.DataFrame:
    steps = _view_of(run, "steps", ["step"], index=True)
    groups = run.groups
    if not groups.empty and {"step", "group"} <= set(groups.columns):
        zero = (groups["group"] == 0).to_numpy()
        rows = groups if bool(zero.all()) else groups[zero]  # one param group: no filtering
        group0 = rows.loc[:, [c for c in rows.columns if c not in ("step", "group")]]
        group0.index = pd.Index(rows["step"].to_numpy(), name="step")
        if steps.empty:
            return group0
        if steps.index.equals(group0.index):
            clash = {c: f"{c}_group0" for c in group0.columns if c in steps.columns}
            return pd.concat([steps, group0.rename(columns=clash) if clash else group0], axis=1)
        steps = steps.merge(
            group0, how="outer", left_index=True, right_index=True, suffixes=("", "_group0")
        )
    return steps


def _build_long(table: str, keys: list[str]) -> Callable[[Run], pd.DataFrame]:
    def build(run: Run) -> pd.DataFrame:
        return _view_of(run, table, keys, index=False)

    return build


_BUILDERS: dict[str, Callable[[Run], pd.DataFrame]] = {
    "steps": _build_steps,
    "groups": _build_long("groups", ["step", "group"]),
    "epochs": lambda run: _view_of(run, "epochs", ["epoch"], index=True),
    "params": _build_long("params", ["step", "param"]),
    "activations": _build_long("activations", ["step", "module", "kind"]),
    "histograms": lambda run: _raw(run, "histograms"),
    "weights": lambda run: _raw(run, "weights"),
    "examples": lambda run: _raw(run, "examples"),
    "outputs": lambda run: _view_of(run, "outputs", ["step"], index=True),
}


def from_tables(
    path: Path,
    meta: dict[str, Any],
    raw: Mapping[str, pd.DataFrame] | Mapping[str, pa.Table],
    *,
    source: str = "runlint",
    complete: bool = True,
) -> Run:
    """Build a ``Run`` from raw long tables (also used by the importers); views are lazy.

    Arrow tables keep their nulls (what was not logged) for ``Run.logged``.
    """
    if raw and all(isinstance(t, pa.Table) for t in raw.values()):
        raw = ArrowTables(raw)
    return Run(path=Path(path), meta=meta, raw=raw, source=source, complete=complete)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _arrow_unique_view(table: pa.Table, keys: list[str], *, index: bool) -> pd.DataFrame | None:
    """What ``_mean_by`` returns, computed in Arrow, when no key repeats; else ``None``.

    One rank and no micro-steps (the common case) make every key unique, so the "mean" is the
    table itself, sorted by the keys: Arrow sorts and compares faster than pandas groups.
    """
    if not keys or not set(keys) <= set(table.column_names) or table.num_rows == 0:
        return None
    if any(table.column(k).null_count for k in keys):
        return None
    table = table.drop_columns([c for c in ("rank", "micro") if c in table.column_names])
    first = table.column(keys[0])
    ordered = (
        table.num_rows < 2 or bool(pc.all(pc.greater(first[1:], first[:-1])).as_py())
        if len(keys) == 1
        else _ordered_ints(table, keys)
    )
    if not ordered:
        table = table.take(pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys]))
        if table.num_rows > 1:
            same = None
            for k in keys:
                col = table.column(k)
                eq = pc.equal(col[1:], col[:-1])
                same = eq if same is None else pc.and_(same, eq)
            if same is not None and bool(pc.any(same).as_py()):
                return None
    values = [c for c in table.column_names if c not in keys]
    kinds = {f.name: f.type for f in table.schema}
    numeric = [c for c in values if _arrow_numeric(kinds[c])]
    other = [c for c in values if c not in numeric]
    table = table.select([*keys, *numeric, *other])
    for c in numeric:
        if pa.types.is_boolean(kinds[c]):
            at = table.column_names.index(c)
            table = table.set_column(at, c, table.column(c).cast(pa.float64()))
    frame = _to_pandas(table)
    return frame.set_index(keys) if index else frame


def _ordered_ints(table: pa.Table, keys: list[str]) -> bool:
    """Whether integer ``keys`` strictly increase row by row (then no sort is needed)."""
    kinds = [table.column(k).type for k in keys]
    if not all(pa.types.is_integer(kind) for kind in kinds) or table.num_rows < 2:
        return False
    later = np.zeros(table.num_rows - 1, dtype=bool)  # row i+1 sorts after row i so far
    tied = np.ones(table.num_rows - 1, dtype=bool)  # rows i and i+1 equal on the keys so far
    for key in keys:
        values = table.column(key).to_numpy()
        nxt, cur = values[1:], values[:-1]
        if bool((tied & (nxt < cur)).any()):
            return False
        later |= tied & (nxt > cur)
        tied &= nxt == cur
    return bool(later.all())


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow → pandas without consolidating columns into blocks (half the time)."""
    return table.to_pandas(split_blocks=True)


def _arrow_numeric(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
    )


def _mean_by(frame: pd.DataFrame, keys: list[str], *, index: bool = True) -> pd.DataFrame:
    """Average numeric columns over ranks and micro-steps; keep the first of other columns.

    Rows come out sorted by ``keys``, indexed by them (``index=True``) or with the keys as the
    first columns. When the keys are already unique (one rank, no micro-steps: the common case)
    the rows are only reordered, with the dtypes a mean would give; no groupby is run.
    """
    if frame.empty or not set(keys) <= set(frame.columns):
        return pd.DataFrame()
    frame = frame.drop(columns=[c for c in ("rank", "micro") if c in frame.columns])
    value_cols = [c for c in frame.columns if c not in keys]
    numeric = [c for c in value_cols if pd.api.types.is_numeric_dtype(frame[c])]
    other = [c for c in value_cols if c not in numeric]
    order = _unique_order(frame, keys)
    if order is not None:
        out = frame if order is _IN_ORDER else frame.take(order)
        out = out[[*keys, *numeric, *other]]
        for col in numeric:
            if pd.api.types.is_bool_dtype(out[col]):
                out[col] = out[col].astype("float64")
        return out.set_index(keys) if index else out.reset_index(drop=True)
    grouped = frame.groupby(keys, sort=True)
    out = grouped[numeric].mean() if numeric else grouped.size().to_frame("_n").drop(columns="_n")
    for col in numeric:  # a mean of integers that are equal per key stays an integer
        if pd.api.types.is_integer_dtype(frame[col]) and (out[col] % 1 == 0).all():
            out[col] = out[col].astype(frame[col].dtype)
    if other:
        out = out.join(grouped[other].first())
    return out if index else out.reset_index()


_IN_ORDER = np.empty(0, dtype=np.int64)


def _unique_order(frame: pd.DataFrame, keys: list[str]) -> np.ndarray | None:
    """The permutation sorting ``frame`` by ``keys`` when no key repeats, else ``None``."""
    if len(keys) == 1:
        col = frame[keys[0]]
        if col.isna().any() or not col.is_unique:
            return None
        return (
            _IN_ORDER if col.is_monotonic_increasing else np.argsort(col.to_numpy(), kind="stable")
        )
    combined = np.zeros(len(frame), dtype=np.int64)
    for key in keys:
        codes, uniques = pd.factorize(frame[key], sort=True)
        if (codes < 0).any():
            return None  # a missing key: let the groupby drop it
        combined = combined * max(len(uniques), 1) + codes
    order = np.argsort(combined, kind="stable")
    ranked = combined[order]
    if ranked.size > 1 and bool((ranked[1:] == ranked[:-1]).any()):
        return None
    return _IN_ORDER if bool((order == np.arange(order.size)).all()) else order
