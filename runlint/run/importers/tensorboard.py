"""Import TensorBoard event files (torch.utils.tensorboard, tensorboardX, Lightning, HF)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from runlint.run import limits
from runlint.run.importers import EVENTS, is_event_file
from runlint.run.importers.build import scalar_tables, with_counts
from runlint.run.importers.hparams import hparams_meta
from runlint.run.importers.tfrecord import EventScalars, read_scalars
from runlint.run.views import NothingLogged, Run, RunError, from_tables

__all__ = ["event_files", "load"]

_TIMESTAMP = re.compile(r"^events\.out\.tfevents\.(\d+)")


def event_files(path: Path) -> list[Path]:
    """The event files of a run folder (or the file itself), oldest first."""
    if path.is_file():
        return [path]
    files = [p for p in path.iterdir() if is_event_file(p.name) and p.is_file()]

    def order(p: Path) -> tuple[int, str]:
        m = _TIMESTAMP.match(p.name)
        return (int(m[1]) if m else 0, p.name)

    return sorted(files, key=order)


def add_scalars_folders(path: Path) -> list[Path]:
    """Subfolders that ``SummaryWriter.add_scalars("loss", {"train": ..., "val": ...})`` wrote
    beside a run's own event files (``loss_train/``, ``loss_val/``): folders holding event files
    and nothing else. Their scalars belong to the run, named after the folder."""
    if not path.is_dir():
        return []
    found = []
    for child in sorted(p for p in path.iterdir() if p.is_dir()):
        try:
            names = [p.name for p in child.iterdir()]
        except OSError:
            continue
        if names and all(is_event_file(n) for n in names):
            found.append(child)
    return found


def load(path: Path) -> Run:
    """Read every scalar of every event file in ``path`` (and its ``add_scalars`` folders)."""
    files = event_files(path)
    if not files:
        raise RunError(f"{path}: no TensorBoard event files ({EVENTS}*)")
    scalars = EventScalars()
    budget = [limits.current().max_bytes]  # for all the run's event files together
    for file in files:
        _read(path, file, scalars, budget)
    for folder in add_scalars_folders(path):
        before = len(scalars.tags)
        for file in event_files(folder):
            _read(path, file, scalars, budget)
        scalars.tags[before:] = [folder.name] * (len(scalars.tags) - before)
    if not scalars.tags and scalars.records == 0 and scalars.stopped_at == 0:
        raise RunError(f"{path}: not a TensorBoard event file (no readable record at byte 0)")
    if not scalars.tags:
        raise NothingLogged(f"{path}: the TensorBoard event files hold no scalars")
    frame = pd.DataFrame(
        {
            "name": scalars.tags,
            "step": scalars.steps,
            "time": scalars.times,
            "value": scalars.values,
        }
    )
    imported = scalar_tables(frame)
    raw = imported.raw
    folder = path if path.is_dir() else path.parent
    meta, provenance = hparams_meta(folder)
    meta.update(
        {
            "provenance": provenance,
            "imported_from": "tensorboard",
            "imported_names": imported.mapping,
            "summary": imported.summary,
            "import": {
                "files": [f.name for f in files],
                "records": scalars.records,
                "scalars": len(scalars.tags),
                "truncated": scalars.truncated,
                "damaged_records": scalars.damaged,
                "stopped_at_byte": scalars.stopped_at,
            },
        }
    )
    return from_tables(
        path, with_counts(meta, raw), raw, source="tensorboard", complete=not scalars.truncated
    )


def _read(path: Path, file: Path, scalars: EventScalars, budget: list[int]) -> None:
    """Read one event file into ``scalars``, charging its size to ``budget[0]`` (the bytes the
    run's event files may still take, ``max-bytes``)."""
    try:
        data = limits.read_bytes(file, budget[0])
    except limits.TooLarge:
        total = limits.current().max_bytes
        raise RunError(
            f"{path}: event files: too large (over {total / limits.MiB:.3g} MiB together; "
            "raise max-bytes in [tool.runlint] to read them)"
        ) from None
    except OSError as exc:
        raise RunError(f"{path}: cannot read {file.name} ({exc.strerror or exc})") from None
    budget[0] -= len(data)
    read_scalars(data, scalars)
