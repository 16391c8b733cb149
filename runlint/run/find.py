"""Finding runs: runlint run directories and folders an importer recognizes, recursively.

The walk is bounded and never blocks on what a log folder holds (a log folder is untrusted
input): each folder is listed once (``os.scandir``, no file is opened), a symbolic link is
followed only when it stays inside the checked tree and leads to a folder not walked yet (so
two links to each other, or a link to ``/``, end the walk instead of hanging it), at most
``MAX_DEPTH`` folders deep. What the walk passes over is said (``Passed``: a hidden folder, a
link out of the tree, ...; ``runlint check -v`` shows the reasons), and a folder it cannot list
is one ``Unreadable`` line, after which the walk goes on with the next folder.

Runs nest: a TensorBoard ``runs/`` folder or a runlint run inside a Hugging Face output folder,
a runlint run inside a Lightning ``version_0/``. So the walk goes on below a run it found, into
every folder but those the run's own reader reads (a runlint run's ``parts/``, a Trainer's
``checkpoint-N/``, a TensorBoard run's ``add_scalars`` folders), which it passes over with that
reason. ``exclude`` globs leave folders out (matched against the path relative to the checked
path, and, for a glob without ``/``, against the folder's name). Runs are yielded as they are
found, so a check can start on the first run before the walk ends.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runlint.run import importers
from runlint.schema.layout import META_FILE, PARTS_DIR, parse_compact

if TYPE_CHECKING:
    from runlint.run.remote import RemoteRun

__all__ = [
    "MAX_DEPTH",
    "Found",
    "Passed",
    "Unreadable",
    "find_runs",
    "is_run_dir",
    "is_run_listing",
    "walk",
]

#: Folders deeper than this below a checked path are not walked (the walk says so).
MAX_DEPTH = 64


@dataclass(frozen=True)
class Found:
    """A run: a runlint run directory, or a folder (or file) an importer reads (or a run in
    object storage, ``runlint.run.remote``)."""

    path: Path | RemoteRun
    #: the checked path it was found under (runs are named relative to it; a URL's runs by
    #: their own URL)
    root: Path | str


@dataclass(frozen=True)
class Passed:
    """A folder the walk did not enter, and why (shown with ``-v``)."""

    path: Path
    reason: str
    root: Path


@dataclass(frozen=True)
class Unreadable:
    """A folder that could not be listed (or a URL that could not be): one error line; the
    walk goes on."""

    path: Path | str
    error: str
    root: Path | str


Event = Found | Passed | Unreadable


def find_runs(path: Path, exclude: Sequence[str] = ()) -> Iterator[Path]:
    """Runs at or below ``path``: runlint run directories and folders an importer recognizes."""
    for event in walk(path, exclude=exclude):
        if isinstance(event, Found) and isinstance(event.path, Path):
            yield event.path


def walk(root: Path, *, max_depth: int = MAX_DEPTH, exclude: Sequence[str] = ()) -> Iterator[Event]:
    """Every run at or below ``root``, in sorted depth-first order, with what was passed over
    and what could not be listed; never follows a link out of ``root`` or into a loop."""
    root = Path(root)
    if not root.is_dir():
        if importers.detect(root) is not None:  # an event file, metrics.csv, ... given itself
            yield Found(root, root)
        return
    top = os.path.realpath(root)
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[Path, int]] = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            info = os.stat(folder)
        except OSError as exc:
            yield Unreadable(folder, f"{folder}: cannot list ({exc.strerror or exc})", root)
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen:
            yield Passed(folder, "a folder already walked (a link back into the tree)", root)
            continue
        seen.add(key)
        try:
            with os.scandir(folder) as it:
                entries = {entry.name: entry for entry in it}
        except OSError as exc:
            yield Unreadable(folder, f"{folder}: cannot list ({exc.strerror or exc})", root)
            continue
        own: dict[str, str] = {}
        kind = _run_kind(folder, entries)
        if kind is not None:
            yield Found(folder, root)
            own = _own_folders(kind, entries)
        children = []
        for name in sorted(entries):
            entry = entries[name]
            child = Path(entry.path)
            if name in own:
                yield Passed(child, own[name], root)
                continue
            link = entry.is_symlink()
            try:
                is_folder = entry.is_dir()
            except OSError:
                is_folder = False
            if not is_folder:
                if link and not os.path.exists(child):
                    yield Passed(child, "a broken link, or a loop of links", root)
                continue
            pattern = _excluded(child, root, exclude)
            if pattern is not None:
                yield Passed(child, f"excluded by {pattern!r}", root)
            elif name.startswith("."):
                yield Passed(child, "a hidden folder", root)
            elif link and not _inside(os.path.realpath(child), top):
                yield Passed(child, "a link out of the checked folder", root)
            elif depth + 1 > max_depth:
                yield Passed(child, f"deeper than {max_depth} folders below {root}", root)
            else:
                children.append(child)
        stack.extend((child, depth + 1) for child in reversed(children))


def _inside(real: str, top: str) -> bool:
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def _excluded(child: Path, root: Path, exclude: Sequence[str]) -> str | None:
    """The first ``exclude`` glob that matches ``child``, or None."""
    if not exclude:
        return None
    try:
        rel = child.relative_to(root).as_posix()
    except ValueError:
        rel = child.name
    for pattern in exclude:
        glob = pattern.rstrip("/")
        if fnmatch.fnmatchcase(rel, glob) or (
            "/" not in glob and fnmatch.fnmatchcase(child.name, glob)
        ):
            return pattern
    return None


def _run_kind(folder: Path, entries: Mapping[str, os.DirEntry[str]]) -> str | None:
    """``"runlint"``, an importer's kind (``runlint.run.importers.kind``) or None: what run a
    folder, listed as ``entries``, is."""
    if META_FILE in entries or PARTS_DIR in entries or any(map(parse_compact, entries)):
        return "runlint"
    return importers.kind(folder, entries)


_CHECKPOINT = re.compile(r"^checkpoint-\d+$")


def _own_folders(kind: str, entries: Mapping[str, os.DirEntry[str]]) -> dict[str, str]:
    """The sub-folders the reader of a run of ``kind`` reads itself (not runs of their own),
    each with the reason the walk passes over it."""
    if kind == "runlint":
        return {PARTS_DIR: "the run's own part files"} if PARTS_DIR in entries else {}
    if kind == "hf":
        return {
            name: "a checkpoint of the Trainer output folder above it"
            for name in entries
            if _CHECKPOINT.match(name)
        }
    if kind == "tensorboard":
        own = {}
        for name, entry in entries.items():
            if name.startswith(".") or not _is_folder(entry):
                continue
            try:
                with os.scandir(entry.path) as it:
                    names = [e.name for e in it]
            except OSError:
                continue
            if names and all(importers.is_event_file(n) for n in names):
                own[name] = "an add_scalars folder of the TensorBoard run above it"
        return own
    return {}


def _is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


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
