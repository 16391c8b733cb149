"""The ``params`` probe: per parameter, the gradient norm the optimizer used, the parameter norm
after the step and the update ratio ‖Δθ‖/‖θ‖, every ``stats_every`` optimizer steps.

The gradient norms are taken in the optimizer's step pre-hook (after DDP averaging and AMP
unscaling), the rest in its post-hook. Each statistics step stashes one vector, laid out as
``STACKED`` says: ``stack`` makes it on the device, ``split`` takes it apart at the flush.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from runlint.recorder import kernels
from runlint.recorder.probes.base import RowProbe, Shared, names
from runlint.recorder.stash import Table
from runlint.schema.tables import PARAMS, RANK, STEP

__all__ = ["STACKED", "Norms", "split", "stack"]

_PARAM, _GRAD_NORM, _PARAM_NORM, _UPDATE_NORM, _UPDATE_RATIO = names(
    PARAMS, "param", "grad_norm", "param_norm", "update_norm", "update_ratio"
)

#: The vector one statistics step stashes: for P parameters, their P gradient norms, then their
#: P norms after the step, then the P norms of their sampled updates (unscaled).
STACKED = (_GRAD_NORM, _PARAM_NORM, _UPDATE_NORM)


def stack(
    grad_norms: list[torch.Tensor], params: list[torch.Tensor], updates: list[torch.Tensor]
) -> torch.Tensor:
    """The ``STACKED`` vector of one step (one batched norm kernel for the parameters and their
    updates)."""
    return torch.stack([*grad_norms, *kernels.norms([*params, *updates])])


def split(data: np.ndarray, p: int) -> dict[str, np.ndarray]:
    """``STACKED`` vectors of ``p`` parameters, one row per step, as ``[steps, p]`` blocks."""
    return {name: data[:, i * p : (i + 1) * p] for i, name in enumerate(STACKED)}


class Norms(RowProbe):
    """Gradient, parameter and update norms per parameter (optimizer step pre/post hooks)."""

    #: A row per statistics step: its ``STACKED`` vector's offset in the stash, and the update
    #: norms' scales.
    row = ("step", "offset", "scale")

    def __init__(self, shared: Shared, every: int) -> None:
        super().__init__(shared, PARAMS.name)
        self.every = every
        self.pending: tuple[int, list[torch.Tensor]] | None = None  # step, its gradient norms
        # the parameter values the update is measured on (``kernels.update_sample``), their
        # copies before the step (reused), sqrt(numel / sampled) per parameter
        self._update_key: list[tuple[int, torch.Size]] = []
        self._update_views: list[torch.Tensor] = []
        self._before: list[torch.Tensor] = []
        self._update_scale = np.ones(0)
        self._nan: dict[torch.device, torch.Tensor] = {}

    def prepare(self) -> None:
        """The NaN filler (gradient norm of a parameter without gradient) on the parameters'
        devices, made before training."""
        for device in {p.device for p in self.shared.params} or {torch.device("cpu")}:
            self._nan_on(device)

    def before_step(self, step: int) -> None:
        """Before the optimizer step: the gradient norms, and a copy of what the update is
        measured on."""
        self.pending = (step, self._grad_norms())
        self._copy_params()

    def after_step(self) -> None:
        """After the optimizer step: stash the ``STACKED`` vector of the pending step."""
        pending, self.pending = self.pending, None
        if pending is None:
            return
        step, grad_norms = pending
        before = self._before
        torch._foreach_sub_(before, self._update_views)  # before - after: the update, negated
        stacked = stack(grad_norms, self.shared.params, before)
        self.table.add(step, self.shared.stash.vector(stacked), self._update_scale)

    def _grad_norms(self) -> list[torch.Tensor]:
        """Gradient norm per parameter (NaN where there is no gradient), as 0-d tensors."""
        params = self.shared.params
        grads = [p.grad for p in params]
        present = [g for g in grads if g is not None]
        norms = kernels.norms(present)
        if len(present) == len(grads):
            return norms
        it = iter(norms)
        return [
            next(it) if g is not None else self._nan_on(p.device)
            for g, p in zip(grads, params, strict=True)
        ]

    def _copy_params(self) -> None:
        """Copy the values the update is measured on into buffers kept from step to step."""
        params = self.shared.params
        key = [(p.data_ptr(), p.shape) for p in params]
        if key != self._update_key:  # first call, or a parameter was replaced
            max_elems = self.shared.max_elems
            self._update_key = key
            self._update_views = [kernels.update_sample(p.detach(), max_elems) for p in params]
            self._before = [torch.empty_like(v) for v in self._update_views]
            self._update_scale = np.array(
                [
                    math.sqrt(p.numel() / max(v.numel(), 1))
                    for p, v in zip(params, self._update_views, strict=True)
                ]
            )
        torch._foreach_copy_(self._before, self._update_views)

    def _nan_on(self, device: torch.device) -> torch.Tensor:
        nan = self._nan.get(device)
        if nan is None:
            nan = self._nan[device] = torch.full((), math.nan, device=device)
        return nan

    def columns(
        self, rows: Table, scalars: np.ndarray, vectors: np.ndarray
    ) -> dict[str, dict[str, Any]]:
        """A ``STACKED`` vector per step, with the update norms' scales -> a row per parameter."""
        names = self.shared.names
        p = len(names)
        offsets = np.asarray(rows.fixed["offset"])
        data = vectors[offsets[:, None] + np.arange(len(STACKED) * p)].astype(np.float64)
        blocks = split(data, p)
        blocks[_UPDATE_NORM] *= np.stack(rows.fixed["scale"])  # the sampled update's norm, scaled
        g, w, u = (blocks[name].reshape(-1) for name in STACKED)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = u / w
        n = len(offsets) * p
        return {
            PARAMS.name: {
                STEP.name: np.repeat(np.asarray(rows.fixed["step"], dtype=np.int64), p),
                RANK.name: np.full(n, self.shared.rank),
                _PARAM: pa.array(list(names) * len(offsets), type=pa.string()),
                _GRAD_NORM: g,
                _PARAM_NORM: w,
                _UPDATE_NORM: u,
                _UPDATE_RATIO: ratio,
            }
        }
