"""The ``outputs`` probe: what the model hands the loss, every ``stats_every`` steps.

A forward hook on the model itself (only during statistics steps' training forward passes,
like the activation hooks) copies the output's leading rows; at the flush the samples of one
shape go through ``kernels.output_stats`` together. What is kept: the output's width, its
range, whether rows sum to 1 (probabilities) or their logsumexp is 0 (log-probabilities), and
how much the prediction varies across examples. A hook on the output tensor copies the same
rows of the loss's gradient there (and reduces its columns over the whole pass), whose form
tells what the loss does with the output (a softmax over the classes or over the batch, a
sigmoid cross-entropy) even when the run does not name it. Rules compare them with
the loss: probabilities fed to a loss that expects logits, a width that is not the number of
classes, predictions collapsed to a constant.
"""

from __future__ import annotations

from typing import Any

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
from runlint.recorder.stash import Table
from runlint.schema.tables import OUTPUTS, RANK, STEP

__all__ = ["Outputs"]

_WIDTH, _ROWS = names(OUTPUTS, "width", "rows")
names(OUTPUTS, *kernels.OUTPUT_COLUMNS)


class Outputs(RowProbe):
    """Statistics of the model's output on statistics steps."""

    row = ("step", "offset", "width", "rows")

    def __init__(self, shared: Shared, every: int, *, static: bool) -> None:
        super().__init__(shared, OUTPUTS.name)
        self.every = every
        self.static = static  # the hook stays registered (compiled models)
        self.collecting = False
        self.handle: Any = None
        self.model: nn.Module | None = None
        #: per sample since the last flush: its step, the output's leading rows, their gradient
        self.samples: list[_Sample] = []

    def attach(self, model: nn.Module) -> None:
        self.model = model
        if self.static:
            self.hook(True)

    def detach(self) -> None:
        self.static = False
        self.hook(False)

    def begin(self, step: int, training: bool) -> None:
        """A forward pass starts: hooked when it is a statistics step's training pass."""
        collect = training and step % self.every == 0 and self.off is None
        self.collecting = collect
        if not self.static and collect != (self.handle is not None):
            self.hook(collect)

    def hook(self, on: bool) -> None:
        if on and self.handle is None and self.model is not None:
            self.handle = self.model.register_forward_hook(self._hook())
        elif not on and self.handle is not None:
            self.handle.remove()
            self.handle = None

    def _hook(self) -> Any:
        shared = self.shared

        def eager(module: nn.Module, inputs: Any, output: Any) -> None:
            if not self.collecting:
                return
            try:
                logits = getattr(output, "logits", None)  # transformers' ModelOutput: not its loss
                out = logits if isinstance(logits, torch.Tensor) else first_tensor(output)
                if out is None or not out.is_floating_point() or out.numel() == 0:
                    return
                sample = _Sample(shared.step, kernels.output_rows(out, shared.max_elems))
                self.samples.append(sample)
                if out.requires_grad:
                    out.register_hook(sample.take_grad)
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

    def take(self) -> Table | None:
        """The samples' statistics, batched by shape and device: a row per sample, in order."""
        samples, self.samples = self.samples, []
        if samples and self.off is None:
            with self:
                batches: dict[tuple[Any, ...], list[int]] = {}
                for i, sample in enumerate(samples):
                    x = sample.rows
                    batches.setdefault((x.shape, x.device), []).append(i)
                width = len(kernels.OUTPUT_COLUMNS)
                offsets = [0] * len(samples)
                for indices in batches.values():
                    batch = [samples[i] for i in indices]
                    stats = kernels.output_stats(
                        torch.stack([s.rows for s in batch]),
                        torch.stack([s.grad() for s in batch]),
                        torch.stack([s.col_shift() for s in batch]),
                    )
                    offset = self.shared.stash.vector(stats)
                    for j, i in enumerate(indices):
                        offsets[i] = offset + j * width
                for sample, offset in zip(samples, offsets, strict=True):
                    rows, cols = sample.rows.shape
                    self.table.add(sample.step, offset, cols, rows)
        return super().take()

    def columns(
        self, rows: Table, scalars: np.ndarray, vectors: np.ndarray
    ) -> dict[str, dict[str, Any]]:
        fixed = rows.fixed
        width = len(kernels.OUTPUT_COLUMNS)
        offsets = np.asarray(fixed["offset"])
        stats = vectors[offsets[:, None] + np.arange(width)].astype(np.float64)
        return {
            OUTPUTS.name: {
                STEP.name: fixed["step"],
                RANK.name: np.full(rows.n, self.shared.rank),
                _WIDTH: fixed["width"],
                _ROWS: fixed["rows"],
                **{name: stats[:, i] for i, name in enumerate(kernels.OUTPUT_COLUMNS)},
            }
        }


class _Sample:
    """A statistics step's output rows and, once the backward pass has been through them, the
    loss's gradient at the same rows (a copy each)."""

    __slots__ = ("columns", "gradient", "rows", "step")

    def __init__(self, step: int, rows: torch.Tensor) -> None:
        self.step = step
        self.rows = rows
        self.gradient: torch.Tensor | None = None
        self.columns: torch.Tensor | None = None  # kernels.column_shift of the whole gradient

    def take_grad(self, grad: torch.Tensor) -> None:
        """The output tensor's gradient hook: copy the rows, reduce the columns of the whole
        gradient (which is left as it is)."""
        try:
            rows = self.rows
            self.gradient = kernels.output_rows(grad, rows.numel()).reshape(rows.shape)
            self.columns = kernels.column_shift(grad)
        except Exception:  # a gradient of another shape: this sample's signatures stay NaN
            self.gradient = self.columns = None

    def grad(self) -> torch.Tensor:
        """The gradient's rows, NaN where none reached the output (yet)."""
        gradient = self.gradient
        if gradient is None or gradient.device != self.rows.device:
            return torch.full_like(self.rows, float("nan"))
        return gradient

    def col_shift(self) -> torch.Tensor:
        """``kernels.column_shift`` of the gradient, NaN where none reached the output."""
        columns = self.columns
        if columns is None or columns.device != self.rows.device:
            return torch.full((), float("nan"), device=self.rows.device)
        return columns
