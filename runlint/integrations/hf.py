"""A Hugging Face ``TrainerCallback`` that records the run with runlint's recorder.

    from runlint.integrations.hf import RunlintCallback
    trainer = Trainer(..., callbacks=[RunlintCallback("logs/run-042")])

Gradient statistics come from the recorder's optimizer step hooks on the torch optimizer inside
accelerate's wrapper: they run after gradient accumulation, AMP unscaling and clipping. The loss
of every step is read from the model's output (``outputs.loss``, on the device, no sync);
models whose loss the Trainer computes outside ``forward`` fall back to the Trainer's logged
averages (``meta["first_loss_is_average"]`` then says so). Evaluation metrics close an epoch
(``eval_loss`` → ``val_loss``, ``eval_accuracy`` → ``val_acc``). The number of classes comes
from ``model.config`` (``num_labels`` of a classifier, ``vocab_size`` of a language model).

With a live check (``RunlintCallback(logdir, check=True, stop_on="error")``, the options of
``runlint.record``) a stop sets ``control.should_training_stop`` at the end of the step: the
Trainer ends training there and the run is closed in ``on_train_end``.
"""

from __future__ import annotations

import os
from typing import Any

from runlint.extras import requires_extra

with requires_extra("hf", "runlint.integrations.hf"):
    import torch
    from torch import nn
    from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from runlint.integrations._common import epoch_metrics, number, unwrap_optimizer
from runlint.recorder import Recorder

__all__ = ["RunlintCallback", "model_meta"]

_CLASSIFIERS = ("ForSequenceClassification", "ForTokenClassification", "ForImageClassification")
_LANGUAGE_MODELS = ("LMHeadModel", "ForCausalLM", "ForMaskedLM")


class RunlintCallback(TrainerCallback):
    """Record a Trainer run into ``logdir`` (a runlint run directory)."""

    def __init__(
        self, logdir: str | os.PathLike[str], meta: dict[str, Any] | None = None, **options: Any
    ) -> None:
        self.logdir = logdir
        self.meta = dict(meta or {})
        self.options = options
        self.recorder: Recorder | None = None
        self._handle: Any = None
        self._losses_from_model = 0

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: nn.Module | None = None,
        optimizer: Any = None,
        **kwargs: Any,
    ) -> None:
        if self.recorder is not None or model is None or optimizer is None:
            return
        meta = {**model_meta(model), **self.meta}
        meta.setdefault("batch_size", args.per_device_train_batch_size)
        meta.setdefault("gradient_accumulation_steps", args.gradient_accumulation_steps)
        meta.setdefault("framework", "transformers")
        optim = unwrap_optimizer(optimizer)
        self.recorder = Recorder(model, optim, self.logdir, meta=meta, **self.options)
        self.recorder.start()
        self._handle = model.register_forward_hook(self._forward_hook)

    def _forward_hook(self, module: nn.Module, inputs: Any, output: Any) -> None:
        if self.recorder is None or not (module.training and torch.is_grad_enabled()):
            return
        loss = output.get("loss") if isinstance(output, dict) else getattr(output, "loss", None)
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            self._losses_from_model += 1
            # a copy: the Trainer scales this tensor in place after the forward pass
            self.recorder.log(loss=loss.detach().clone())

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.recorder is not None and self.recorder.should_stop:  # the live check's stop_on
            control.should_training_stop = True

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        # Progress printers format ``logs`` in place; the state keeps the numbers.
        logs = state.log_history[-1] if state.log_history else logs
        if self.recorder is None or not logs or any(k.startswith("eval_") for k in logs):
            return
        values = {}
        grad_norm = number(logs.get("grad_norm"))
        if grad_norm is not None:
            values["grad_norm"] = grad_norm
        loss = number(logs.get("loss"))
        if loss is not None and not self._losses_from_model:
            values["loss"] = loss  # the Trainer's average over logging_steps
            self.recorder.update_meta(
                first_loss_is_average=bool(args.logging_steps > 1),
                loss_logging_interval=args.logging_steps,
            )
        if values:
            self.recorder.log(**values)

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if self.recorder is not None and metrics:
            self.recorder.log_epoch(**epoch_metrics(metrics))

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        if self.recorder is not None:
            self.recorder.close()


def model_meta(model: nn.Module) -> dict[str, Any]:
    """Number of classes and loss type from a transformers model's config, when it says."""
    config = getattr(model, "config", None)
    if config is None:
        return {}
    archs = [type(model).__name__, *(getattr(config, "architectures", None) or [])]
    problem = getattr(config, "problem_type", None)
    if any(a.endswith(_CLASSIFIERS) for a in archs) and problem in (
        None,
        "single_label_classification",
    ):
        labels = getattr(config, "num_labels", None)
        if isinstance(labels, int) and labels > 1:
            return {"num_classes": labels, "loss": "cross_entropy"}
    if any(a.endswith(_LANGUAGE_MODELS) for a in archs):
        vocab = getattr(config, "vocab_size", None)
        if isinstance(vocab, int) and vocab > 1:
            return {"num_classes": vocab, "loss": "cross_entropy"}
    if problem == "regression":
        return {"loss": "mse"}
    return {}
