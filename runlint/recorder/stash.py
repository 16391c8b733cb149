"""What the recorder holds between two flushes, column by column, and its way to the host.

Each table is a ``Table``: plain Python lists of numbers and names, one entry per row, plus
``Values`` columns of numbers or of indices into the tensors a ``Stash`` keeps on the device.
Recording a step appends to lists that already exist, so it allocates no Python object that
the garbage collector tracks: per-row tuples and dicts made full collections (hundreds of
milliseconds with torch loaded) come every few thousand steps. The flush copies the stash to
the host in one transfer per device; each probe builds its table's columns from it with numpy.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from runlint.schema.tables import RANK

__all__ = ["HostCopy", "Keys", "Stash", "Table", "Values", "ranked", "slices"]

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
        """The column as float64, null where a row has no value; ``scalars`` is the stash on
        the host (``HostCopy.wait``), masked where a tensor's value was lost."""
        out = np.full(n, np.nan)
        present = np.zeros(n, dtype=bool)
        if self.rows:
            out[self.rows] = self.numbers
            present[self.rows] = True
        if self.refs:
            got = scalars[self.refs]
            out[self.ref_rows] = np.ma.getdata(got)
            present[self.ref_rows] = ~np.ma.getmaskarray(got)
        return pa.array(out, mask=None if present.all() else ~present)

    def missing(self, scalars: np.ndarray) -> bool:
        """Whether one of the tensors of this column was lost on its way to the host."""
        return bool(self.refs) and bool(np.ma.getmaskarray(scalars[self.refs]).any())


class Table:
    """Rows recorded since the last flush: ``fixed`` columns hold one value per row (``add``),
    ``values`` columns are numbers that rows may lack (``put``).

    ``keys``, shared by the tables of successive flushes, bounds the value columns a run may
    have: past ``keys.limit`` distinct names, new ones are refused (``put`` returns False).
    """

    __slots__ = ("_appends", "fixed", "keys", "n", "values")

    def __init__(self, *fixed: str, keys: Keys | None = None) -> None:
        self.n = 0
        self.fixed: dict[str, list[Any]] = {key: [] for key in fixed}
        self._appends = tuple(column.append for column in self.fixed.values())
        self.values: dict[str, Values] = {}
        self.keys = keys

    def add(self, *row: Any) -> int:
        """Append one row of the fixed columns (all of them, in their order); its index."""
        for append, value in zip(self._appends, row, strict=True):
            append(value)
        n = self.n
        self.n = n + 1
        return n

    def value(self, key: str) -> Values | None:
        """Column ``key``, made if need be; ``None`` if it would be one too many."""
        column = self.values.get(key)
        if column is None:
            keys = self.keys
            if keys is not None and not keys.admit(key):
                return None
            column = self.values[key] = Values()
        return column

    def put(self, key: str, row: int, value: Any, stash: Stash, *, copy: bool = False) -> bool:
        """Record ``value`` in column ``key`` of ``row``: a number as it is, a one-element tensor
        kept in ``stash`` (by reference unless ``copy``: ``Stash.scalar``), ``None`` as missing.
        Anything else, or a column past the key limit, is left out: returns False. If it
        raises, nothing was recorded."""
        kind = type(value)
        tensor = False
        if kind is float or kind is int or kind is bool:
            number = value
        elif isinstance(value, torch.Tensor) and value.numel() == 1:
            tensor = True
        elif isinstance(value, _NUMBERS):
            number = float(value)
        elif value is None:
            return self.value(key) is not None
        else:
            return False
        column = self.values.get(key) or self.value(key)
        if column is None:
            return False
        if tensor:
            ref = stash.scalar(value, copy=copy)  # may raise: then nothing is appended
            column.ref_rows.append(row)
            column.refs.append(ref)
        else:
            column.rows.append(row)
            column.numbers.append(number)
        return True


class Keys:
    """The value column names a table may have over a run: at most ``limit``."""

    __slots__ = ("limit", "names", "refused")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.names: set[str] = set()
        self.refused = 0  # names refused so far

    def admit(self, key: str) -> bool:
        names = self.names
        if key in names:
            return True
        if len(names) >= self.limit:
            self.refused += 1
            return False
        names.add(key)
        return True


class HostCopy:
    """The stash on its way to the host: one flat float32 buffer per device (its scalars, then
    its vectors), copied without blocking; ``wait`` returns every scalar and vector in stash
    order.

    A device whose tensors cannot be copied together (a tensor on the ``meta`` device, which
    holds no data) is copied tensor by tensor instead: those that fail are lost (``failed``:
    scalar index -> the error), the others are kept.
    """

    def __init__(self, stash: Stash) -> None:
        self.lost = stash.lost
        self.failed: dict[int, str] = {}
        self.n_scalars = len(stash.scalars)
        self._starts = np.cumsum([0, *(v.numel() for v in stash.vectors)])  # then the total
        by_device: dict[torch.device, tuple[list[int], list[int]]] = {}
        for i, t in enumerate(stash.scalars):
            by_device.setdefault(t.device, ([], []))[0].append(i)
        for i, t in enumerate(stash.vectors):
            by_device.setdefault(t.device, ([], []))[1].append(i)
        self._parts: list[tuple[torch.Tensor, Any, list[int], list[int]]] = []
        for s_idx, v_idx in by_device.values():
            try:
                self._parts.append(self._copy(stash, s_idx, v_idx))
            except Exception:  # one by one: keep what can be copied
                for i in s_idx:
                    try:
                        self._parts.append(self._copy(stash, [i], []))
                    except Exception as exc:
                        self.failed[i] = f"{type(exc).__name__}: {exc}"
                for i in v_idx:
                    with contextlib.suppress(Exception):  # a lost vector stays NaN
                        self._parts.append(self._copy(stash, [], [i]))

    @staticmethod
    def _copy(
        stash: Stash, s_idx: list[int], v_idx: list[int]
    ) -> tuple[torch.Tensor, Any, list[int], list[int]]:
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
        return flat, event, s_idx, v_idx

    def wait(self) -> tuple[np.ndarray, np.ndarray]:
        """Every scalar and the vectors concatenated, as numpy (polls: no blocking sync call).
        The scalars are a masked array when some were lost (changed in place, or not copied)."""
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
        if self.lost or self.failed:
            scalars[self.lost] = np.nan  # the value it holds now is not the one logged
            mask = np.zeros(self.n_scalars, dtype=bool)
            mask[self.lost] = True
            mask[list(self.failed)] = True
            return np.ma.MaskedArray(scalars, mask=mask), vectors
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
