"""``runlint.record``: hooks that record a PyTorch run into a Parquet run directory.

The ``Recorder`` is thin: it owns the hooks on the model and the optimizer, the step and epoch
counters and the flushes, and hands each event to the probes (``runlint.recorder.probes``) that
are due. Every statistic is computed on the device and kept there; a flush (every
``flush_every`` steps, every ``flush_secs`` seconds, at each ``log_epoch`` and on close) takes
each probe's rows, concatenates the stash into one buffer per device, starts one non-blocking
copy to pinned host memory and hands it to the writer thread, which waits for the copy, lets
each probe build its table's columns and writes the part files. Steps that do not flush never
wait on the device.

A flush that falls due at the end of an optimizer step is taken at the start of the next
training forward pass (or the next optimizer step, if no forward pass is seen), so that the
values logged after ``optimizer.step()`` travel with the rest of their step: each flush holds
whole steps. The log directory is owned for the life of the recording
(``runlint.recorder.rundir``).
"""

from __future__ import annotations

import functools
import math
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from runlint.check.live import LiveCheck, LiveEvent
from runlint.recorder.live import LiveHook
from runlint.recorder.probes import (
    Activations,
    Examples,
    Groups,
    Histograms,
    Meta,
    Norms,
    Outputs,
    Probe,
    Scalars,
    Shared,
    Weights,
)
from runlint.recorder.probes.base import is_compiling, no_compile
from runlint.recorder.rundir import CONFLICT_POLICIES, Claim, RunExistsError, claim
from runlint.recorder.stash import HostCopy, Stash
from runlint.recorder.writer import PartWriter, write_json
from runlint.schema.layout import FORMAT_NAME, FORMAT_VERSION, META_FILE, TABLES, next_flush

__all__ = ["Recorder", "RunExistsError"]

#: The ``meta.json`` key of a stop the live check asked for (``runlint.schema.meta``).
STOPPED = "stopped"


