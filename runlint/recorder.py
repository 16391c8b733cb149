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
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from runlint import probes
from runlint.format import FORMAT_NAME, FORMAT_VERSION, META_FILE, PARTS_DIR, parse_compact
from runlint.writer import PartWriter, write_json

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


@dataclass(frozen=True, slots=True)
class _Slot:
    """Where a value stashed on a device lands in that device's flush buffer."""

    device: torch.device
    offset: int
    length: int
    shape: tuple[int, ...] = ()


class Recorder:
    """Records a training run; use through ``runlint.record(...)`` as a context manager.

    Options (keywords of ``runlint.record``):
      stats_every   per-parameter and per-activation statistics every N optimizer steps (10)
      hist_every    activation and gradient histograms every N steps (100)
      weights_every first-layer weight snapshot every N steps (500; also the first and last)
      flush_every   write to disk every N steps (1000), and at least every ``flush_secs`` (10 s)
      max_elems     activation values sampled per statistic (4096)
      background    write part files on a background thread (default: only for CUDA models,
                    whose flushes then never wait for the copy; on CPU a writer thread competes
                    with training for the GIL and cores, see bench/overhead.py)
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
        self._handles: list[Any] = []
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._stash_by_device: dict[torch.device, list[torch.Tensor]] = {}
        self._stash_len: dict[torch.device, int] = {}
        self._before: list[torch.Tensor] | None = None
        self._pending_norms: tuple[int, torch.Tensor] | None = None
        self._last_flush = (0, time.monotonic())
        self._inferred: dict[str, Any] = {}
        self._writer: PartWriter | None = None
        self._meta_static: dict[str, Any] = {}
        self._meta_batch = False
        self._edges: dict[tuple[str, torch.device], torch.Tensor] = {}
        self._nan: dict[torch.device, torch.Tensor] = {}
        self._weights_step = -1  # step of the last first-layer snapshot
        self._closed = False
        self._disabled = False  # the log directory cannot be written: record nothing

        self.rank, self.world_size = _dist_rank()
        named = list(self.model.named_parameters())
        self._names = [n for n, _ in named]
        self._params = [p for _, p in named]
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
        pre_forward = _no_compile(self._guard("forward", self._pre_forward))
        self._handles.append(self.model.register_forward_pre_hook(pre_forward, with_kwargs=True))
        for name, module in self.model.named_modules():
            kind = probes.activation_kind(module)
            if kind is not None:
                self._handles.append(
                    module.register_forward_hook(self._activation_hook(name, kind))
                )
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
            row: dict[str, Any] = {
                "step": self._fwd_step,
                "rank": self.rank,
                "micro": self._micro,
                "time": time.time(),
            }
            row.update(self._values(scalars))
            self._micro += 1
            self._rows.setdefault("steps", []).append(row)
        except Exception as exc:
            self._switch_off("log", exc)

    def log_epoch(self, **metrics: Any) -> None:
        """Close an epoch with its metrics (train_loss, train_acc, val_loss, val_acc, ...)."""
        if self._closed:
            return
        with self._probe("log"):
            row: dict[str, Any] = {"epoch": self.epoch, "step": self.step, "rank": self.rank}
            row.update(self._values(metrics))
            self._rows.setdefault("epochs", []).append(row)
            self.epoch += 1
        with self._probe("flush"):
            self._flush()

    @property
    def bytes_written(self) -> int:
        """Bytes of part files written so far (compaction not counted)."""
        return self._writer.bytes_written if self._writer else 0

    # -- hooks ------------------------------------------------------------------------------
    def _pre_forward(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        if self._fwd_step != self.step:
            self._micro = 0
        self._fwd_step = step = self.step
        training = module.training and torch.is_grad_enabled()
        self._collect_acts = (
            training and step % self.stats_every == 0 and "activations" not in self.off
        )
        self._collect_hist = training and step % self.hist_every == 0
        if "batch_size" not in self._inferred:
            first = next(
                (a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), None
            )
            if first is not None and first.dim() > 0:
                self._inferred["batch_size"] = int(first.shape[0])

    def _activation_hook(self, name: str, kind: str) -> Callable[..., None]:
        def record(output: Any) -> None:
            out = _first_tensor(output)
            if out is None or not out.is_floating_point() or out.numel() == 0:
                return
            stats = probes.activation_stats(out, kind, self.max_elems)
            row = {"step": self.step, "rank": self.rank, "module": name, "kind": kind}
            row.update(zip(probes.ACTIVATION_COLUMNS, self._stash_vector(stats), strict=True))
            self._rows.setdefault("activations", []).append(row)
            if self._collect_hist and "histograms" not in self.off:
                try:
                    edges = probes.histogram_edges(kind)
                    sampled = probes.sample(out.detach(), self.max_elems)
                    counts = probes.histogram(sampled, self._edge_tensor(kind, out.device))
                    self._add_histogram("activation", name, edges, counts)
                except Exception as exc:
                    self._switch_off("histograms", exc)

        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if not self._collect_acts:  # the fast path: nine steps in ten
                return
            try:
                record(output)
            except Exception as exc:
                self._collect_acts = False
                self._switch_off("activations", exc)

        return _no_compile(hook)

    def _pre_step(self, optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> None:
        step = self.step
        if "groups" not in self.off:
            with self._probe("groups"):
                self._record_groups(optimizer, step)
        if step % self.stats_every == 0 and "params" not in self.off:
            with self._probe("params"):
                params = [p.detach() for p in self._params]
                self._pending_norms = (step, self._grad_norms())
                self._before = list(torch._foreach_mul(params, 1.0))
        if step % self.hist_every == 0 and "histograms" not in self.off:
            with self._probe("histograms"):
                self._gradient_histograms()
        if step % self.weights_every == 0:
            self._snapshot_weights(step)

    def _post_step(self, optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> None:
        before, pending = self._before, self._pending_norms
        if before is not None and pending is not None:
            self._before = self._pending_norms = None
            with self._probe("params"):
                step, grad_norms = pending
                params = [p.detach() for p in self._params]
                delta = torch._foreach_sub(params, before)
                stacked = torch.stack([grad_norms, probes.norms(params), probes.norms(delta)])
                slot = self._stash(stacked)
                self._rows.setdefault("params", []).append(
                    {"step": step, "rank": self.rank, "_norms": slot}
                )
        self.step += 1
        self._micro = 0
        last_step, last_time = self._last_flush
        if self.step - last_step >= self.flush_every or (
            time.monotonic() - last_time >= self.flush_secs
        ):
            with self._probe("flush"):
                self._flush()

    def _record_groups(self, optimizer: torch.optim.Optimizer, step: int) -> None:
        """lr, momentum, betas, weight decay, ... of every param group, as they are now."""
        rank = self.rank
        rows = self._rows.setdefault("groups", [])
        for i, group in enumerate(optimizer.param_groups):
            row: dict[str, Any] = {"step": step, "rank": rank, "group": i}
            for key in _GROUP_KEYS:
                if key in group:
                    row[key] = self._value(group[key])
            betas = group.get("betas")
            if betas is not None:
                row["beta1"], row["beta2"] = (self._value(b) for b in betas)
            rows.append(row)

    def _gradient_histograms(self) -> None:
        edges = probes.histogram_edges("gradient")
        for name, p in zip(self._names, self._params, strict=True):
            if p.grad is not None and p.grad.is_floating_point():
                edge_t = self._edge_tensor("gradient", p.grad.device)
                counts = probes.gradient_histogram(p.grad, self.max_elems, edge_t)
                self._add_histogram("gradient", name, edges, counts)

    def _grad_norms(self) -> torch.Tensor:
        """Gradient norm per parameter (NaN where there is no gradient), one device vector."""
        grads = [p.grad.detach() for p in self._params if p.grad is not None]
        if len(grads) == len(self._params):
            return probes.norms(grads)
        norms = iter(torch._foreach_norm(grads) if grads else [])
        return torch.stack(
            [
                next(norms).float() if p.grad is not None else self._nan_on(p.device)
                for p in self._params
            ]
        )

    # -- stashing and flushing --------------------------------------------------------------
    def _stash(self, t: torch.Tensor) -> _Slot:
        """Keep ``t`` on its device until the next flush; return where it will land.

        ``t`` must not be changed in place afterwards: callers pass fresh results or copies.
        """
        if t.requires_grad:
            t = t.detach()
        device = t.device
        offset = self._stash_len.get(device, 0)
        flat = t if t.dim() == 1 else t.reshape(-1)
        if flat.dtype != torch.float32:
            flat = flat.float()
        self._stash_by_device.setdefault(device, []).append(flat)
        n = flat.numel()
        self._stash_len[device] = offset + n
        return _Slot(device, offset, n, tuple(t.shape))

    def _stash_vector(self, t: torch.Tensor) -> list[_Slot]:
        slot = self._stash(t)
        return [_Slot(slot.device, slot.offset + i, 1) for i in range(slot.length)]

    def _value(self, v: Any) -> Any:
        """A number as float, a one-element tensor as a slot of a copy, else ``None``."""
        if isinstance(v, torch.Tensor):
            return self._stash(v.detach().reshape(()).clone()) if v.numel() == 1 else None
        if isinstance(v, (bool, int, float, np.floating, np.integer)):
            return float(v)
        return None

    def _values(self, values: dict[str, Any]) -> dict[str, Any]:
        """Numbers as floats; tensors copied together, one stack per device (one kernel)."""
        out: dict[str, Any] = {}
        tensors: dict[torch.device, list[tuple[str, torch.Tensor]]] = {}
        for key, v in values.items():
            if isinstance(v, torch.Tensor) and v.numel() == 1:
                tensors.setdefault(v.device, []).append((key, v.detach().reshape(())))
            elif isinstance(v, (bool, int, float, np.floating, np.integer)):
                out[key] = float(v)
            else:
                self._warn_once(f"value:{key}", f"runlint: ignoring {key}={v!r}: not a number")
        for items in tensors.values():  # a copy: later in-place changes do not leak in
            stacked = torch.stack([t for _, t in items]) if len(items) > 1 else items[0][1].clone()
            slots = self._stash_vector(stacked.reshape(-1))
            out.update(zip((k for k, _ in items), slots, strict=True))
        return out

    def _add_histogram(
        self, source: str, name: str, edges: tuple[float, ...], counts: torch.Tensor
    ) -> None:
        self._rows.setdefault("histograms", []).append(
            {
                "step": self.step,
                "rank": self.rank,
                "source": source,
                "name": name,
                "edges": list(edges),
                "counts": self._stash(counts),
            }
        )

    def _snapshot_weights(self, step: int) -> None:
        if self._first_weight is None or "weights" in self.off:
            return
        self._weights_step = step
        with self._probe("weights"):
            name, w = self._first_weight
            w = w.detach()[:64].reshape(min(64, w.shape[0]), -1)[:, :1024].clone()
            self._rows.setdefault("weights", []).append(
                {
                    "step": step,
                    "rank": self.rank,
                    "param": name,
                    "shape": list(w.shape),
                    "values": self._stash(w),
                }
            )

    def _flush(self, *, meta: bool = True) -> None:
        """Hand everything recorded since the last flush to the writer thread."""
        self._last_flush = (self.step, time.monotonic())
        if self._writer is None or self._writer.failed:
            self._rows, self._stash_by_device, self._stash_len = {}, {}, {}
            return
        if self._rows:
            rows, self._rows = self._rows, {}
            stashed, self._stash_by_device, self._stash_len = self._stash_by_device, {}, {}
            buffers: dict[torch.device, tuple[torch.Tensor, Any]] = {}
            for device, tensors in stashed.items():
                flat = torch.cat(tensors)
                if device.type == "cuda":
                    host = torch.empty(flat.shape, dtype=flat.dtype, pin_memory=True)
                    host.copy_(flat, non_blocking=True)
                    event = torch.cuda.Event()
                    event.record()
                    buffers[device] = (host, event)
                else:
                    buffers[device] = (flat, None)
            self._writer.submit(functools.partial(_resolve, rows, buffers, self._names))
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
                {"name": n, "type": type(m).__name__, "activation": probes.activation_kind(m)}
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
            for kind in {*probes.ACTIVATION_KINDS.values(), "gradient"}:
                self._edge_tensor(kind, device)

    def _edge_tensor(self, kind: str, device: torch.device) -> torch.Tensor:
        key = (kind, device)
        edges = self._edges.get(key)
        if edges is None:
            edges = self._edges[key] = probes.edge_tensor(kind, device)
        return edges

    def _nan_on(self, device: torch.device) -> torch.Tensor:
        nan = self._nan.get(device)
        if nan is None:
            nan = self._nan[device] = torch.full((), math.nan, device=device)
        return nan

    # -- failure containment ----------------------------------------------------------------
    def _guard(self, probe: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a hook: an exception switches ``probe`` off with one warning, never raises."""

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> None:
            if probe in self.off:
                return
            try:
                fn(*args, **kwargs)
            except Exception as exc:
                self._switch_off(probe, exc)

        return guarded

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


