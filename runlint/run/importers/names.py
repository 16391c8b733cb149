"""Map the metric names other tools log onto the signals a ``Run`` holds.

``classify(name)`` says where a logged scalar goes: the ``steps`` table (per optimizer step:
``loss``, ``grad_norm``, ...), the ``epochs`` table (one row per evaluation: ``train_loss``,
``train_acc``, ``val_loss``, ``val_acc``, ...), the ``groups`` table (``lr``/``momentum``/
``weight_decay`` of a param group), ``summary`` (test metrics and end-of-training summaries, kept
apart from the training curves) or ``skip`` (step counters, timings). Names nobody recognizes
keep their own (sanitized) name. This table is the one home of what a logged name means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Signal", "classify", "sanitize"]


@dataclass(frozen=True)
class Signal:
    """Where one logged name lands: ``table`` (steps, epochs, groups or skip) and ``column``.

    ``ambiguous`` marks a training metric that may be logged per step or per epoch (Lightning's
    plain ``train_acc``); the builder decides from when it was logged.
    """

    table: str
    column: str
    group: int = 0
    ambiguous: bool = False


_STEP_LOSS = {
    "loss",
    "train_loss",
    "training_loss",
    "loss_train",
    "train_loss_step",
    "loss_step",
    "training_loss_step",
    "train_step_loss",
    "train_batch_loss",
    "batch_loss",
    "train_loss_batch",
    "loss_training",
    "mean_loss",
    "train_mean_loss",
    "avg_loss",
    "train_avg_loss",
    "average_loss",
    "running_loss",
}
_EPOCH_TRAIN_LOSS = {"train_loss_epoch", "loss_epoch", "epoch_loss", "training_loss_epoch"}
_GRAD_NORM = {"grad_norm", "train_grad_norm", "gradient_norm", "grad_norm_total", "total_grad_norm"}
_ACC = ("acc", "accuracy", "top1", "acc1", "overall_accuracy", "overall_acc", "mean_token_accuracy")
#: What a split's metric is called when it is its loss (``validation_epoch_average``).
_LOSS = ("loss", "mean_loss", "avg_loss", "average_loss", "epoch_average", "average", "epoch_loss")
_TRAIN = ("train", "training")
_VAL = ("val", "valid", "validation", "eval", "evaluation", "dev")
_TEST = ("test", "predict", "testing")
_SKIP = {
    "epoch",
    "train_epoch",
    "eval_epoch",
    "hp_metric",
    "step",
    "global_step",
    "trainer_global_step",
}
#: End-of-training summaries (Hugging Face's last log entry, also through its TensorBoard
#: callback as ``train/train_loss``, ``train/total_flos``, ...): not a point of any curve.
_SUMMARY = {
    f"{prefix}{name}"
    for prefix in ("", "train_")
    for name in (
        "total_flos",
        "train_runtime",
        "train_samples_per_second",
        "train_steps_per_second",
        "train_loss",
    )
} - {"train_loss"}

_LR_RE = re.compile(
    r"^(?:train_)?(?:lr|learning_rate)"
    r"(?:_(?P<opt>[a-z][a-z0-9]*?))?"
    r"(?:_pg(?P<pg>\d+))?"
    r"(?:_(?P<what>momentum|weight_decay|beta1))?$"
)
_OPT_NAMES = {
    "sgd",
    "adam",
    "adamw",
    "rmsprop",
    "adagrad",
    "adadelta",
    "adamax",
    "nadam",
    "radam",
    "lbfgs",
    "sparseadam",
    "asgd",
    "rprop",
    "lion",
    "adafactor",
    "lamb",
    "lars",
    "sophia",
}


def sanitize(name: str) -> str:
    """A column-safe version of ``name``: lower case, runs of other characters become ``_``."""
    key = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return key or "value"


def classify(name: str) -> Signal:
    """Where the scalar logged as ``name`` goes in a ``Run``."""
    key = sanitize(name)
    if key in _SKIP:
        return Signal("skip", key)
    if key in _SUMMARY:
        return Signal("summary", key)
    lr = _LR_RE.match(key)
    if lr and (lr["opt"] is None or lr["opt"] in _OPT_NAMES):
        group = int(lr["pg"]) - 1 if lr["pg"] else 0  # Lightning numbers groups from 1
        return Signal("groups", lr["what"] or "lr", group=max(group, 0))
    if key in _STEP_LOSS:
        return Signal("steps", "loss")
    if key in _GRAD_NORM:
        return Signal("steps", "grad_norm")
    if key in _EPOCH_TRAIN_LOSS:
        return Signal("epochs", "train_loss")
    split, metric, suffix = _split(key)
    if split in _TEST:
        return Signal("summary", key)
    if split in _VAL:
        if metric in ("loss", "acc"):
            return Signal("epochs", f"val_{metric}")
        if metric.endswith("_loss"):  # one of several eval sets (eval_g0_loss): one is val_loss
            return Signal("epochs", "val_loss")
        return Signal("epochs", key.removesuffix("_epoch"))
    if split in (*_TRAIN, "") and metric == "acc":  # an unprefixed accuracy is training's
        if suffix == "step":
            return Signal("steps", "train_acc")
        return Signal("epochs", "train_acc", ambiguous=suffix != "epoch")
    if suffix == "epoch":
        return Signal("epochs", key.removesuffix("_epoch"))
    return Signal("steps", key)


def _split(key: str) -> tuple[str, str, str]:
    """``(split, metric, suffix)`` of a sanitized key: ``val_acc_epoch`` → (val, acc, epoch)."""
    tokens = key.split("_")
    suffix = tokens[-1] if len(tokens) > 1 and tokens[-1] in ("step", "epoch") else ""
    if suffix:
        tokens = tokens[:-1]
    split = ""
    if tokens[0] in _TRAIN + _VAL + _TEST and len(tokens) > 1:
        split, tokens = tokens[0], tokens[1:]
    elif len(tokens) > 1 and tokens[-1] in _TRAIN + _VAL + _TEST:  # loss/val, accuracy/train
        split, tokens = tokens[-1], tokens[:-1]
    metric = "_".join(tokens)
    if metric in _ACC:
        metric = "acc"
    elif metric in _LOSS:
        metric = "loss"
    return split, metric, suffix
