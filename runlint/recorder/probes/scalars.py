"""The ``log`` probe: the scalars given to ``rec.log`` (the ``steps`` table, a row per call) and
to ``rec.log_epoch`` (the ``epochs`` table, a row per epoch).

Logged tensors are kept in the stash by reference, with their version counter (no copy kernel
per step); ``check`` finds those changed in place before the flush.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from runlint.recorder.probes.base import Probe, Shared, names
from runlint.recorder.stash import Table, ranked
from runlint.schema.tables import EPOCHS, STEP, STEPS

__all__ = ["Scalars"]

_MICRO, _TIME = names(STEPS, "micro", "time")
(_EPOCH,) = names(EPOCHS, "epoch")


class Scalars(Probe):
    """Rows of the steps and epochs tables: their keys, then every scalar given."""

    def __init__(self, shared: Shared) -> None:
        super().__init__(shared, "log")
        self.steps = Table(STEP.name, _MICRO, _TIME)
        self.epochs = Table(_EPOCH, STEP.name)

    def check(self) -> None:
        """Tensors logged since the last check and kept by reference must be unchanged; the
        first that was not makes the stash keep copies from then on."""
        stash = self.shared.stash
        if stash.check() and not stash.copy_scalars:
            stash.copy_scalars = True
            self.shared.warn_once(
                "log:in-place",
                "runlint: a tensor passed to log() was changed in place before it was saved, "
                "so that value is lost; runlint copies logged tensors from now on",
            )

    def ignored(self, key: str, value: Any) -> None:
        """``value`` was given for ``key`` but is not a number: one warning per key."""
        self.shared.warn_once(f"value:{key}", f"runlint: ignoring {key}={value!r}: not a number")

    def take(self) -> tuple[Table, Table] | None:
        steps, epochs = self.steps, self.epochs
        self.steps = Table(STEP.name, _MICRO, _TIME)
        self.epochs = Table(_EPOCH, STEP.name)
        return (steps, epochs) if steps.n or epochs.n else None

    def columns(
        self, rows: tuple[Table, Table], scalars: np.ndarray, vectors: np.ndarray
    ) -> dict[str, dict[str, Any]]:
        steps, epochs = rows
        rank = self.shared.rank
        out = {}
        if steps.n:
            out[STEPS.name] = ranked(steps, rank, scalars)
        if epochs.n:
            out[EPOCHS.name] = ranked(epochs, rank, scalars, keys=2)  # epoch, step, then rank
        return out