def _resolve(
    rows: dict[str, list[dict[str, Any]]],
    buffers: dict[torch.device, tuple[torch.Tensor, Any]],
    names: list[str],
) -> dict[str, list[dict[str, Any]]]:
    """On the writer thread: wait for the copies and replace slots with numbers."""
    host: dict[torch.device, np.ndarray] = {}
    for device, (tensor, event) in buffers.items():
        while event is not None and not event.query():  # polling: no blocking sync call
            time.sleep(0.0005)
        host[device] = tensor.numpy()

    def value(slot: _Slot) -> Any:
        data = host[slot.device][slot.offset : slot.offset + slot.length]
        return float(data[0]) if slot.length == 1 and not slot.shape else data.tolist()

    out: dict[str, list[dict[str, Any]]] = {}
    for table, records in rows.items():
        resolved: list[dict[str, Any]] = []
        for rec in records:
            if "_norms" in rec:  # one stacked [3, P] tensor -> P rows
                slot = rec["_norms"]
                g, p, u = host[slot.device][slot.offset : slot.offset + slot.length].reshape(3, -1)
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = u / p
                resolved.extend(
                    {
                        "step": rec["step"],
                        "rank": rec["rank"],
                        "param": names[i],
                        "grad_norm": float(g[i]),
                        "param_norm": float(p[i]),
                        "update_norm": float(u[i]),
                        "update_ratio": float(ratio[i]),
                    }
                    for i in range(len(names))
                )
                continue
            resolved.append({k: value(v) if isinstance(v, _Slot) else v for k, v in rec.items()})
        out[table] = resolved
    return out


# -- helpers --------------------------------------------------------------------------------
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
