"""The ``histograms`` probe: coarse histograms of activations and gradients every ``hist_every``
steps, in fixed bins per kind (``kernels.histogram_edges``) so that no min or max is read back.

Activation histograms are taken from the activation probe's samples as its hooks see them;
gradient histograms in the optimizer's step pre-hook, batched for parameters on one device.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import torch

from runlint.recorder import kernels
from runlint.recorder.probes.base import RowProbe, Shared, names
from runlint.recorder.stash import Table, slices
from runlint.schema.tables import HISTOGRAMS, RANK, STEP

__all__ = ["Histograms"]

_SOURCE, _NAME, _EDGES, _COUNTS = names(HISTOGRAMS, "source", "name", "edges", "counts")
#: Values of the ``source`` column.
ACTIVATION, GRADIENT = "activation", "gradient"


class Histograms(RowProbe):
    """Histogram rows; the counts stay on the device in the stash until the flush."""

    row = ("step", "source", "name", "edges", "offset", "length")

    def __init__(self, shared: Shared, every: int) -> None:
        super().__init__(shared, HISTOGRAMS.name)
        self.every = every
        self._edges: dict[tuple[str, torch.device], torch.Tensor] = {}
        # per device: the batched gradient histograms' value -> bin offsets, and ones
        self._grad_hist: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def prepare(self) -> None:
        """Bin edges on the parameters' devices, made before training (building them copies
        from the host), and for parameters on one device the batched gradient histograms'
        offsets."""
        params = self.shared.params
        for device in {p.device for p in params} or {torch.device("cpu")}:
            for kind in {*kernels.ACTIVATION_KINDS.values(), GRADIENT}:
                self.edge_tensor(kind, device)
        devices = {p.device for p in params}
        if len(devices) == 1:
            (device,) = devices
            bins = len(kernels.histogram_edges(GRADIENT)) + 1
            lengths = torch.tensor([min(p.numel(), self.shared.max_elems) for p in params])
            base = torch.repeat_interleave(torch.arange(len(params)) * bins, lengths)
            ones = torch.ones(base.numel(), dtype=torch.float32, device=device)
            self._grad_hist[device] = (base.to(device), ones)

    def edge_tensor(self, kind: str, device: torch.device) -> torch.Tensor:
        key = (kind, device)
        edges = self._edges.get(key)
        if edges is None:
            edges = self._edges[key] = kernels.edge_tensor(kind, device)
        return edges

    def add_activation(
        self, name: str, kind: str, sample: torch.Tensor, device: torch.device
    ) -> None:
        """The histogram of an activation module's ``sample`` (its output was on ``device``)."""
        edges = kernels.histogram_edges(kind)
        counts = kernels.histogram(sample, self.edge_tensor(kind, device))
        self._add(ACTIVATION, name, edges, counts)

    def before_step(self, step: int) -> None:
        """The gradient histograms, before the optimizer step."""
        shared = self.shared
        params = shared.params
        edges = kernels.histogram_edges(GRADIENT)
        grads = [p.grad for p in params]
        device = params[0].device if params else None
        if (
            device is not None
            and device in self._grad_hist
            and all(g is not None and g.is_floating_point() and g.device == device for g in grads)
        ):
            base, ones = self._grad_hist[device]
            heads = [g.reshape(-1)[: shared.max_elems] for g in grads]
            counts = kernels.gradient_histograms(
                heads, self.edge_tensor(GRADIENT, device), base, ones
            )
            offset = shared.stash.vector(counts)
            bins = len(edges) + 1
            for i, name in enumerate(shared.names):
                self._add(GRADIENT, name, edges, (offset + i * bins, bins))
            return
        for name, g in zip(shared.names, grads, strict=True):
            if g is not None and g.is_floating_point():
                edge_t = self.edge_tensor(GRADIENT, g.device)
                self._add(
                    GRADIENT, name, edges, kernels.gradient_histogram(g, shared.max_elems, edge_t)
                )

    def _add(
        self,
        source: str,
        name: str,
        edges: tuple[float, ...],
        counts: torch.Tensor | tuple[int, int],
    ) -> None:
        """One row at the current step; ``counts`` is a tensor, or (offset, length) of a
        stashed one."""
        shared = self.shared
        if isinstance(counts, torch.Tensor):
            counts = (shared.stash.vector(counts), counts.numel())
        self.table.add(shared.step, source, name, edges, *counts)

    def columns(
        self, rows: Table, scalars: np.ndarray, vectors: np.ndarray
    ) -> dict[str, dict[str, Any]]:
        fixed = rows.fixed
        return {
            HISTOGRAMS.name: {
                STEP.name: fixed["step"],
                RANK.name: np.full(rows.n, self.shared.rank),
                _SOURCE: fixed["source"],
                _NAME: fixed["name"],
                _EDGES: pa.array([list(e) for e in fixed["edges"]], type=pa.list_(pa.float64())),
                _COUNTS: pa.array(slices(rows, vectors), type=pa.list_(pa.float64())),
            }
        }
