"""What the recorder holds between two flushes, column by column, and its way to the host.

Each table is a ``Table``: plain Python lists of numbers and names, one entry per row, plus
``Values`` columns of numbers or of indices into the tensors a ``Stash`` keeps on the device.
Recording a step appends to lists that already exist, so it allocates no Python object that
the garbage collector tracks: per-row tuples and dicts made full collections (hundreds of
milliseconds with torch loaded) come every few thousand steps. The flush copies the stash to
the host in one transfer per device; each probe builds its table's columns from it with numpy.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from runlint.schema.tables import RANK

__all__ = ["HostCopy", "Stash", "Table", "Values", "ranked", "slices"]

_NUMBERS = (bool, int, float, np.floating, np.integer)


class Values:
    """A column of numbers in which rows may be missing: plain numbers, or device scalars."""

    __slots__ = ("numbers", "ref_rows", "refs", "rows")

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.numbers: list[float] = []
        self.ref_rows: list[int] = []
        self.refs: list[int] = []  # indices of ``Stash`` scalars

    def array(self, n: int, scalars: np.ndarray) -> pa.Array:
        """The column as float64, null where a row has no value."""
        out = np.full(n, np.nan)
        present = np.zeros(n, dtype=bool)
        if self.rows:
            out[self.rows] = self.numbers
            present[self.rows] = True
        if self.refs:
            out[self.ref_rows] = scalars[self.refs]
            present[self.ref_rows] = True
        return pa.array(out, mask=None if present.all() else ~present)


class Table:
    """Rows recorded since the last flush: ``fixed`` columns hold one value per row (``add``),
    ``values`` columns are numbers that rows may lack (``value``)."""

    __slots__ = ("_appends", "fixed", "n", "values")

    def __init__(self, *fixed: str) -> None:
        self.n = 0
        self.fixed: dict[str, list[Any]] = {key: [] for key in fixed}
        self._appends = tuple(column.append for column in self.fixed.values())
        self.values: dict[str, Values] = {}

    def add(self, *row: Any) -> int:
        """Append one row of the fixed columns (all of them, in their order); its index."""
        for append, value in zip(self._appends, row, strict=True):
            append(value)
        n = self.n
        self.n = n + 1
        return n

    def value(self, key: str) -> Values:
        column = self.values.get(key)
        if column is None:
            column = self.values[key] = Values()
        return column

    def put(self, key: str, row: int, value: Any, stash: Stash, *, copy: bool = False) -> bool:
        """Record ``value`` in column ``key`` of ``row``: a number as it is, a one-element tensor
        kept in ``stash`` (by reference unless ``copy``: ``Stash.scalar``), ``None`` as missing.
        Anything else is left out: returns False."""
        kind = type(value)
        if kind is float or kind is int or kind is bool:
            column = self.value(key)
            column.rows.append(row)
            column.numbers.append(value)
        elif isinstance(value, torch.Tensor) and value.numel() == 1:
            column = self.value(key)
            column.ref_rows.append(row)
            column.refs.append(stash.scalar(value, copy=copy))
        elif isinstance(value, _NUMBERS):
            column = self.value(key)
            column.rows.append(row)
            column.numbers.append(float(value))
        elif value is None:
            self.value(key)
        else:
            return False
        return True


class HostCopy:
    """The stash on its way to the host: one flat float32 buffer per device (its scalars, then
    its vectors), copied without blocking; ``wait`` returns every scalar and vector in stash
    order."""

    def __init__(self, stash: Stash) -> None:
        self.lost = stash.lost
        self.n_scalars = len(stash.scalars)
        self._starts = np.cumsum([0, *(v.numel() for v in stash.vectors)])  # then the total
        by_device: dict[torch.device, tuple[list[int], list[int]]] = {}
        for i, t in enumerate(stash.scalars):
            by_device.setdefault(t.device, ([], []))[0].append(i)
        for i, t in enumerate(stash.vectors):
            by_device.setdefault(t.device, ([], []))[1].append(i)
        self._parts: list[tuple[torch.Tensor, Any, list[int], list[int]]] = []
        for s_idx, v_idx in by_device.values():
            pieces = [stash.vectors[i] for i in v_idx]
            if s_idx:
                pieces.insert(0, torch.stack([stash.scalars[i] for i in s_idx]))
            flat = torch.cat(pieces) if len(pieces) > 1 else pieces[0]
            event = None
            if flat.device.type == "cuda":
                host = torch.empty(flat.shape, dtype=flat.dtype, pin_memory=True)
                host.copy_(flat, non_blocking=True)
                event = torch.cuda.Event()
                event.record()
                flat = host
            elif flat.device.type != "cpu":
                flat = flat.cpu()
            self._parts.append((flat, event, s_idx, v_idx))

    def wait(self) -> tuple[np.ndarray, np.ndarray]:
        """Every scalar and the vectors concatenated, as numpy (polls: no blocking sync call)."""
        scalars = np.full(self.n_scalars, np.nan, dtype=np.float32)
        vectors = np.full(self._starts[-1], np.nan, dtype=np.float32)
        starts = self._starts
        for flat, event, s_idx, v_idx in self._parts:
            _wait(event)
            data = flat.numpy()
            scalars[s_idx] = data[: len(s_idx)]
            at = len(s_idx)
            for i in v_idx:
                size = starts[i + 1] - starts[i]
                vectors[starts[i] : starts[i + 1]] = data[at : at + size]
                at += size
        scalars[self.lost] = np.nan
        return scalars, vectors


def _wait(event: Any) -> None:
    while event is not None and not event.query():
        time.sleep(0.0005)


class Stash:
    """Device tensors kept until the next flush: one-element tensors (``scalar``, addressed by
    index) and flat float32 vectors (``vector``, addressed by offset).

    A float32 scalar is kept by reference (``detach``: no copy kernel) with its version
    counter; ``check`` finds those changed in place since, whose values are then lost (NaN)
    and ``copy_scalars`` makes the recorder keep copies from then on.
    """

    __slots__ = ("_checked", "copy_scalars", "lost", "scalars", "vector_len", "vectors", "versions")

    def __init__(self, *, copy_scalars: bool = False) -> None:
        self.copy_scalars = copy_scalars
        self.scalars: list[torch.Tensor] = []
        self.versions: list[int] = []  # per scalar: its version when kept, -1 for a copy
        self.lost: list[int] = []  # scalars changed in place before they were saved
        self._checked = 0
        self.vectors: list[torch.Tensor] = []
        self.vector_len = 0

    def scalar(self, v: torch.Tensor, *, copy: bool = False) -> int:
        """Keep the one-element tensor ``v`` until the flush, by reference unless ``copy``;
        its index."""
        t = v.detach()  # shares the version counter of ``v``
        # copied: a view (its reference would keep the whole base alive), an inference
        # tensor (no version counter to check), another shape or dtype
        if (
            copy
            or self.copy_scalars
            or v._base is not None
            or t.dim()
            or t.dtype != torch.float32
            or t.is_inference()
        ):
            t = t.reshape(()).float()
            version = -1
            if t.data_ptr() == v.data_ptr():
                t = t.clone()
        else:
            version = t._version
        self.scalars.append(t)
        self.versions.append(version)
        return len(self.scalars) - 1

    def check(self) -> bool:
        """Whether a scalar kept by reference since the last check was changed in place
        (its value is then lost). Checks each scalar once."""
        scalars, versions = self.scalars, self.versions
        start = self._checked
        if start == len(scalars):
            return False
        changed = False
        for i in range(start, len(scalars)):
            if versions[i] >= 0 and scalars[i]._version != versions[i]:
                self.lost.append(i)
                changed = True
        self._checked = len(scalars)
        return changed

    def vector(self, t: torch.Tensor) -> int:
        """Keep ``t`` flattened to float32 (callers pass fresh results or copies, never changed
        in place afterwards); the offset of its first value."""
        flat = t if t.dim() == 1 else t.reshape(-1)
        if flat.requires_grad:
            flat = flat.detach()
        if flat.dtype != torch.float32:
            flat = flat.float()
        offset = self.vector_len
        self.vectors.append(flat)
        self.vector_len = offset + flat.numel()
        return offset

    def __bool__(self) -> bool:
        return bool(self.scalars or self.vectors)


def ranked(table: Table, rank: int, scalars: np.ndarray, *, keys: int = 1) -> dict[str, Any]:
    """The ``keys`` first fixed columns, then ``rank``, then the other fixed columns and the value
    columns (the layout of the open tables)."""
    fixed = list(table.fixed.items())
    columns: dict[str, Any] = dict(fixed[:keys])
    columns[RANK.name] = np.full(table.n, rank)
    columns.update(fixed[keys:])
    columns.update((k, v.array(table.n, scalars)) for k, v in table.values.items())
    return columns


def slices(table: Table, vectors: np.ndarray) -> list[list[float]]:
    """The stashed vectors that the ``offset``/``length`` fixed columns point to, as lists."""
    fixed = table.fixed
    return [
        vectors[o : o + n].astype(np.float64).tolist()
        for o, n in zip(fixed["offset"], fixed["length"], strict=True)
    ]
