"""``runlint.record``: hooks that record a PyTorch run into a Parquet run directory.

Every statistic is computed on the device and kept there; a flush (every ``flush_every`` steps,
every ``flush_secs`` seconds, at each ``log_epoch`` and on close) concatenates them into one
buffer per device, starts one non-blocking copy to pinned host memory and hands it to the writer
thread, which waits for the copy and writes the part files. Steps that do not flush never wait
on the device.
"""

from __future__ import annotations

import functools
import math
import operator
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from runlint.recorder import kernels
from runlint.recorder.stash import GroupLog, HostCopy, Stash, Table, resolve
from runlint.recorder.writer import PartWriter, write_json
from runlint.schema.layout import FORMAT_NAME, FORMAT_VERSION, META_FILE, PARTS_DIR, parse_compact

__all__ = ["Recorder"]

_GROUP_KEYS = (
    "lr",
    "momentum",
    "dampening",
    "weight_decay",
    "eps",
    "alpha",
    "lr_decay",
    "initial_accumulator_value",
    "nesterov",
    "amsgrad",
)


_NUMBERS = (bool, int, float, np.floating, np.integer)

#: Activation samples wait until the flush, or until they hold this many values (16 MiB):
#: their statistics are then taken in one batch instead of a dozen kernels per step.
_PENDING_VALUES = 1 << 22
#: ... taken in chunks of this many values, whose temporaries the allocator reuses (1 MiB).
_CHUNK_VALUES = 1 << 18


