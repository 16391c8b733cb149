"""A finished run as a live check saw it, flush by flush (``bench/live_detection.py``, tests).

A recorder flushes at every ``rec.log_epoch``, every ``flush_every`` steps (1000 by default)
and on close, and each flush holds whole steps (docs/format.md). ``Flushes(path)`` reads a run
once and gives, for each of those flushes in order, the ``Run`` that was on disk right after
it: every table cut at the flush's step, ``meta`` as a live run has it (not complete, its step
and epoch counts so far). ``live=True`` adds the early flushes a recorder with a live check
makes (``LIVE_EARLY_FLUSHES``). Imported logs (no flushes of their own) are cut at their
evaluations.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from runlint.run.find import is_run_dir
from runlint.run.read import _LazyTables, _read_meta, load_run
from runlint.run.views import Run, from_tables
from runlint.schema.layout import LIVE_EARLY_FLUSHES

__all__ = ["DEFAULT_FLUSH_EVERY", "Flushes"]

#: The recorder's default ``flush_every`` (used when ``meta.recorder`` does not say).
DEFAULT_FLUSH_EVERY = 1000


class Flushes:
    """The flushes of the run at ``path``: ``steps`` (the run's optimizer steps), ``marks``
    (the step count of each flush, in order) and ``at(step)`` (the run after that flush)."""

    def __init__(self, path: str | Path, *, live: bool = False) -> None:
        self.path = Path(path)
        self.live = live  # replay the flushes of ``check=``: the early ones too
        self.tables, self.meta = _tables(self.path)
        total = self.meta.get("steps")
        steps = self.tables.get("steps")
        if not isinstance(total, int) or total <= 0:
            total = 0
            if steps is not None and steps.num_rows and "step" in steps.column_names:
                total = int(pc.max(steps.column("step")).as_py()) + 1
        self.steps = total
        recorder = self.meta.get("recorder")
        every = recorder.get("flush_every") if isinstance(recorder, dict) else None
        self.flush_every = every if isinstance(every, int) and every > 0 else DEFAULT_FLUSH_EVERY
        self.marks = self._marks()

    def _marks(self) -> list[int]:
        marks = set(range(self.flush_every, self.steps, self.flush_every)) | {self.steps}
        if self.live:
            marks |= {m for m in LIVE_EARLY_FLUSHES if m < self.flush_every}
        epochs = self.tables.get("epochs")
        if epochs is not None and "step" in epochs.column_names:
            marks |= {int(s) for s in epochs.column("step").to_pylist() if s is not None}
        return sorted(m for m in marks if 0 < m <= self.steps)

    def __iter__(self) -> Iterator[tuple[int, Run]]:
        for mark in self.marks:
            yield mark, self.at(mark)

    def at(self, upto: int) -> Run:
        """The run as the flush holding its first ``upto`` steps left it (not complete)."""
        cut: dict[str, pa.Table] = {}
        for name, table in self.tables.items():
            if table is None:
                continue
            if "step" not in table.column_names:
                cut[name] = table
                continue
            step = table.column("step")  # epochs: the epoch closed at ``upto`` is in its flush
            keep = pc.less_equal(step, upto) if name == "epochs" else pc.less(step, upto)
            cut[name] = table.filter(keep)
        epochs = cut.get("epochs")
        meta = {**self.meta, "steps": upto, "epochs": epochs.num_rows if epochs is not None else 0}
        return from_tables(self.path, meta, cut, complete=False)


def _tables(path: Path) -> tuple[dict[str, pa.Table | None], dict[str, Any]]:
    """The raw tables and metadata of a run directory (or of another tool's log, imported)."""
    if is_run_dir(path):
        doc = _read_meta(path)
        lazy = _LazyTables(path)
        meta = doc.get("meta", doc)
        return {t: lazy.arrow(t) for t in lazy}, dict(meta if isinstance(meta, dict) else {})
    run = load_run(path)
    tables: dict[str, pa.Table | None] = {}
    for name in run.raw:
        frame = run.raw[name]
        tables[name] = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame)
    return tables, dict(run.meta)
