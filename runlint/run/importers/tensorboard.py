"""Import TensorBoard event files (torch.utils.tensorboard, tensorboardX, Lightning, HF)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from runlint.run.importers.build import scalar_tables, with_counts
from runlint.run.importers.hparams import hparams_meta
from runlint.run.importers.tfrecord import EventScalars, read_scalars
from runlint.run.views import NothingLogged, Run, RunError, from_tables

__all__ = ["event_files", "load"]

EVENTS_PREFIX = "events.out.tfevents."
_TIMESTAMP = re.compile(r"^events\.out\.tfevents\.(\d+)")


def event_files(path: Path) -> list[Path]:
    """The event files of a run folder (or the file itself), oldest first."""
    if path.is_file():
        return [path]
    files = [p for p in path.iterdir() if p.name.startswith(EVENTS_PREFIX) and p.is_file()]

    def order(p: Path) -> tuple[int, str]:
        m = _TIMESTAMP.match(p.name)
        return (int(m[1]) if m else 0, p.name)

    return sorted(files, key=order)


def load(path: Path) -> Run:
    """Read every scalar of every event file in ``path`` into a ``Run``."""
    files = event_files(path)
    if not files:
        raise RunError(f"{path}: no TensorBoard event files ({EVENTS_PREFIX}*)")
    scalars = EventScalars()
    for file in files:
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise RunError(f"{path}: cannot read {file.name} ({exc.strerror or exc})") from None
        read_scalars(data, scalars)
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