class Recorder:
    """Records a training run; use through ``runlint.record(...)`` as a context manager.

    Options (keywords of ``runlint.record``):
      stats_every   per-parameter and per-activation statistics every N optimizer steps (10)
      hist_every    activation and gradient histograms every N steps (100)
      weights_every first-layer weight snapshot every N steps (500; also the first and last)
      flush_every   write to disk every N steps (1000), and at least every ``flush_secs`` (10 s)
      max_elems     activation values sampled per statistic, and parameter values the update
                    norm is measured on (a strided sample of larger parameters) (4096)
      background    write part files on a background thread (default: only for CUDA models,
                    whose flushes then never wait for the copy; on CPU a writer thread competes
                    with training for the GIL and cores, see bench/overhead.py)

    Cost: on a step without statistics the recorder runs four short Python hooks (model forward
    pre-hook, optimizer step pre/post hooks, ``log``) and launches one kernel per tensor logged.
    Activation hooks exist only during the forward passes of statistics steps (the forward
    pre-hook adds and removes them), except for compiled models, whose hooks stay registered
    (changing hooks would force recompiles) and run outside the graph.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        logdir: str | os.PathLike[str],
        meta: dict[str, Any] | None = None,
        *,
        stats_every: int = 10,
        hist_every: int = 100,
        weights_every: int = 500,
        flush_every: int = 1000,
        flush_secs: float = 10.0,
        max_elems: int = 4096,
        background: bool | None = None,
    ) -> None:
        self.model = _unwrap(model)
        self.optimizer = optimizer
        self.root = Path(logdir)
        self.user_meta = dict(meta or {})
        self.stats_every = max(1, stats_every)
        self.hist_every = max(1, hist_every)
        self.weights_every = max(1, weights_every)
        self.flush_every = max(1, flush_every)
        self.flush_secs = flush_secs
        self.max_elems = max_elems
        self._background = background

        self.step = 0  # optimizer steps completed
        self.epoch = 0
        self.off: dict[str, str] = {}  # probe -> why it was switched off
        self._fwd_step = 0
        self._micro = 0
        self._collect_acts = False
        self._collect_hist = False
        self._static_hooks = _is_compiled(model)  # activation hooks registered for good
        self._activation_modules: list[tuple[nn.Module, Callable[..., Any]]] = []
        self._act_handles: list[Any] = []
        # activation samples of this step's forward passes: (step, module, kind, sample)
        self._act_samples: list[tuple[int, str, str, torch.Tensor]] = []
        self._handles: list[Any] = []
        # recorded since the last flush (columns) and the device tensors they point into
        self._tables = _new_tables()
        self._groups = GroupLog()
        self._stash = Stash()
        self._act_pending = 0  # values in ``_act_samples``
        # per param group at the last change: its size, keys, their getter and their values
        self._group_state: list[tuple[int, tuple[str, ...], Callable[..., Any], Any]] = []
        self._group_tensors = False  # a setting is a tensor: record every step
        self._pending_norms: tuple[int, list[torch.Tensor]] | None = None
        # the parameter values the update is measured on (``kernels.update_sample``), their
        # copies before the step (reused), sqrt(numel / sampled) per parameter
        self._update_key: list[tuple[int, torch.Size]] = []
        self._update_views: list[torch.Tensor] = []
        self._before: list[torch.Tensor] = []
        self._update_scale = np.ones(0)
        self._grad_hist: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self._flush_at = self.flush_every
        self._flush_deadline = time.monotonic() + flush_secs
        self._inferred: dict[str, Any] = {}
        self._writer: PartWriter | None = None
        self._meta_static: dict[str, Any] = {}
        self._edges: dict[tuple[str, torch.device], torch.Tensor] = {}
        self._nan: dict[torch.device, torch.Tensor] = {}
        self._weights_step = -1  # step of the last first-layer snapshot
        self._closed = False
        self._disabled = False  # the log directory cannot be written: record nothing

        self.rank, self.world_size = _dist_rank()
        named = list(self.model.named_parameters())
        self._names = [n for n, _ in named]
        self._params: list[torch.Tensor] = [p for _, p in named]
        self._first_weight = _first_layer_weight(self.model)

    # -- context manager --------------------------------------------------------------------
    def __enter__(self) -> Recorder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Register the hooks and write the metadata; ``__enter__`` calls it."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._clear_stale()
        except OSError as exc:
            self._disabled = True
            self._closed = True
            warnings.warn(
                f"runlint: cannot write logs to {self.root} ({exc}); recording is off, "
                "training goes on",
                RuntimeWarning,
                stacklevel=3,
            )
            return
        background = self._background
        if background is None:
            background = any(p.device.type == "cuda" for p in self._params)
        self._writer = PartWriter(self.root, self.rank, background=background)
        opt = self.optimizer
        self._handles.append(opt.register_step_pre_hook(self._pre_step))
        self._handles.append(opt.register_step_post_hook(self._post_step))
        self._handles.append(
            self.model.register_forward_pre_hook(self._forward_pre_hook(), with_kwargs=True)
        )
        for name, module in self.model.named_modules():
            kind = kernels.activation_kind(module)
            if kind is not None:
                self._activation_modules.append((module, self._activation_hook(name, kind)))
        if self._static_hooks:
            self._hook_activations(True)
        self._flush_deadline = time.monotonic() + self.flush_secs
        with self._probe("meta"):
            self._meta_static = self._static_meta()
            self._prepare_device_constants()
        self._write_meta(complete=False)

    def close(self) -> None:
        """Remove every hook, flush, compact the parts and mark the run complete. Never raises."""
        if self._closed:
            return
        self._closed = True
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._static_hooks = False
        self._hook_activations(False)
        if self._weights_step != self.step:
            self._snapshot_weights(self.step)
        with self._probe("flush"):
            self._flush(meta=False)
        if self._writer is not None:
            with self._probe("flush"):
                self._writer.close()
        self._write_meta(complete=True)

    # -- user API ---------------------------------------------------------------------------
    def log(self, **scalars: Any) -> None:
        """Record scalars (tensors or numbers) for the current optimizer step. Never syncs."""
        if self._closed or "log" in self.off:
            return
        try:
            self._check_scalars()
            table = self._tables["steps"]
            row = table.add(self._fwd_step, self._micro, time.time())
            self._micro += 1
            for key, value in scalars.items():
                self._put(table, key, row, value)
        except Exception as exc:
            self._switch_off("log", exc)

    def log_epoch(self, **metrics: Any) -> None:
        """Close an epoch with its metrics (train_loss, train_acc, val_loss, val_acc, ...)."""
        if self._closed:
            return
        with self._probe("log"):
            self._check_scalars()
            table = self._tables["epochs"]
            row = table.add(self.epoch, self.step)
            self.epoch += 1
            for key, value in metrics.items():
                self._put(table, key, row, value)
        with self._probe("flush"):
            self._flush()

    def begin_batch(self, batch: Any = None) -> None:
        """Mark the start of a training forward pass (a batch or a gradient-accumulation
        micro-batch) for code that does not call the recorded model itself.

        The model's forward pre-hook does this by itself; integrations whose training step calls
        inner modules (Lightning's ``training_step``) call it before each batch. ``batch`` (a
        tensor, or a tuple, list or dict holding tensors) serves to infer the batch size. Counts
        as training when the model is in training mode and gradients are enabled. Never raises.
        """
        if self._closed or "forward" in self.off:
            return
        try:
            self._begin_forward(self.model.training and torch.is_grad_enabled(), batch)
        except Exception as exc:
            self._switch_off("forward", exc)

    def update_meta(self, **values: Any) -> None:
        """Add or change run metadata, as if given in ``meta=`` (provenance ``"given"``).

        It reaches ``meta.json`` at the next flush and on close.
        """
        self.user_meta.update(values)

    @property
    def bytes_written(self) -> int:
        """Bytes of part files written so far (compaction not counted)."""
        return self._writer.bytes_written if self._writer else 0

    # -- hooks ------------------------------------------------------------------------------
    def _forward_pre_hook(self) -> Callable[..., None]:
        def eager(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if "forward" in self.off:
                return
            try:
                self._begin_forward(module.training and torch.is_grad_enabled(), args, kwargs)
            except Exception as exc:
                self._switch_off("forward", exc)

        def compiled(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if not self._static_hooks and not self._closed:  # compiled after record() began
                self._static_hooks = True
                self._hook_activations(True)
            eager(module, args, kwargs)

        outside = _no_compile(compiled)

        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if _is_compiling():  # traced by dynamo: run the hook outside the graph
                outside(module, args, kwargs)
            else:
                eager(module, args, kwargs)

        return hook

    def _begin_forward(self, training: bool, *inputs: Any) -> None:
        step = self.step
        if self._fwd_step != step:
            self._micro = 0
            self._fwd_step = step
        collect = training and step % self.stats_every == 0 and "activations" not in self.off
        self._collect_acts = collect
        self._collect_hist = collect and step % self.hist_every == 0
        if not self._static_hooks and collect != bool(self._act_handles):
            self._hook_activations(collect)
        if "batch_size" not in self._inferred:
            first = _first_tensor(inputs)
            if first is not None and first.dim() > 0:
                self._inferred["batch_size"] = int(first.shape[0])

    def _hook_activations(self, on: bool) -> None:
        """Register (``on``) or remove the activation modules' forward hooks."""
        if on and not self._act_handles:
            self._act_handles = [m.register_forward_hook(h) for m, h in self._activation_modules]
        elif not on and self._act_handles:
            for handle in self._act_handles:
                handle.remove()
            self._act_handles = []

    def _activation_hook(self, name: str, kind: str) -> Callable[..., None]:
        def record(output: Any) -> None:
            out = _first_tensor(output)
            if out is None or not out.is_floating_point() or out.numel() == 0:
                return
            sampled = kernels.activation_sample(out, self.max_elems)
            self._act_samples.append((self.step, name, kind, sampled))
            self._act_pending += sampled.numel()
            if self._collect_hist and "histograms" not in self.off:
                try:
                    edges = kernels.histogram_edges(kind)
                    counts = kernels.histogram(sampled, self._edge_tensor(kind, out.device))
                    self._add_histogram("activation", name, edges, counts)
                except Exception as exc:
                    self._switch_off("histograms", exc)

        def eager(module: nn.Module, inputs: Any, output: Any) -> None:
            if not self._collect_acts:  # static hooks (compiled models) between stats steps
                return
            try:
                record(output)
            except Exception as exc:
                self._collect_acts = False
                self._switch_off("activations", exc)

        outside = _no_compile(eager)

        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if _is_compiling():
                outside(module, inputs, output)
            else:
                eager(module, inputs, output)

        return hook

    def _pre_step(self, optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> None:
        step = self.step
        if self._act_pending >= _PENDING_VALUES:
            self._activation_stats()
        if "groups" not in self.off:
            try:
                self._record_groups(optimizer, step)
            except Exception as exc:
                self._switch_off("groups", exc)
        if step % self.stats_every == 0 and "params" not in self.off:
            with self._probe("params"), torch.no_grad():
                self._pending_norms = (step, self._grad_norms())
                self._copy_params()
        if step % self.hist_every == 0 and "histograms" not in self.off:
            with self._probe("histograms"), torch.no_grad():
                self._gradient_histograms()
        if step % self.weights_every == 0:
            self._snapshot_weights(step)

    def _post_step(self, optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> None:
        pending = self._pending_norms
        if pending is not None:
            self._pending_norms = None
            with self._probe("params"), torch.no_grad():
                self._param_stats(*pending)
        self.step = step = self.step + 1
        self._micro = 0
        if step >= self._flush_at or time.monotonic() >= self._flush_deadline:
            with self._probe("flush"):
                self._flush()

    def _activation_stats(self) -> None:
        """Statistics of the activation samples taken since the last call, batched: samples of
        one shape, dtype and kind of saturation go through ``kernels.activation_stats`` together."""
        samples, self._act_samples = self._act_samples, []
        self._act_pending = 0
        if "activations" in self.off:
            return
        with self._probe("activations"):
            batches: dict[tuple[Any, ...], list[int]] = {}
            for i, (_, _, kind, x) in enumerate(samples):
                key = (x.shape, x.device, kernels.SATURATING.get(kind))
                batches.setdefault(key, []).append(i)
            where: list[tuple[int, int, int, int]] = [(0, 0, 0, 0)] * len(samples)
            for indices in batches.values():
                first = samples[indices[0]][3]
                for chunk in _chunks(indices, max(1, _CHUNK_VALUES // first.numel())):
                    stacked = torch.stack([samples[i][3] for i in chunk])
                    stats, units = kernels.activation_stats(stacked, samples[chunk[0]][2])
                    offset = self._stash.vector(stats)
                    width = stats.shape[1]
                    for j, i in enumerate(chunk):
                        where[i] = (offset + j * width, width, first.numel(), units)
            table = self._tables["activations"]
            for (step, name, kind, _), place in zip(samples, where, strict=True):
                table.add(step, name, kind, *place)

    def _record_groups(self, optimizer: torch.optim.Optimizer, step: int) -> None:
        """lr, momentum, betas, weight decay, ... of every param group, as they are now.

        The settings are stored again only when one of them is a different object than at the
        last change (schedulers assign new numbers) or is a tensor (it may change in place).
        """
        log = self._groups
        at = len(log.steps)
        log.steps.append(step)
        groups = optimizer.param_groups
        state = self._group_state
        if log.changes.n and not self._group_tensors and len(state) == len(groups):
            for group, (size, _, get, last) in zip(groups, state, strict=True):
                if len(group) != size or not all(map(operator.is_, get(group), last)):
                    break
            else:
                return
        self._change_groups(groups, at)

    def _change_groups(self, groups: list[dict[str, Any]], at: int) -> None:
        table = self._groups.changes
        put = self._put
        previous = self._group_state
        state = self._group_state = []
        tensors = False
        for i, group in enumerate(groups):
            if i < len(previous) and previous[i][0] == len(group):  # same keys: a new value
                _, keys, get, _ = previous[i]
            else:
                keys = tuple(k for k in (*_GROUP_KEYS, "betas") if k in group)
                get = _getter(keys)
            values = get(group)
            state.append((len(group), keys, get, values))
            row = table.add(at, i)
            for key, value in zip(keys, values, strict=True):
                if key == "betas" and isinstance(value, (tuple, list)) and len(value) == 2:
                    tensors |= put(table, "beta1", row, value[0])
                    tensors |= put(table, "beta2", row, value[1])
                elif key != "betas":
                    tensors |= put(table, key, row, value)
        self._group_tensors = tensors

    def _check_scalars(self) -> None:
        """Tensors logged since the last check and kept by reference must be unchanged."""
        stash = self._stash
        if stash.check() and not stash.copy_scalars:
            stash.copy_scalars = True
            self._warn_once(
                "log:in-place",
                "runlint: a tensor passed to log() was changed in place before it was saved, "
                "so that value is lost; runlint copies logged tensors from now on",
            )

    def _put(self, table: Table, key: str, row: int, value: Any) -> bool:
        """Record ``value`` in column ``key`` of ``row``: a number as it is, a one-element tensor
        as a copy on its device (returns True); anything else is left out (with a warning,
        except ``None`` and optimizer settings)."""
        kind = type(value)
        if kind is float or kind is int or kind is bool:
            column = table.value(key)
            column.rows.append(row)
            column.numbers.append(value)
        elif isinstance(value, torch.Tensor) and value.numel() == 1:
            column = table.value(key)
            column.ref_rows.append(row)
            # logged values by reference (``_check_scalars``); settings may change in place
            column.refs.append(self._stash.scalar(value, copy=table is self._groups.changes))
            return True
        elif isinstance(value, _NUMBERS):
            column = table.value(key)
            column.rows.append(row)
            column.numbers.append(float(value))
        elif value is None:
            table.value(key)
        elif table is self._tables["steps"] or table is self._tables["epochs"]:
            self._warn_once(f"value:{key}", f"runlint: ignoring {key}={value!r}: not a number")
        return isinstance(value, torch.Tensor)

    def _grad_norms(self) -> list[torch.Tensor]:
        """Gradient norm per parameter (NaN where there is no gradient), as 0-d tensors."""
        grads = [p.grad for p in self._params]
        present = [g for g in grads if g is not None]
        norms = kernels.norms(present)
        if len(present) == len(grads):
            return norms
        it = iter(norms)
        return [
            next(it) if g is not None else self._nan_on(p.device)
            for g, p in zip(grads, self._params, strict=True)
        ]

    def _copy_params(self) -> None:
        """Copy the values the update is measured on into buffers kept from step to step."""
        params = self._params
        key = [(p.data_ptr(), p.shape) for p in params]
        if key != self._update_key:  # first call, or a parameter was replaced
            self._update_key = key
            self._update_views = [kernels.update_sample(p.detach(), self.max_elems) for p in params]
            self._before = [torch.empty_like(v) for v in self._update_views]
            self._update_scale = np.array(
                [
                    math.sqrt(p.numel() / max(v.numel(), 1))
                    for p, v in zip(params, self._update_views, strict=True)
                ]
            )
        torch._foreach_copy_(self._before, self._update_views)

    def _param_stats(self, step: int, grad_norms: list[torch.Tensor]) -> None:
        before = self._before
        torch._foreach_sub_(before, self._update_views)  # before - after: the update, negated
        stacked = torch.stack([*grad_norms, *kernels.norms([*self._params, *before])])
        self._tables["params"].add(step, self._stash.vector(stacked), self._update_scale)

    def _gradient_histograms(self) -> None:
        edges = kernels.histogram_edges("gradient")
        grads = [p.grad for p in self._params]
        device = self._params[0].device if self._params else None
        if (
            device is not None
            and device in self._grad_hist
            and all(g is not None and g.is_floating_point() and g.device == device for g in grads)
        ):
            base, ones = self._grad_hist[device]
            heads = [g.reshape(-1)[: self.max_elems] for g in grads]  # type: ignore[union-attr]
            counts = kernels.gradient_histograms(
                heads, self._edge_tensor("gradient", device), base, ones
            )
            offset = self._stash.vector(counts)
            bins = len(edges) + 1
            for i, name in enumerate(self._names):
                self._add_histogram("gradient", name, edges, (offset + i * bins, bins))
            return
        for name, g in zip(self._names, grads, strict=True):
            if g is not None and g.is_floating_point():
                edge_t = self._edge_tensor("gradient", g.device)
                counts = kernels.gradient_histogram(g, self.max_elems, edge_t)
                self._add_histogram("gradient", name, edges, counts)

    # -- stashing and flushing --------------------------------------------------------------
    def _add_histogram(
        self,
        source: str,
        name: str,
        edges: tuple[float, ...],
        counts: torch.Tensor | tuple[int, int],
    ) -> None:
        """One histogram row; ``counts`` is a tensor, or (offset, length) of a stashed one."""
        if isinstance(counts, torch.Tensor):
            counts = (self._stash.vector(counts), counts.numel())
        self._tables["histograms"].add(self.step, source, name, edges, *counts)

    def _snapshot_weights(self, step: int) -> None:
        if self._first_weight is None or "weights" in self.off:
            return
        self._weights_step = step
        with self._probe("weights"):
            name, w = self._first_weight
            w = w.detach()[:64].reshape(min(64, w.shape[0]), -1)[:, :1024].clone()
            offset = self._stash.vector(w)
            self._tables["weights"].add(step, name, tuple(w.shape), offset, w.numel())

    def _flush(self, *, meta: bool = True) -> None:
        """Hand everything recorded since the last flush to the writer (thread)."""
        if self._act_samples:
            self._activation_stats()
        self._flush_at = self.step + self.flush_every
        self._flush_deadline = time.monotonic() + self.flush_secs
        self._check_scalars()
        tables, self._tables = self._tables, _new_tables()
        groups, self._groups = self._groups, GroupLog()
        stash, self._stash = self._stash, Stash(copy_scalars=self._stash.copy_scalars)
        if self._writer is None or self._writer.failed:
            return
        if groups.n or any(table.n for table in tables.values()):
            copy = HostCopy(stash) if stash else None  # starts the device -> host copies
            produce = functools.partial(resolve, tables, groups, copy, self._names, self.rank)
            self._writer.submit(produce)
        if meta and self.rank == 0:  # keeps steps/epochs/batch size current for a killed run
            doc = self._meta_doc(complete=False)
            self._writer.submit_call(functools.partial(write_json, self.root / META_FILE, doc))

    # -- metadata ---------------------------------------------------------------------------
    def _write_meta(self, *, complete: bool) -> None:
        if self.rank != 0 or self._disabled or (self._writer is not None and self._writer.failed):
            return
        with self._probe("meta"):
            if self._writer is not None:
                self._writer.drain()
            write_json(self.root / META_FILE, self._meta_doc(complete=complete))

    def _meta_doc(self, *, complete: bool) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "complete": complete,
            "meta": self._collect_meta(),
        }

    def _static_meta(self) -> dict[str, Any]:
        """The parts of the metadata that do not change while training (taken once)."""
        return {
            "optimizer": _optimizer_meta(self.optimizer),
            "params": _params_meta(self.model, self.optimizer),
            "modules": [
                {"name": n, "type": type(m).__name__, "activation": kernels.activation_kind(m)}
                for n, m in self.model.named_modules()
                if n and not list(m.children())
            ],
            "model": type(self.model).__name__,
            "num_parameters": sum(p.numel() for p in self._params),
            "num_trainable": sum(p.numel() for p in self._params if p.requires_grad),
            "torch_version": torch.__version__,
            "device": str(self._params[0].device) if self._params else "cpu",
            "world_size": self.world_size,
            "torch_initial_seed": torch.initial_seed(),
            "recorder": {
                "stats_every": self.stats_every,
                "hist_every": self.hist_every,
                "weights_every": self.weights_every,
                "flush_every": self.flush_every,
                "max_elems": self.max_elems,
            },
        }

    def _collect_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        provenance: dict[str, str] = {}
        inferred = dict(self._inferred)
        if "num_classes" not in inferred:
            out_features = _last_linear_out(self.model)
            if out_features and out_features > 1:
                inferred["num_classes"] = out_features
        for key in ("num_classes", "batch_size"):
            if key in self.user_meta:
                meta[key], provenance[key] = self.user_meta[key], "given"
            elif key in inferred:
                how = (
                    "out_features of the last Linear layer"
                    if key == "num_classes"
                    else "first dimension of the model's first input"
                )
                meta[key], provenance[key] = inferred[key], f"inferred: {how}"
        for key, value in self.user_meta.items():
            if key not in meta:
                meta[key], provenance[key] = value, "given"
        meta["provenance"] = provenance
        meta.update(self._meta_static)
        meta["steps"] = self.step
        meta["epochs"] = self.epoch
        meta["probes_off"] = dict(self.off)
        meta["bytes_written"] = self.bytes_written
        return meta

    def _prepare_device_constants(self) -> None:
        """Histogram edges and NaN fillers on the parameters' devices, made before training."""
        for device in {p.device for p in self._params} or {torch.device("cpu")}:
            self._nan_on(device)
            for kind in {*kernels.ACTIVATION_KINDS.values(), "gradient"}:
                self._edge_tensor(kind, device)
        devices = {p.device for p in self._params}
        if len(devices) == 1:  # the batched gradient histograms' value -> bin offsets
            (device,) = devices
            bins = len(kernels.histogram_edges("gradient")) + 1
            lengths = torch.tensor([min(p.numel(), self.max_elems) for p in self._params])
            base = torch.repeat_interleave(torch.arange(len(self._params)) * bins, lengths)
            ones = torch.ones(base.numel(), dtype=torch.float32, device=device)
            self._grad_hist[device] = (base.to(device), ones)

    def _edge_tensor(self, kind: str, device: torch.device) -> torch.Tensor:
        key = (kind, device)
        edges = self._edges.get(key)
        if edges is None:
            edges = self._edges[key] = kernels.edge_tensor(kind, device)
        return edges

    def _nan_on(self, device: torch.device) -> torch.Tensor:
        nan = self._nan.get(device)
        if nan is None:
            nan = self._nan[device] = torch.full((), math.nan, device=device)
        return nan

    # -- failure containment ----------------------------------------------------------------
    def _probe(self, probe: str) -> _ProbeGuard:
        return _ProbeGuard(self, probe)

    def _switch_off(self, probe: str, exc: BaseException) -> None:
        if probe in self.off:
            return
        self.off[probe] = f"{type(exc).__name__}: {exc}"
        warnings.warn(
            f"runlint: the {probe!r} probe failed and is off ({type(exc).__name__}: {exc}); "
            "training goes on",
            RuntimeWarning,
            stacklevel=4,
        )

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self.off:
            self.off[key] = message
            warnings.warn(message, RuntimeWarning, stacklevel=4)

    def _clear_stale(self) -> None:
        """Remove this rank's files of an earlier run in the same directory."""
        for path in self.root.glob("*.parquet"):
            parsed = parse_compact(path.name)
            if parsed and parsed[1] == self.rank:
                path.unlink()
        parts = self.root / PARTS_DIR
        if parts.is_dir():
            for path in parts.glob(f"*-r{self.rank}-*.parquet"):
                path.unlink()
        if self.rank == 0 and (self.root / META_FILE).exists():
            (self.root / META_FILE).unlink()


class _ProbeGuard:
    """``with recorder._probe(name):`` — an exception switches the probe off, once, quietly."""

    __slots__ = ("probe", "recorder")

    def __init__(self, recorder: Recorder, probe: str) -> None:
        self.recorder = recorder
        self.probe = probe

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        self.recorder._switch_off(self.probe, exc)
        return True


# -- helpers --------------------------------------------------------------------------------
def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _getter(keys: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A function returning the values of ``keys`` in a dict as a tuple (C speed)."""
    if len(keys) == 1:
        key = keys[0]
        return lambda d: (d[key],)
    if not keys:
        return lambda d: ()
    return operator.itemgetter(*keys)


def _new_tables() -> dict[str, Table]:
    """Empty tables with their fixed columns (see ``runlint.columns``)."""
    return {
        "steps": Table("step", "micro", "time"),
        "params": Table("step", "offset", "scale"),
        "activations": Table("step", "module", "kind", "offset", "width", "n", "units"),
        "histograms": Table("step", "source", "name", "edges", "offset", "length"),
        "weights": Table("step", "param", "shape", "offset", "length"),
        "epochs": Table("epoch", "step"),
    }


def _unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside torch.compile / DistributedDataParallel / DataParallel wrappers."""
    while True:
        inner = getattr(model, "_orig_mod", None)
        if inner is None and isinstance(
            model, (nn.parallel.DistributedDataParallel, nn.DataParallel)
        ):
            inner = model.module
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def _dist_rank() -> tuple[int, int]:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _is_compiled(model: nn.Module) -> bool:
    """Whether ``model`` (or a module it wraps) is compiled with ``torch.compile``."""
    while True:
        if hasattr(model, "_orig_mod") or getattr(model, "_compiled_call_impl", None):
            return True
        inner = getattr(model, "module", None)
        if not isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            return False
        if not isinstance(inner, nn.Module):
            return False
        model = inner


def _is_compiling() -> bool:
    try:
        return torch.compiler.is_compiling()
    except AttributeError:  # torch without torch.compiler
        return False


def _no_compile(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Keep a hook out of torch.compile graphs (it mutates Python state)."""
    try:
        return torch._dynamo.disable(fn)
    except Exception:  # torch without dynamo
        return fn


def _first_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        for item in output:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _first_layer_weight(model: nn.Module) -> tuple[str, torch.Tensor] | None:
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding)):
            return (f"{name}.weight" if name else "weight"), module.weight
    return None


def _last_linear_out(model: nn.Module) -> int | None:
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    return last.out_features if last is not None else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist() if value.numel() <= 16 else f"tensor{list(value.shape)}"
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return repr(value)


def _optimizer_meta(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    groups = [
        {k: _jsonable(v) for k, v in g.items() if k != "params"} for g in optimizer.param_groups
    ]
    return {
        "class": type(optimizer).__name__,
        "defaults": {k: _jsonable(v) for k, v in optimizer.defaults.items()},
        "groups": groups,
    }


def _params_meta(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """Names, shapes, roles and initial statistics of the parameters (one host sync, at start)."""
    group_of = {id(p): i for i, g in enumerate(optimizer.param_groups) for p in g["params"]}
    owners = {}
    for _mod_name, module in model.named_modules():
        for p_name, p in module.named_parameters(recurse=False):
            owners[id(p)] = (type(module).__name__, p_name)
    named = list(model.named_parameters())
    with torch.no_grad():
        stats = [
            torch.stack(
                [
                    p.float().std() if p.numel() > 1 else p.float().abs().sum() * 0,
                    p.float().mean(),
                ]
            ).to("cpu", non_blocking=True)
            for _, p in named
        ]
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        values = torch.stack(stats).tolist() if stats else []
    out = []
    for (name, p), (std, mean) in zip(named, values, strict=True):
        module_type, role = owners.get(id(p), ("", name.rsplit(".", 1)[-1]))
        shape = list(p.shape)
        fan_in = int(np.prod(shape[1:])) if len(shape) >= 2 else None
        out.append(
            {
                "name": name,
                "shape": shape,
                "numel": p.numel(),
                "dtype": str(p.dtype),
                "module_type": module_type,
                "role": role,
                "trainable": p.requires_grad,
                "in_optimizer": id(p) in group_of,
                "group": group_of.get(id(p)),
                "fan_in": fan_in,
                "init_std": std,
                "init_mean": mean,
            }
        )
    return out
