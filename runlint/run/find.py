"""Finding runs: runlint run directories and folders an importer recognizes, recursively."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path

from runlint.run import importers
from runlint.schema.layout import META_FILE, PARTS_DIR, parse_compact

__all__ = ["find_runs", "is_run_dir", "is_run_listing"]


def find_runs(path: Path) -> Iterator[Path]:
    """Runs at or below ``path``: runlint run directories and folders an importer recognizes."""
    if is_run_dir(path) or importers.detect(path) is not None:
        yield path
        return
    if not path.is_dir():
        return
    try:
        children = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return
    for child in children:
        yield from find_runs(child)


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` looks like a directory written by ``runlint.record``."""
    if not path.is_dir():
        return False
    if (path / META_FILE).is_file() or (path / PARTS_DIR).is_dir():
        return True
    return any(parse_compact(p.name) for p in path.glob("*.parquet"))


def is_run_listing(files: Collection[str], folders: Collection[str]) -> bool:
    """``is_run_dir`` from a listing: the names of a folder's files and of its subfolders."""
    return META_FILE in files or PARTS_DIR in folders or any(map(parse_compact, files))
