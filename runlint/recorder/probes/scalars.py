"""The ``log`` probe: the scalars given to ``rec.log`` (the ``steps`` table, a row per call) and
to ``rec.log_epoch`` (the ``epochs`` table, a row per epoch).

Logged tensors are kept in the stash by reference, with their version counter (no copy kernel
per step); ``check`` finds those changed in place before the flush.

A value that cannot be recorded costs only itself: it is missing from its row (null on disk,
never NaN), with one warning per key, and the row and the other values are kept. That covers
what is not a number (a string, a list, a tensor of several values), a tensor that cannot be
copied to the host (on the ``meta`` device: found at the flush), and names past the
``max_keys`` distinct ones a table may have. A NaN or an infinity is a value, recorded as such.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from runlint.recorder.probes.base import Probe, Shared, names
from runlint.recorder.stash import Keys, Table, ranked
from runlint.schema.tables import EPOCHS, STEP, STEPS

__all__ = ["Scalars"]

_MICRO, _TIME = names(STEPS, "micro", "time")
(_EPOCH,) = names(EPOCHS, "epoch")


class Scalars(Probe):
    """Rows of the steps and epochs tables: their keys, then every scalar given."""

    def __init__(self, shared: Shared, max_keys: int = 1000) -> None:
        super().__init__(shared, "log")
        self._keys = Keys(max_keys), Keys(max_keys)  # the steps and epochs tables'
        self.steps = Table(STEP.name, _MICRO, _TIME, keys=self._keys[0])
        self.epochs = Table(_EPOCH, STEP.name, keys=self._keys[1])

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

    def ignored(self, table: Table, key: str, value: Any, exc: BaseException | None = None) -> None:
        """``value`` was given for ``key`` but cannot be recorded: one warning per key (and
        one for all the names past the key limit)."""
        keys = table.keys
        if (
            exc is None
            and keys is not None
            and key not in keys.names
            and len(keys.names) >= keys.limit
        ):
            self.shared.warn_once(
                f"keys:{id(keys)}",
                f"runlint: more than {keys.limit} distinct names logged; ignoring {key!r} "
                f"and every new name after it (raise max_keys= to keep more)",
                stacklevel=5,
            )
            return
        text = repr(value)
        text = text if len(text) <= 60 else text[:57] + "..."
        why = f"{type(exc).__name__}: {exc}" if exc is not None else "not a number"
        self.shared.warn_once(
            f"value:{key}",
            f"runlint: cannot record {key}={text} ({why}); recorded as missing",
            stacklevel=5,
        )

    def take(self) -> tuple[Table, Table] | None:
        steps, epochs = self.steps, self.epochs
        self.steps = Table(STEP.name, _MICRO, _TIME, keys=self._keys[0])
        self.epochs = Table(_EPOCH, STEP.name, keys=self._keys[1])
        return (steps, epochs) if steps.n or epochs.n else None

    def not_copied(self, rows: tuple[Table, Table], failed: dict[int, str]) -> None:
        """On the writer: one warning per key with a tensor that could not be copied to the
        host (``HostCopy.failed``: stash index -> the error)."""
        for table in rows:
            for key, values in table.values.items():
                why = next((failed[i] for i in values.refs if i in failed), None)
                if why is not None:
                    self.shared.warn_once(
                        f"copy:{key}",
                        f"runlint: cannot copy {key} to the host ({why}); recorded as missing",
                    )

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