class Recorder:
    """Records a training run; use through ``runlint.record(...)`` as a context manager.

    Options (keywords of ``runlint.record``):
      stats_every   per-parameter and per-activation statistics every N optimizer steps (10)
      hist_every    activation and gradient histograms every N steps (100)
      weights_every first-layer weight snapshot every N steps (500; also the first and last)
      flush_every   write to disk every N steps (1000), and at least every ``flush_secs`` (10 s);
                    with ``check=``, also after steps 25, 50, 100, 200 and 400 (the live check
                    judges what is on disk, and a broken setup shows early)
      max_elems     activation values sampled per statistic, and parameter values the update
                    norm is measured on (a strided sample of larger parameters) (4096)
      background    write part files on a background thread (default: only for CUDA models,
                    whose flushes then never wait for the copy; on CPU a writer thread competes
                    with training for the GIL and cores, see bench/overhead.py)
      max_keys      distinct names ``log`` (and, apart, ``log_epoch``) may record over the run
                    (1000); further names are left out, with one warning

    Live checking (``runlint.check.live``): the rules run on the run so far after each flush,
    in a checker process, off the training thread (no host sync, no flush of its own):
      check         True, or a ``runlint.LiveCheck`` (rules, mode, timeouts); default off
      stop_on       ``"error"`` (or another severity), or rule codes/names: ``rec.should_stop``
                    becomes True when the check finds one; the reason goes into ``meta.json``
                    (``stopped``). Default ``None``: never stop
      on_finding    called with each ``runlint.LiveEvent`` (new, changed, withdrawn finding) on
                    the training thread at a step boundary; default: one ``logging`` line
    ``stop_on`` or ``on_finding`` alone turn the check on. Only rank 0 checks.

    One run, one writer (docs/format.md, "Ownership"): from ``start`` to ``close`` the recorder
    holds an exclusive lock on ``logdir`` (an OS lock on ``.runlint-r<rank>.lock``, released by
    the OS if the process dies), and refuses a directory that another writer holds or that
    already holds a run, with ``RunExistsError`` (a ``FileExistsError``), unless told otherwise:
      resume        True: continue the run in ``logdir`` (finished or killed): steps, epochs
                    and part files go on after the last ones recorded; its metadata is kept
                    (initial weights statistics included) and the step where it resumed is
                    added to ``meta["resumed"]``
      overwrite     True: delete the run in ``logdir`` and record afresh
      on_conflict   "error" (default): raise ``RunExistsError``; "new": record into the first
                    free sibling directory ``<logdir>.1``, ``<logdir>.2``, ... with a warning
                    naming it (``rec.logdir`` says where). A directory that another writer is
                    recording is never resumed nor overwritten: "new" or the error.
    Under ``torch.distributed`` each rank locks its own file, so the ranks of one job share
    ``logdir`` and a second job is refused (on rank 0 at least); with ``on_conflict="new"``
    rank 0 chooses the directory and tells the others, so every rank must open the recorder.

    Cost: on a step without statistics the recorder runs four short Python hooks (model forward
    pre-hook, optimizer step pre/post hooks, ``log``) and launches one kernel per tensor logged;
    the probes with a schedule are not called at all. Activation hooks exist only during the
    forward passes of statistics steps (the forward pre-hook adds and removes them), except for
    compiled models, whose hooks stay registered (changing hooks would force recompiles) and
    run outside the graph.

    A probe that fails is switched off with one warning (``probes_off`` in the metadata); so are
    the forward pre-hook (``forward``) and the flushes (``flush``). Training goes on.
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
        max_keys: int = 1000,
        resume: bool = False,
        overwrite: bool = False,
        on_conflict: str = "error",
        check: bool | LiveCheck | None = None,
        stop_on: Any = None,
        on_finding: Callable[[LiveEvent], object] | None = None,
    ) -> None:
        self._live_spec = LiveCheck.of(check, stop_on, on_finding)  # bad arguments raise here
        self._live: LiveHook | None = None
        if on_conflict not in CONFLICT_POLICIES:
            raise ValueError(f"on_conflict must be one of {CONFLICT_POLICIES}, not {on_conflict!r}")
        if resume and overwrite:
            raise ValueError("resume=True and overwrite=True contradict each other: pass one")
        self.resume = resume
        self.overwrite = overwrite
        self.on_conflict = on_conflict
        self.model = _unwrap(model)
        self.optimizer = optimizer
        self.root = Path(logdir)
        self.stats_every = max(1, stats_every)
        self.hist_every = max(1, hist_every)
        self.weights_every = max(1, weights_every)
        self.flush_every = max(1, flush_every)
        self.flush_secs = flush_secs
        self.max_elems = max_elems
        self._background = background

        self.epoch = 0
        self._fwd_step = 0  # the step of the current forward pass
        self._micro = 0  # ``rec.log`` calls in it
        self._handles: list[Any] = []
        self._flush_at = self._next_flush(0)
        self._flush_deadline = time.monotonic() + flush_secs
        self._flush_due = False  # taken at the next forward pass or optimizer step
        self._writer: PartWriter | None = None
        self._claim: Claim | None = None
        self._closed = False
        self._disabled = False  # the log directory cannot be written: record nothing
        self.rank, self.world_size = _dist_rank()

        shared = self._shared = Shared(list(self.model.named_parameters()), max_elems, self.rank)
        schedules = {
            "stats_every": self.stats_every,
            "hist_every": self.hist_every,
            "weights_every": self.weights_every,
            "flush_every": self.flush_every,
            "max_elems": self.max_elems,
        }
        self._meta = Meta(
            shared, self.model, optimizer, dict(meta or {}), schedules, self.world_size
        )
        self._scalars = Scalars(shared, max(1, max_keys))
        self._groups = Groups(shared)
        self._norms = Norms(shared, self.stats_every)
        self._histograms = Histograms(shared, self.hist_every)
        static = _is_compiled(model)  # activation hooks registered for good
        self._activations = Activations(shared, self.stats_every, self._histograms, static=static)
        self._outputs = Outputs(shared, self.stats_every, static=static)
        self._weights = Weights(shared, self.weights_every, self.model)
        self._examples = Examples(shared)
        self._forward = Probe(shared, "forward")  # the forward pre-hook and ``begin_batch``
        self._flushing = Probe(shared, "flush")
        #: The probes with a schedule, in the order the optimizer step pre-hook calls them; one
        #: can be due only at a multiple of the gcd of their schedules.
        self._scheduled: tuple[Norms | Histograms | Weights, ...] = (
            self._norms,
            self._histograms,
            self._weights,
        )
        self._scheduled_every = functools.reduce(math.gcd, (p.every for p in self._scheduled))
        #: The probes that write tables, flushed together.
        self._tabled: tuple[Probe, ...] = (
            self._scalars,
            self._groups,
            self._norms,
            self._activations,
            self._outputs,
            self._histograms,
            self._weights,
            self._examples,
        )

    @property
    def step(self) -> int:
        """Optimizer steps completed."""
        return self._shared.step

    @property
    def logdir(self) -> Path:
        """The run directory recorded into: ``logdir``, or its sibling with
        ``on_conflict="new"``."""
        return self.root

    @property
    def user_meta(self) -> dict[str, Any]:
        """The metadata given in ``meta=`` and through ``update_meta``."""
        return self._meta.given

    @property
    def probes(self) -> tuple[Probe, ...]:
        """Every probe, on or off (``probe.off``: why it was switched off)."""
        return (*self._tabled, self._meta, self._forward, self._flushing)

    @property
    def probes_off(self) -> dict[str, str]:
        """Each probe switched off -> the error that did it."""
        return self._shared.probes_off()

    # -- context manager --------------------------------------------------------------------
    def __enter__(self) -> Recorder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None and isinstance(exc[1], KeyboardInterrupt):
            self._live.spec.close_timeout = 0.0  # Ctrl-C: no waiting for a last check
        self.close()

    def start(self) -> None:
        """Take the log directory, register the hooks and write the metadata; ``__enter__``
        calls it. Raises ``RunExistsError`` when the directory is another writer's or holds a
        run that the options do not say to resume or overwrite."""
        wanted = self.root
        try:
            self._claim = got = claim(
                self.root,
                self.rank,
                self.world_size,
                resume=self.resume,
                overwrite=self.overwrite,
                on_conflict=self.on_conflict,
            )
        except OSError as exc:
            if isinstance(exc, RunExistsError):
                self._closed = True
                raise
            self._disabled = True
            self._closed = True
            warnings.warn(
                f"runlint: cannot write logs to {self.root} ({exc}); recording is off, "
                "training goes on",
                RuntimeWarning,
                stacklevel=3,
            )
            return
        self.root = got.root
        if got.root != wanted:
            warnings.warn(
                f"runlint: {wanted} is taken; recording into {got.root}",
                RuntimeWarning,
                stacklevel=3,
            )
        try:
            self._start(got)
        except BaseException:
            got.lock.release()
            raise

    def _start(self, got: Claim) -> None:
        if got.resumed:
            shared = self._shared
            shared.step = self._fwd_step = got.step
            self.epoch = got.epoch
            self._flush_at = self._next_flush(got.step)
            self._meta.resume(got.meta, got.step)
        background = self._background
        if background is None:
            background = any(p.device.type == "cuda" for p in self._shared.params)
        self._writer = PartWriter(self.root, self.rank, background=background, seq=got.seq)
        opt = self.optimizer
        self._handles.append(opt.register_step_pre_hook(self._pre_step))
        self._handles.append(opt.register_step_post_hook(self._post_step))
        self._handles.append(
            self.model.register_forward_pre_hook(self._forward_pre_hook(), with_kwargs=True)
        )
        self._activations.attach(self.model)
        self._outputs.attach(self.model)
        self._flush_deadline = time.monotonic() + self.flush_secs
        with self._meta:
            self._meta.take_static()
            self._norms.prepare()  # device constants, made before training
            self._histograms.prepare()
        self._write_meta(complete=False)
        if self._live_spec is not None and self.rank == 0:
            self._live = LiveHook(self.root, self._live_spec)
            self._live.start()

    def close(self) -> None:
        """Remove every hook, flush, compact the parts and mark the run complete. Never raises."""
        if self._closed:
            return
        self._closed = True
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._activations.detach()
        self._outputs.detach()
        if self._claim is None:  # never started, or refused the directory
            return
        try:
            weights = self._weights
            if weights.last != self.step and weights.off is None:
                with weights:
                    weights.before_step(self.step)
            with self._flushing:
                self._flush(meta=False)
            if self._writer is not None:
                with self._flushing:
                    self._writer.close()
            if self._live is not None:  # the check of the last flush, before the lock goes
                self._live.close(self.step)
            self._write_meta(complete=True)
        finally:
            self._claim.lock.release()  # last: the run is whole on disk

    # -- user API ---------------------------------------------------------------------------
    def log(self, **scalars: Any) -> None:
        """Record scalars (tensors or numbers) for the current optimizer step. Never syncs."""
        probe = self._scalars
        if self._closed or probe.off is not None:
            return
        try:
            probe.check()
            table = probe.steps
            row = table.add(self._fwd_step, self._micro, time.time())
            self._micro += 1
            stash = self._shared.stash
            for key, value in scalars.items():
                try:
                    if not table.put(key, row, value, stash):
                        probe.ignored(table, key, value)
                except Exception as exc:  # only this value is lost
                    probe.ignored(table, key, value, exc)
        except Exception as exc:
            probe.fail(exc)

    def log_epoch(self, **metrics: Any) -> None:
        """Close an epoch with its metrics (train_loss, train_acc, val_loss, val_acc, ...)."""
        if self._closed:
            return
        probe = self._scalars
        with probe:
            probe.check()
            table = probe.epochs
            row = table.add(self.epoch, self.step)
            self.epoch += 1
            stash = self._shared.stash
            for key, value in metrics.items():
                try:
                    if not table.put(key, row, value, stash):
                        probe.ignored(table, key, value)
                except Exception as exc:  # only this value is lost
                    probe.ignored(table, key, value, exc)
        with self._flushing:
            self._flush()

    def begin_batch(self, batch: Any = None) -> None:
        """Mark the start of a training forward pass (a batch or a gradient-accumulation
        micro-batch) for code that does not call the recorded model itself.

        The model's forward pre-hook does this by itself; integrations whose training step calls
        inner modules (Lightning's ``training_step``) call it before each batch. ``batch`` (a
        tensor, or a tuple, list or dict holding tensors) serves to infer the batch size. Counts
        as training when the model is in training mode and gradients are enabled. Never raises.
        """
        if self._closed or self._forward.off is not None:
            return
        try:
            self._begin_forward(self.model.training and torch.is_grad_enabled(), batch)
        except Exception as exc:
            self._forward.fail(exc)

    def update_meta(self, **values: Any) -> None:
        """Add or change run metadata, as if given in ``meta=`` (provenance ``"given"``).

        It reaches ``meta.json`` at the next flush and on close.
        """
        self._meta.given.update(values)

    @property
    def should_stop(self) -> bool:
        """Whether the live check asked training to stop (``stop_on``): test it at step
        boundaries and leave the loop; always False without a stop policy."""
        live = self._live
        if live is None:
            return False
        if live.pending:
            live.drain(self.step)
        return live.should_stop

    @property
    def live(self) -> LiveHook | None:
        """The live check (``check=True``), or None: its ``findings`` so far, ``stopped``,
        ``checks`` and their ``cpu`` seconds, ``wait()`` for the check of the last flush."""
        return self._live

    @property
    def bytes_written(self) -> int:
        """Bytes of part files written so far (compaction not counted)."""
        return self._writer.bytes_written if self._writer else 0

    # -- hooks ------------------------------------------------------------------------------
    def _forward_pre_hook(self) -> Callable[..., None]:
        forward = self._forward

        def eager(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if forward.off is not None:
                return
            try:
                self._begin_forward(module.training and torch.is_grad_enabled(), args, kwargs)
            except Exception as exc:
                forward.fail(exc)

        def compiled(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            activations = self._activations
            if not activations.static and not self._closed:  # compiled after record() began
                activations.static = True
                activations.hook(True)
            eager(module, args, kwargs)

        outside = no_compile(compiled)

        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if is_compiling():  # traced by dynamo: run the hook outside the graph
                outside(module, args, kwargs)
            else:
                eager(module, args, kwargs)

        return hook

    def _begin_forward(self, training: bool, *inputs: Any) -> None:
        step = self._shared.step
        if self._fwd_step != step:
            self._micro = 0
            self._fwd_step = step
            if self._flush_due:  # the last step's values are all logged now
                with self._flushing:
                    self._flush()
        activations = self._activations
        # ``begin`` changes nothing on the other steps: no call there
        if activations.collecting or activations.handles or step % activations.every == 0:
            activations.begin(step, training)
            self._outputs.begin(step, training)
        meta = self._meta
        if meta.batch_size is None:
            meta.see_inputs(inputs)
        self._examples.see(training, inputs)

    def _pre_step(self, optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> None:
        if self._flush_due:  # no forward pass seen since the step that made it due
            with self._flushing:
                self._flush()
        step = self._shared.step
        activations = self._activations
        if activations.pending >= activations.PENDING_VALUES:
            activations.reduce()
        groups = self._groups
        if groups.off is None:
            try:
                groups.record(optimizer, step)
            except Exception as exc:
                groups.fail(exc)
        if step % self._scheduled_every == 0:  # else none is due
            for probe in self._scheduled:
                if probe.due(step):
                    with probe, torch.no_grad():
                        probe.before_step(step)

    def _post_step(self, optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> None:
        norms = self._norms
        if norms.pending is not None:
            with norms, torch.no_grad():
                norms.after_step()
        shared = self._shared
        shared.step = step = shared.step + 1
        self._micro = 0
        if step >= self._flush_at or time.monotonic() >= self._flush_deadline:
            self._flush_due = True
        live = self._live
        if live is not None and live.pending:  # the checker spoke: findings, maybe a stop
            live.drain(step)

    # -- flushing ---------------------------------------------------------------------------
    def _next_flush(self, step: int) -> int:
        """The step count of the next scheduled flush after one at ``step``."""
        return next_flush(step, self.flush_every, live=self._live_spec is not None)

    def _flush(self, *, meta: bool = True) -> None:
        """Hand everything recorded since the last flush to the writer (thread)."""
        shared = self._shared
        self._flush_due = False
        self._flush_at = self._next_flush(shared.step)
        self._flush_deadline = time.monotonic() + self.flush_secs
        self._scalars.check()
        taken = [(probe, probe.take()) for probe in self._tabled]
        stash = shared.stash
        shared.stash = Stash(copy_scalars=stash.copy_scalars)
        if self._writer is None or self._writer.failed:
            return
        rows = [(probe, r) for probe, r in taken if r is not None]
        if rows:
            copy = HostCopy(stash) if stash else None  # starts the device -> host copies
            self._writer.submit(functools.partial(_columns, rows, copy, self._scalars))
        if meta and self.rank == 0:  # keeps steps/epochs/batch size current for a killed run
            doc = self._meta_doc(complete=False)
            self._writer.submit_call(functools.partial(write_json, self.root / META_FILE, doc))
        if rows and self._live is not None:  # after the flush is on disk: check it
            self._writer.submit_call(functools.partial(self._live.notify, shared.step))

    # -- metadata ---------------------------------------------------------------------------
    def _write_meta(self, *, complete: bool) -> None:
        if self.rank != 0 or self._disabled or (self._writer is not None and self._writer.failed):
            return
        with self._meta:
            if self._writer is not None:
                self._writer.drain()
            write_json(self.root / META_FILE, self._meta_doc(complete=complete))

    def _meta_doc(self, *, complete: bool) -> dict[str, Any]:
        meta = self._meta.collect(
            steps=self.step,
            epochs=self.epoch,
            probes_off=self.probes_off,
            bytes_written=self.bytes_written,
        )
        if self._live is not None and self._live.stopped is not None:
            meta[STOPPED] = dict(self._live.stopped)
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "complete": complete,
            "meta": meta,
        }


def _columns(
    rows: list[tuple[Probe, Any]], copy: HostCopy | None, log: Scalars
) -> dict[str, dict[str, Any]]:
    """On the writer (thread): wait for the copy; each probe's columns, in the tables' order."""
    scalars, vectors = copy.wait() if copy is not None else (np.zeros(0), np.zeros(0))
    out: dict[str, dict[str, Any]] = {}
    for probe, taken in rows:
        if probe is log and copy is not None and copy.failed:
            log.not_copied(taken, copy.failed)
        out.update(probe.columns(taken, scalars, vectors))
    return {name: out[name] for name in TABLES if name in out}


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
