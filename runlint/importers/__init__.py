"""Importers: build a ``Run`` from logs runlint did not record (TensorBoard, Lightning, HF)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runlint.run import Run

Importer = Callable[[Path], "Run"]


def detect(path: Path) -> Importer | None:
    """The importer that reads ``path``, or None when no importer recognizes it."""
    return None
