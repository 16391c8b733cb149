"""The ``weights`` probe: snapshots of the first layer's weight (at most 64 rows of 1024 values)
at step 0, every ``weights_every`` steps and at the last step (the first-layer visualization)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from runlint.recorder.probes.base import RowProbe, Shared, names
from runlint.recorder.stash import Table, slices
from runlint.schema.tables import RANK, STEP, WEIGHTS

__all__ = ["Weights"]

_PARAM, _SHAPE, _VALUES = names(WEIGHTS, "param", "shape", "values")
_ROWS, _COLS = 64, 1024


class Weights(RowProbe):
    """Snapshots of the first Linear/Conv/Embedding weight, kept on the device until the flush."""

    row = ("step", "param", "shape", "offset", "length")

    def __init__(self, shared: Shared, every: int, model: nn.Module) -> None:
        super().__init__(shared, WEIGHTS.name)
        self.every = every
        self.last = -1  # step of the last snapshot
        self._weight = _first_layer_weight(model)

    def before_step(self, step: int) -> None:
        """A snapshot of the weight as it is before the optimizer step ``step`` (or at the end)."""
        if self._weight is None:
            return
        self.last = step
        name, w = self._weight
        w = w.detach()[:_ROWS].reshape(min(_ROWS, w.shape[0]), -1)[:, :_COLS].clone()
        offset = self.shared.stash.vector(w)
        self.table.add(step, name, tuple(w.shape), offset, w.numel())

    def columns(
        self, rows: Table, scalars: np.ndarray, vectors: np.ndarray
    ) -> dict[str, dict[str, Any]]:
        fixed = rows.fixed
        return {
            WEIGHTS.name: {
                STEP.name: fixed["step"],
                RANK.name: np.full(rows.n, self.shared.rank),
                _PARAM: fixed["param"],
                _SHAPE: pa.array([list(s) for s in fixed["shape"]], type=pa.list_(pa.int64())),
                _VALUES: pa.array(slices(rows, vectors), type=pa.list_(pa.float64())),
            }
        }


def _first_layer_weight(model: nn.Module) -> tuple[str, torch.Tensor] | None:
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding)):
            return (f"{name}.weight" if name else "weight"), module.weight
    return None
