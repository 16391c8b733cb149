"""The ``examples`` probe: a fingerprint of each example the model is fed, training or not.

The forward pre-hook hands every pass's inputs over; the probe fingerprints the leading rows of
the first tensor on the device (``kernels.fingerprints``: a 48-bit hash, so nothing of the data
can be read back): every example of a training pass, the first ``EVAL_PER_PASS`` of any other
(so that each evaluation pass, of whatever set, leaves a mark), until ``TRAIN_EXAMPLES``
training and ``EVAL_EXAMPLES`` evaluation examples are in; after that a pass costs one
comparison. A training example is written once. Rules compare the two sets: a validation set
whose examples are training examples measures fit, not generalization.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from runlint.recorder import kernels
from runlint.recorder.probes.base import RowProbe, Shared, first_tensor, names
from runlint.recorder.stash import Table
from runlint.schema.tables import EXAMPLES, RANK, STEP

__all__ = ["Examples"]

_PHASE, _FINGERPRINT = names(EXAMPLES, "phase", "fingerprint")
TRAIN, EVAL = "train", "eval"


class Examples(RowProbe):
    """Fingerprints of the examples of training and of evaluation passes, up to a budget."""

    #: Training examples fingerprinted: a whole epoch of most small and medium data sets
    #: (rules scale what they find by the share of the training set this covers).
    TRAIN_EXAMPLES = 32768
    #: Evaluation examples fingerprinted: the first evaluations' worth, enough for a share.
    EVAL_EXAMPLES = 8192
    #: Examples fingerprinted per evaluation pass: a loop that evaluates on a training subset
    #: and then on the validation set leaves a mark of both passes.
    EVAL_PER_PASS = 16

    row = ("step", "phase", "offset", "rows")

    def __init__(self, shared: Shared) -> None:
        super().__init__(shared, EXAMPLES.name)
        self.left = {TRAIN: self.TRAIN_EXAMPLES, EVAL: self.EVAL_EXAMPLES}
        #: per pass since the last flush: its step, phase and the fingerprints (on the device)
        self.samples: list[tuple[int, str, torch.Tensor]] = []
        #: training fingerprints written so far: an example seen again (the next epoch) is not
        #: written twice. Only ``columns`` touches it, on the one writer thread, in flush order.
        self.written: set[int] = set()

    def see(self, training: bool, inputs: tuple[Any, ...]) -> None:
        """A forward pass starts with ``inputs``: fingerprint its examples while budget is left."""
        phase = TRAIN if training else EVAL
        left = self.left[phase]
        if left <= 0 or self.off is not None:
            return
        with self:
            x = first_tensor(inputs)
            if x is None or x.dim() == 0 or x.numel() == 0 or x.is_complex():
                return
            rows = min(int(x.shape[0]), left if training else min(left, self.EVAL_PER_PASS))
            self.left[phase] = left - rows
            with torch.no_grad():
                self.samples.append((self.shared.step, phase, kernels.fingerprints(x, rows)))

    def take(self) -> Table | None:
        samples, self.samples = self.samples, []
        if samples and self.off is None:
            with self:
                for step, phase, prints in samples:
                    offset = self.shared.stash.vector(prints)
                    self.table.add(step, phase, offset, prints.shape[0])
        return super().take()

    def columns(
        self, rows: Table, scalars: np.ndarray, vectors: np.ndarray
    ) -> dict[str, dict[str, Any]]:
        fixed = rows.fixed
        counts = np.asarray(fixed["rows"], dtype=np.int64)
        starts = np.repeat(np.asarray(fixed["offset"], dtype=np.int64), counts)
        within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        low = vectors[starts + 2 * within].astype(np.int64)
        high = vectors[starts + 2 * within + 1].astype(np.int64)
        prints = (high << 24) | low
        phase = np.repeat(np.asarray(fixed["phase"], dtype=object), counts)
        keep = np.ones(len(prints), dtype=bool)
        for i in np.flatnonzero(phase == TRAIN):
            value = int(prints[i])
            if value in self.written:
                keep[i] = False
            else:
                self.written.add(value)
        return {
            EXAMPLES.name: {
                STEP.name: np.repeat(np.asarray(fixed["step"], dtype=np.int64), counts)[keep],
                RANK.name: np.full(int(keep.sum()), self.shared.rank),
                _PHASE: phase[keep],
                _FINGERPRINT: prints[keep],
            }
        }
