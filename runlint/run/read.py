"""Reading a run directory written by ``runlint.record``: ``meta.json`` and the Parquet tables.

``load_run`` reads ``meta.json`` and checks every Parquet footer at once; the rows of a table
are read on first access (``_LazyTables``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from runlint.run import importers, limits
from runlint.run.find import is_run_dir
from runlint.run.views import Run, RunError, _one_line, _to_pandas, from_tables
from runlint.schema.layout import (
    FORMAT_NAME,
    FORMAT_VERSION,
    META_FILE,
    PARTS_DIR,
    TABLES,
    committed,
    flush_tables,
    parse_compact,
    parse_part,
)

__all__ = ["load_run"]


def load_run(path: str | Path) -> Run:
    """Read a run directory written by ``runlint.record``; raises ``RunError`` on bad input.

    ``meta.json`` is read and every Parquet file's footer is checked now; rows are read lazily.
    """
    root = Path(path)
    if not root.exists():
        raise RunError(f"{root}: no such file or directory")
    run_dir = is_run_dir(root)
    importer = importers.detect(root) if not run_dir else None
    if importer is not None:
        try:
            return importer(root)
        except RunError:
            raise
        except Exception as exc:
            raise RunError(f"{root}: cannot import ({_one_line(exc)})") from None
    if not run_dir:
        raise RunError(f"{root}: not a runlint run directory (no {META_FILE} or run tables)")
    doc = _read_meta(root)
    tables = _LazyTables(root)
    if not tables.present and not doc:
        raise RunError(f"{root}: run directory holds no data")
    meta = doc.get("meta", doc)
    if not isinstance(meta, dict):
        raise RunError(f"{root}: {META_FILE} field 'meta' is not a JSON object")
    return from_tables(root, meta, tables, complete=bool(doc.get("complete", False)))


class _LazyTables(Mapping[str, pd.DataFrame]):
    """The raw tables of a run directory, read from Parquet on first access.

    Construction lists the files and reads their footers, so a truncated file is reported when
    the run is loaded; a later read failure raises ``RunError`` too (and again on each access).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._footers: dict[Path, pq.FileMetaData] = {}  # read at load, reused when reading
        try:  # the number of files, before a footer is read
            limits.check_tables({}, _count_parquet(root))
        except limits.TooLarge as exc:
            raise RunError(f"{root}: {exc}") from None
        try:
            self._files = self._list()
            for files in self._files.values():
                self._check_footers(files)
        except FileNotFoundError:  # a live run compacted its parts meanwhile: list again
            self._files = self._list()
            for files in self._files.values():
                self._check_footers(files)
        self.present = [t for t, files in self._files.items() if files]
        self._check_size()
        self._cache: dict[str, pd.DataFrame] = {}
        self._arrow: dict[str, pa.Table | None] = {}
        self._failed: dict[str, RunError] = {}

    def _list(self) -> dict[str, list[Path]]:
        return _table_files(self.root, self._footer)

    def _footer(self, file: Path) -> pq.FileMetaData:
        footer = self._footers.get(file)
        if footer is None:
            try:
                footer = self._footers[file] = _read_footer(file)
            except FileNotFoundError:
                raise
            except limits.TooLarge as exc:
                raise RunError(f"{self.root}: {file.relative_to(self.root)} {exc}") from None
            except (OSError, pa.ArrowException, ValueError) as exc:
                raise self._error(file, exc) from None
        return footer

    def _check_footers(self, files: list[Path]) -> None:
        for file in files:
            self._footer(file)

    def _check_size(self) -> None:
        """``RunError`` ("too large") for a run over the rows/bytes/files limits, judged from
        the footers before any row is read (``runlint.run.limits``)."""
        files = sum(map(len, self._files.values()))
        footers = {
            t: [self._footers[f] for f in fs if f in self._footers] for t, fs in self._files.items()
        }
        try:
            limits.check_tables(footers, files)
        except limits.TooLarge as exc:
            raise RunError(f"{self.root}: {exc}") from None

    def __getitem__(self, table: str) -> pd.DataFrame:
        frame = self._cache.get(table)
        if frame is None:
            arrow = self.arrow(table)
            try:
                frame = _to_pandas(arrow) if arrow is not None else pd.DataFrame()
            except (pa.ArrowException, ValueError, TypeError) as exc:
                message = f"{table} cannot be converted ({_one_line(exc)})"
                raise self._remember(table, message) from None
            self._cache[table] = frame
        return frame

    def arrow(self, table: str) -> pa.Table | None:
        """The table as Arrow (``None`` when the run has none); read once, then cached."""
        if table not in self._files:
            raise KeyError(table)
        if table in self._failed:
            raise self._failed[table]
        if table not in self._arrow:
            try:
                self._arrow[table] = self._read(table)
            except RunError as exc:
                self._failed[table] = exc
                raise
        return self._arrow[table]

    def _remember(self, table: str, message: str) -> RunError:
        self._failed[table] = RunError(f"{self.root}: {message}")
        return self._failed[table]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def _read(self, table: str) -> pa.Table | None:
        files = self._files[table]
        if not files:
            return None
        try:
            parts = [_read_parquet(f, self._footers.get(f)) for f in files]
        except FileNotFoundError:  # a live run compacted its parts meanwhile: list again
            self._footers.clear()
            files = self._files[table] = self._list()[table]
            parts = [self._read_one(f) for f in files]
        except (OSError, pa.ArrowException, ValueError) as exc:
            bad = next((f for f in files if not _readable(f)), files[0])
            raise self._error(bad, exc) from None
        try:
            if not parts:
                return None
            return (
                parts[0]
                if len(parts) == 1
                else pa.concat_tables(parts, promote_options="permissive")
            )
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise RunError(
                f"{self.root}: {table} parts do not fit together ({_one_line(exc)})"
            ) from None

    def _read_one(self, file: Path) -> pa.Table:
        try:
            return _read_parquet(file)
        except (OSError, pa.ArrowException, ValueError) as exc:
            raise self._error(file, exc) from None

    def _error(self, file: Path, exc: BaseException) -> RunError:
        name = file.relative_to(self.root)
        return RunError(f"{self.root}: {name} is not a readable Parquet file ({_one_line(exc)})")


