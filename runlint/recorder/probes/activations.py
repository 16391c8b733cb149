"""The ``activations`` probe: per activation module (Tanh, Sigmoid, ReLU, GELU, ...) and forward
call, the mean, std, saturated, dead and dead-unit fractions of its output, every
``stats_every`` steps.

The hooks only keep a sample of each output (``kernels.activation_sample``, one kernel); the
statistics of all samples are taken in batches at the flush, or when the samples pending grow
past ``PENDING_VALUES``. Eager models carry the hooks only during the forward passes of
statistics steps (``begin`` adds and removes them); compiled models keep them registered
(changing hooks would force recompiles), and they run outside the graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from runlint.recorder import kernels
from runlint.recorder.probes.base import (
    RowProbe,
    Shared,
    first_tensor,
    is_compiling,
    names,
    no_compile,
)
from runlint.recorder.probes.histograms import Histograms
from runlint.recorder.stash import Table
from runlint.schema.tables import ACTIVATIONS, RANK, STEP

__all__ = ["Activations"]

_MODULE, _KIND = names(ACTIVATIONS, "module", "kind")
names(ACTIVATIONS, *kernels.ACTIVATION_COLUMNS)  # the statistics' columns, as the kernels name them


class Activations(RowProbe):
    """Samples of the activation modules' outputs, and their statistics."""

    #: A row per sample: where its statistics are in the stash (offset, width), its number of
    #: values and of units.
    row = ("step", "module", "kind", "offset", "width", "n", "units")

    #: Samples wait until the flush, or until they hold this many values (16 MiB): their
    #: statistics are then taken in one batch instead of a dozen kernels per step.
    PENDING_VALUES: ClassVar[int] = 1 << 22
    #: ... taken in chunks of this many values, whose temporaries the allocator reuses (1 MiB).
    CHUNK_VALUES: ClassVar[int] = 1 << 18

    def __init__(self, shared: Shared, every: int, histograms: Histograms, *, static: bool) -> None:
        super().__init__(shared, ACTIVATIONS.name)
        self.every = every
        self.histograms = histograms  # takes histograms of the samples when due
        self.static = static  # hooks registered for good (compiled models)
        self.collecting = False  # this forward pass is a statistics step's
        self._histograms_due = False
        self._modules: list[tuple[nn.Module, Callable[..., Any]]] = []
        self.handles: list[Any] = []  # the hooks registered
        # samples of this step's forward passes: (step, module, kind, sample)
        self.samples: list[tuple[int, str, str, torch.Tensor]] = []
        self.pending = 0  # values in ``samples``

    def attach(self, model: nn.Module) -> None:
        """Find the activation modules of ``model``; hook them now if the hooks stay."""
        for name, module in model.named_modules():
            kind = kernels.activation_kind(module)
            if kind is not None:
                self._modules.append((module, self._hook(name, kind)))
        if self.static:
            self.hook(True)

    def detach(self) -> None:
        """Remove the hooks for good."""
        self.static = False
        self.hook(False)

    def begin(self, step: int, training: bool) -> None:
        """A training (``training``) or other forward pass starts: whether it collects, with
        hooks on only if it does. Changes nothing unless ``collecting``, ``handles`` or step is
        a statistics step."""
        collect = training and step % self.every == 0 and self.off is None
        self.collecting = collect
        self._histograms_due = collect and step % self.histograms.every == 0
        if not self.static and collect != bool(self.handles):
            self.hook(collect)

    def hook(self, on: bool) -> None:
        """Register (``on``) or remove the activation modules' forward hooks."""
        if on and not self.handles:
            self.handles = [m.register_forward_hook(h) for m, h in self._modules]
        elif not on and self.handles:
            for handle in self.handles:
                handle.remove()
            self.handles = []

    def _hook(self, name: str, kind: str) -> Callable[..., None]:
        shared = self.shared
        histograms = self.histograms

        def record(output: Any) -> None:
            out = first_tensor(output)
            if out is None or not out.is_floating_point() or out.numel() == 0:
                return
            sampled = kernels.activation_sample(out, shared.max_elems)
            self.samples.append((shared.step, name, kind, sampled))
            self.pending += sampled.numel()
            if self._histograms_due and histograms.off is None:
                try:
                    histograms.add_activation(name, kind, sampled, out.device)
                except Exception as exc:
                    histograms.fail(exc)

        def eager(module: nn.Module, inputs: Any, output: Any) -> None:
            if not self.collecting:  # static hooks (compiled models) between stats steps
                return
            try:
                record(output)
            except Exception as exc:
                self.collecting = False
                self.fail(exc)

        outside = no_compile(eager)

        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if is_compiling():
                outside(module, inputs, output)
            else:
                eager(module, inputs, output)

        return hook

    def reduce(self) -> None:
        """Statistics of the samples taken since the last call, batched: samples of one shape,
        device and kind of saturation go through ``kernels.activation_stats`` together."""
        samples, self.samples = self.samples, []
        self.pending = 0
        if self.off is not None:
            return
        with self:
            batches: dict[tuple[Any, ...], list[int]] = {}
            for i, (_, _, kind, x) in enumerate(samples):
                key = (x.shape, x.device, kernels.SATURATING.get(kind))
                batches.setdefault(key, []).append(i)
            where: list[tuple[int, int, int, int]] = [(0, 0, 0, 0)] * len(samples)
            stash = self.shared.stash
            for indices in batches.values():
                first = samples[indices[0]][3]
                for chunk in _chunks(indices, max(1, self.CHUNK_VALUES // first.numel())):
                    stacked = torch.stack([samples[i][3] for i in chunk])
                    stats, units = kernels.activation_stats(stacked, samples[chunk[0]][2])
                    offset = stash.vector(stats)
                    width = stats.shape[1]
                    for j, i in enumerate(chunk):
                        where[i] = (offset + j * width, width, first.numel(), units)
            table = self.table
            for (step, name, kind, _), place in zip(samples, where, strict=True):
                table.add(step, name, kind, *place)

    def take(self) -> Table | None:
        if self.samples:
            self.reduce()
        return super().take()

    def columns(
        self, rows: Table, scalars: np.ndarray, vectors: np.ndarray
    ) -> dict[str, dict[str, Any]]:
        """``kernels.activation_stats`` rows -> ``kernels.ACTIVATION_COLUMNS``, all at once."""
        fixed = rows.fixed
        offsets = np.asarray(fixed["offset"])
        index = np.minimum(offsets[:, None] + np.arange(6), len(vectors) - 1)
        stats = kernels.finish_activation_stats(
            vectors[index],
            np.asarray(fixed["width"]),
            np.asarray(fixed["n"]),
            np.asarray(fixed["units"]),
        )
        return {
            ACTIVATIONS.name: {
                STEP.name: fixed["step"],
                RANK.name: np.full(rows.n, self.shared.rank),
                _MODULE: fixed["module"],
                _KIND: fixed["kind"],
                **stats,
            }
        }


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
