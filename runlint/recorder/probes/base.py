"""What every probe is, and what the probes of one recorder share.

A probe records one kind of signal. It owns its state and its schedule (``every``: it is due at
the steps divisible by it), and, when it writes a table, how its rows become columns: ``take``
hands the rows recorded since the last flush over (on the training thread) and ``columns``
turns them into the table's columns once the stash is on the host (on the writer thread, so it
reads nothing but what ``take`` returned and the probe's fixed settings).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from runlint.recorder.stash import Stash, Table
from runlint.schema.meta import META
from runlint.schema.tables import TableSpec

__all__ = ["Probe", "Shared", "first_tensor", "is_compiling", "meta_keys", "names", "no_compile"]


class Shared:
    """What the probes of one recorder share: the step, the stash their device results go to,
    the parameters, and the probes switched off and warnings given so far."""

    __slots__ = ("failed", "max_elems", "names", "params", "rank", "stash", "step", "warned")

    def __init__(self, named: list[tuple[str, torch.Tensor]], max_elems: int, rank: int) -> None:
        self.step = 0  # optimizer steps completed
        self.stash = Stash()  # replaced at each flush
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.max_elems = max_elems
        self.rank = rank
        self.failed: list[Probe] = []  # in the order they were switched off
        self.warned: set[str] = set()  # keys of the one-time warnings given

    def warn_once(self, key: str, message: str, stacklevel: int = 4) -> None:
        """Warn with ``message`` the first time ``key`` comes up (not a probe: nothing is off)."""
        if key not in self.warned:
            self.warned.add(key)
            warnings.warn(message, RuntimeWarning, stacklevel=stacklevel)

    def probes_off(self) -> dict[str, str]:
        """Each probe switched off -> the error that did it (``meta.probes_off``)."""
        return {probe.name: probe.off for probe in self.failed if probe.off is not None}


class Probe:
    """One unit of recording, on until it fails: ``off`` is then the error, for good.

    ``with probe:`` runs a piece of the probe's work; an exception in it switches the probe off
    with one warning and goes no further (training goes on). Code that cannot afford a
    ``with`` block per call catches the exception and calls ``fail`` itself.
    """

    every = 1  # due at the steps divisible by it

    def __init__(self, shared: Shared, name: str) -> None:
        self.shared = shared
        self.name = name
        self.off: str | None = None

    def due(self, step: int) -> bool:
        return self.off is None and step % self.every == 0

    def fail(self, exc: BaseException) -> None:
        """Switch the probe off because of ``exc``, with one warning."""
        if self.off is not None:
            return
        self.off = f"{type(exc).__name__}: {exc}"
        self.shared.failed.append(self)
        warnings.warn(
            f"runlint: the {self.name!r} probe failed and is off ({self.off}); training goes on",
            RuntimeWarning,
            stacklevel=4,
        )

    def take(self) -> Any:
        """At a flush, on the training thread: the rows recorded since the last one (``None``
        when there are none), to pass to ``columns``; recording starts afresh."""
        return None

    def columns(
        self, rows: Any, scalars: np.ndarray, vectors: np.ndarray
    ) -> dict[str, dict[str, Any]]:
        """On the writer thread: ``rows`` from ``take`` as columns, per table; ``scalars`` and
        ``vectors`` are the stash on the host."""
        return {}

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        self.fail(exc)
        return True

    def __repr__(self) -> str:
        state = "on" if self.off is None else f"off: {self.off}"
        return f"<{type(self).__name__} {self.name!r} every {self.every} ({state})>"


class RowProbe(Probe):
    """A probe that records a row of ``row``'s columns per sample into one ``Table``, handed
    over and started afresh at each flush."""

    row: tuple[str, ...] = ()

    def __init__(self, shared: Shared, name: str) -> None:
        super().__init__(shared, name)
        self.table = Table(*self.row)

    def take(self) -> Table | None:
        table, self.table = self.table, Table(*self.row)
        return table if table.n else None


def names(spec: TableSpec, *columns: str) -> tuple[str, ...]:
    """``columns``, each checked to be a column of ``spec``: a name the schema lacks fails
    where a probe module names it, at import."""
    for column in columns:
        if spec.column(column) is None:
            raise LookupError(f"the schema's {spec.name!r} table has no column {column!r}")
    return columns


def meta_keys(*keys: str) -> tuple[str, ...]:
    """``keys``, each checked to be a metadata key the schema knows (``META``), at import."""
    for key in keys:
        if key not in META:
            raise LookupError(f"the schema has no metadata key {key!r}")
    return keys


def first_tensor(output: Any) -> torch.Tensor | None:
    """The first tensor in ``output`` (a tensor, or lists, tuples and dicts holding some)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        for item in output:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


def is_compiling() -> bool:
    try:
        return torch.compiler.is_compiling()
    except AttributeError:  # torch without torch.compiler
        return False


def no_compile(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Keep a hook out of torch.compile graphs (it mutates Python state)."""
    try:
        return torch._dynamo.disable(fn)
    except Exception:  # torch without dynamo
        return fn