def _read_parquet(file: Path, footer: pq.FileMetaData | None = None) -> pa.Table:
    """One file, single-threaded (runs are checked in parallel processes instead), without
    importing ``pyarrow.dataset`` as ``pq.read_table`` does; ``footer`` spares reading the
    footer again when it was read at load (if the file was replaced since, it is read afresh)."""
    if footer is not None:
        try:
            with limits.open_regular(file) as raw, pq.ParquetFile(raw, metadata=footer) as handle:
                return handle.read(use_threads=False)
        except (OSError, pa.ArrowException, ValueError):
            pass
    with limits.open_regular(file) as raw, pq.ParquetFile(raw) as handle:
        return handle.read(use_threads=False)


def _read_footer(file: Path) -> pq.FileMetaData:
    """A Parquet file's footer, read only from a regular file, and only if it is no larger than
    ``max_meta_bytes`` (``runlint.run.limits``)."""
    budget = limits.current().max_meta_bytes
    with limits.open_regular(file) as raw:
        length = limits.footer_length(raw)
        if length > budget:
            raise limits.too_large("footer", length, budget, "max-meta-bytes")
        return pq.read_metadata(raw)


def _readable(file: Path) -> bool:
    try:
        _read_parquet(file)
    except Exception:
        return False
    return True


def _table_files(root: Path, footer: Callable[[Path], pq.FileMetaData]) -> dict[str, list[Path]]:
    """Per table, its files: each rank's compacted file, else that rank's parts (a live or
    killed run) of the flushes whose every table is on disk (``layout.committed``: a flush cut
    short by a kill is left out whole). ``footer`` reads a part's footer."""
    compacted: dict[tuple[str, int], Path] = {}
    for path in root.glob("*-r*.parquet"):
        parsed = parse_compact(path.name)
        if parsed and parsed[0] in TABLES:
            compacted[parsed] = path
    flushes: dict[tuple[int, int], dict[str, Path]] = {}
    parts_dir = root / PARTS_DIR
    if parts_dir.is_dir():
        for path in parts_dir.glob("*-r*-*.parquet"):
            part = parse_part(path.name)
            if part and part[0] in TABLES and (part[0], part[1]) not in compacted:
                flushes.setdefault((part[1], part[2]), {})[part[0]] = path
    done = committed(flushes, compacted, lambda p: flush_tables(footer(p).metadata))
    files: dict[str, list[tuple[int, int, Path]]] = {table: [] for table in TABLES}
    for (table, rank), path in compacted.items():
        files[table].append((rank, -1, path))
    for rank, seq in done:
        for table, path in flushes[(rank, seq)].items():
            files[table].append((rank, seq, path))
    return {table: [p for *_, p in sorted(found)] for table, found in files.items()}


def _count_parquet(root: Path) -> int:
    """The Parquet files of a run directory (compacted files and parts), found by name only."""
    parts = root / PARTS_DIR
    found = sum(1 for _ in root.glob("*.parquet"))
    return found + (sum(1 for _ in parts.glob("*.parquet")) if parts.is_dir() else 0)


def _read_meta(root: Path) -> dict[str, Any]:
    path = root / META_FILE
    if not path.exists():
        return {}
    try:
        doc = json.loads(limits.read_meta_bytes(path))
    except limits.TooLarge as exc:
        raise RunError(f"{root}: {exc}") from None
    except limits.NotRegular as exc:
        raise RunError(f"{root}: {META_FILE} {exc}") from None
    except (OSError, ValueError) as exc:
        raise RunError(f"{root}: {META_FILE} is not valid JSON ({_one_line(exc)})") from None
    if not isinstance(doc, dict):
        raise RunError(f"{root}: {META_FILE} is not a JSON object")
    if doc.get("format") == FORMAT_NAME:
        version = doc.get("version", 0)
        if not isinstance(version, int | float) or isinstance(version, bool):
            raise RunError(f"{root}: {META_FILE} has a bad format version {version!r}")
        if version > FORMAT_VERSION:
            raise RunError(
                f"{root}: format version {version} is newer than this runlint reads "
                f"({FORMAT_VERSION}); upgrade runlint"
            )
    return doc
