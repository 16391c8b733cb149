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
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from runlint.schema.layout import META_FILE, PARTS_DIR, parse_compact

if TYPE_CHECKING:
    from runlint.run.views import Run

__all__ = [
    "EVENTS",
    "HF_STATE",
    "Importer",
    "detect",
    "is_checkpoint",
    "is_event_file",
    "kind",
    "kind_of_entries",
]

#: TensorBoard event files are named ``events.out.tfevents`` (some writers) or
#: ``events.out.tfevents.<time>.<host>...``.
EVENTS = "events.out.tfevents"
#: The file a Hugging Face Trainer output folder (or its ``checkpoint-N/``) is read from.
HF_STATE = "trainer_state.json"


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
            if path.name == HF_STATE:
                return "hf"
            return None
        try:
            with os.scandir(path) as it:
                entries = {e.name: e for e in it}
        except OSError:
            return None
    listing = entries
    return kind_of_entries(
        listing, lambda name: os.path.isfile(os.path.join(listing[name].path, HF_STATE))
    )


def kind_of_entries(names: Collection[str], has_state: Callable[[str], bool]) -> str | None:
    """``kind`` of a folder from the names of its entries: what a listing of the folder, local
    or in an object store (``runlint.run.remote``), decides. ``has_state(name)`` says whether
    the entry ``name`` is a folder holding a ``trainer_state.json`` file."""
    if META_FILE in names or PARTS_DIR in names or any(map(parse_compact, names)):
        return None  # a runlint run directory
    if HF_STATE in names:
        return "hf"
    if any(is_checkpoint(name) and has_state(name) for name in names):
        return "hf"
    if "metrics.csv" in names:
        return "lightning"
    if any(is_event_file(name) for name in names):
        return "tensorboard"
    return None


def is_checkpoint(name: str) -> bool:
    """Whether a folder name is a Hugging Face Trainer checkpoint's (``checkpoint-N``)."""
    return _CHECKPOINT.match(name) is not None


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
