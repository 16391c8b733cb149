"""Importers: build a ``Run`` from logs runlint did not record (TensorBoard, Lightning, HF).

``detect(path)`` is called for every folder ``find_runs`` walks, so it only lists the folder
once: a ``trainer_state.json`` (here or in a ``checkpoint-N/``) is a Hugging Face Trainer output
folder, a ``metrics.csv`` a Lightning CSVLogger folder, an ``events.out.tfevents.*`` file a
TensorBoard run. A runlint run directory is never claimed. Importers are pure Python, pandas and
NumPy: ``runlint check`` never imports torch, TensorBoard, Lightning or transformers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from runlint.schema.layout import META_FILE, PARTS_DIR, parse_compact

if TYPE_CHECKING:
    from runlint.run.views import Run

__all__ = ["EVENTS", "Importer", "detect", "is_event_file", "kind"]

#: TensorBoard event files are named ``events.out.tfevents`` (some writers) or
#: ``events.out.tfevents.<time>.<host>...``.
EVENTS = "events.out.tfevents"


def is_event_file(name: str) -> bool:
    """Whether a file name is a TensorBoard event file's."""
    return name == EVENTS or name.startswith(EVENTS + ".")


Importer = Callable[[Path], "Run"]

_CHECKPOINT = re.compile(r"^checkpoint-\d+$")


def kind(path: Path, entries: Mapping[str, os.DirEntry[str]] | None = None) -> str | None:
    """``"hf"``, ``"lightning"``, ``"tensorboard"`` or None: which importer reads ``path``
    (``entries``: the folder's listing, when the caller has it already)."""
    if entries is None:
        if path.is_file():
            if is_event_file(path.name):
                return "tensorboard"
            if path.name == "metrics.csv":
                return "lightning"
            if path.name == "trainer_state.json":
                return "hf"
            return None
        try:
            with os.scandir(path) as it:
                entries = {e.name: e for e in it}
        except OSError:
            return None
    if META_FILE in entries or PARTS_DIR in entries or any(map(parse_compact, entries)):
        return None  # a runlint run directory
    if "trainer_state.json" in entries:
        return "hf"
    for name, entry in entries.items():
        if _CHECKPOINT.match(name) and os.path.isfile(
            os.path.join(entry.path, "trainer_state.json")
        ):
            return "hf"
    if "metrics.csv" in entries:
        return "lightning"
    if any(is_event_file(name) for name in entries):
        return "tensorboard"
    return None


def detect(path: Path) -> Importer | None:
    """The importer that reads ``path``, or None when no importer recognizes it."""
    found = kind(Path(path))
    if found == "hf":
        from runlint.run.importers import hf_trainer

        return hf_trainer.load
    if found == "lightning":
        from runlint.run.importers import lightning_csv

        return lightning_csv.load
    if found == "tensorboard":
        from runlint.run.importers import tensorboard

        return tensorboard.load
    return None
