"""A Lightning ``Callback`` that records the run with runlint's recorder.

    from runlint.integrations.lightning import RunlintCallback
    trainer = L.Trainer(callbacks=[RunlintCallback("logs/run-042", meta={"num_classes": 10})])

Gradient statistics are taken in ``on_before_optimizer_step`` (after backward, gradient
accumulation, AMP unscaling), the loss from what ``training_step`` returns, epoch metrics
(``val_loss``, ``val_acc``, ``train_acc``, ...) from ``trainer.callback_metrics`` at the end of
each training epoch (Lightning validates before that). The first optimizer is recorded.

With a live check (``RunlintCallback(logdir, check=True, stop_on="error")``, the options of
``runlint.record``) a stop sets ``trainer.should_stop`` at the end of the batch: Lightning ends
the fit there (after ``min_steps``/``min_epochs``, as for ``EarlyStopping``) and the run is
closed in ``on_train_end``.
"""

from __future__ import annotations

import os
from typing import Any, cast

from runlint.extras import requires_extra

with requires_extra("lightning", "runlint.integrations.lightning"):
    import lightning.pytorch as pl
    import torch

from runlint.integrations._common import DeferredPreHook, deferred, epoch_metrics, unwrap_optimizer
from runlint.recorder import Recorder

__all__ = ["RunlintCallback"]


class RunlintCallback(pl.Callback):
    """Record a Lightning run into ``logdir`` (a runlint run directory)."""

    def __init__(
        self, logdir: str | os.PathLike[str], meta: dict[str, Any] | None = None, **options: Any
    ) -> None:
        self.logdir = logdir
        self.meta = dict(meta or {})
        self.options = options
        self.recorder: Recorder | None = None
        self._optimizer: DeferredPreHook | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.recorder is not None or not trainer.optimizers:
            return
        self._optimizer = deferred(unwrap_optimizer(trainer.optimizers[0]))
        meta = dict(self.meta)
        loader = getattr(trainer, "train_dataloader", None)
        batch = getattr(loader, "batch_size", None)
        if "batch_size" not in meta and isinstance(batch, int):
            meta["batch_size"] = batch
        meta.setdefault("accumulate_grad_batches", trainer.accumulate_grad_batches)
        meta.setdefault("framework", "lightning")
        optimizer = cast(torch.optim.Optimizer, self._optimizer)
        self.recorder = Recorder(pl_module, optimizer, self.logdir, meta=meta, **self.options)
        self.recorder.start()

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        # training_step may call an inner module rather than self(...): mark the batch anyway.
        if self.recorder is not None:
            self.recorder.begin_batch(batch)

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        if (
            self._optimizer is not None
            and unwrap_optimizer(optimizer) is self._optimizer._optimizer
        ):
            self._optimizer.fire()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.recorder is None:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            self.recorder.log(loss=loss.detach())
        if self.recorder.should_stop:  # the live check's stop_on: end at this batch
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.recorder is not None:
            self.recorder.log_epoch(**epoch_metrics(trainer.callback_metrics))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._close()

    def _close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
