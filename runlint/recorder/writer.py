"""Crash-safe Parquet writing: complete part files renamed into place, compacted on close.

A Parquet file is unreadable without its footer, so nothing is ever appended: each flush writes
whole part files to a temporary name and renames them atomically into ``parts/``. Every part
names, in its schema metadata (``FLUSH_KEY``), all the tables of its flush, and readers take a
flush only once each of them is on disk: a kill between two renames leaves a flush that no
reader sees, never one table of it without the others. A run killed with SIGKILL therefore
keeps every flushed step, whole. ``close()`` merges a rank's parts into one file per table and
removes them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import queue
import threading
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from runlint.schema.layout import (
    FLUSH_KEY,
    PARTS_DIR,
    committed,
    compact_name,
    flush_tables,
    parse_part,
    part_name,
)

#: Per table, its columns (lists, numpy or Arrow arrays of equal length).
Columns = Mapping[str, Mapping[str, Any]]


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write through ``write(tmp)`` then rename onto ``path``, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=1, default=str)
    write_atomic(path, lambda p: p.write_text(text))


def write_table(path: Path, table: pa.Table, *, compact: bool = True) -> None:
    """Write ``table`` atomically: compressed, or (``compact=False``, for part files that live
    until close) plain, which takes half the time on the training thread."""
    if compact:
        write_atomic(path, lambda p: pq.write_table(table, p, compression="zstd"))
    else:
        options = {"compression": "none", "use_dictionary": False, "write_statistics": False}
        write_atomic(path, lambda p: pq.write_table(table, p, **options))


class PartWriter:
    """Writes part files for one rank, on a background thread so training never waits on disk.

    Any write error becomes a single warning and switches the writer off; it never raises into
    the training loop.
    """

    def __init__(self, root: Path, rank: int, *, background: bool = True, seq: int = 0) -> None:
        self.root = root
        self.rank = rank
        self.parts = root / PARTS_DIR
        self.bytes_written = 0
        self.failed = False
        self._seq = seq  # the number of the next flush
        self._queue: queue.Queue[Callable[[], object] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        try:
            self.parts.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._fail(exc)
        if background and not self.failed:
            self._thread = threading.Thread(target=self._loop, name="runlint-writer", daemon=True)
            self._thread.start()

    def submit(self, produce: Callable[[], Columns]) -> None:
        """Queue a flush; ``produce`` runs on the writer thread and returns columns per table."""
        self.submit_call(functools.partial(self._write, produce))

    def submit_call(self, job: Callable[[], object]) -> None:
        """Run ``job`` on the writer thread, after every flush queued before it."""
        if self.failed:
            return
        if self._thread is None:
            self._run(job)
        else:
            self._queue.put(job)

    def drain(self) -> None:
        """Block until every queued flush is on disk."""
        if self._thread is not None:
            self._queue.join()

    def close(self) -> None:
        """Drain, stop the thread and compact this rank's parts into one file per table."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if not self.failed:
            try:
                compact(self.root, self.rank)
            except Exception as exc:  # the parts stay readable; only compaction is lost
                warnings.warn(f"runlint: could not compact {self.root}: {exc}", stacklevel=2)

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                self._run(job)
            finally:
                self._queue.task_done()

    def _run(self, job: Callable[[], object]) -> None:
        if self.failed:
            return
        try:
            job()
        except Exception as exc:
            self._fail(exc)

    def _write(self, produce: Callable[[], Columns]) -> None:
        tables = produce()
        flush = {FLUSH_KEY: ",".join(tables).encode()}  # a reader waits for all of them
        for table, columns in tables.items():
            path = self.parts / part_name(table, self.rank, self._seq)
            data = pa.table(dict(columns)).replace_schema_metadata(flush)
            try:
                write_table(path, data, compact=False)
            except FileNotFoundError:  # another rank compacted and removed the empty parts/
                self.parts.mkdir(parents=True, exist_ok=True)
                write_table(path, data, compact=False)
            self.bytes_written += path.stat().st_size
        self._seq += 1

    def _fail(self, exc: BaseException) -> None:
        self.failed = True
        warnings.warn(
            f"runlint: cannot write logs to {self.root} ({exc}); recording is off, "
            "training goes on",
            RuntimeWarning,
            stacklevel=3,
        )


def compact(root: Path, rank: int) -> None:
    """Merge the complete flushes of ``parts/<table>-r<rank>-*.parquet`` into
    ``<table>-r<rank>.parquet``: every table's file first, then the parts are deleted, so a kill
    at any point leaves each table whole in one place or the other."""
    parts_dir = root / PARTS_DIR
    if not parts_dir.is_dir():
        return
    flushes: dict[tuple[int, int], dict[str, pa.Table]] = {}
    paths: list[Path] = []
    for path in sorted(parts_dir.iterdir()):
        parsed = parse_part(path.name)
        if parsed and parsed[1] == rank:
            flushes.setdefault((rank, parsed[2]), {})[parsed[0]] = pq.read_table(path)
            paths.append(path)
    done = committed(flushes, (), lambda t: flush_tables(t.schema.metadata))
    by_table: dict[str, list[pa.Table]] = {}
    for key in sorted(done):
        for table, data in flushes[key].items():
            by_table.setdefault(table, []).append(data.replace_schema_metadata(None))
    for table, tables in by_table.items():
        merged = pa.concat_tables(tables, promote_options="permissive")
        write_table(root / compact_name(table, rank), merged)
    for p in paths:
        p.unlink()
    with contextlib.suppress(OSError):  # other ranks' parts may still be there
        parts_dir.rmdir()
