"""What the callbacks share: optimizer unwrapping, step-point hooks and metric mapping."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from runlint.run.importers.names import classify

__all__ = ["DeferredPreHook", "epoch_metrics", "unwrap_optimizer"]


def unwrap_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    """The torch optimizer inside framework wrappers (accelerate's, Lightning's)."""
    seen = 0
    while not isinstance(optimizer, torch.optim.Optimizer) or (
        type(optimizer).__name__ in ("AcceleratedOptimizer", "LightningOptimizer")
    ):
        inner = getattr(optimizer, "optimizer", None) or getattr(optimizer, "_optimizer", None)
        if inner is None or seen > 8:
            break
        optimizer, seen = inner, seen + 1
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"runlint: {type(optimizer).__name__} is not a torch optimizer")
    return optimizer


class _Handle:
    def __init__(self, hooks: dict[int, Callable[..., Any]], key: int) -> None:
        self._hooks, self._key = hooks, key

    def remove(self) -> None:
        self._hooks.pop(self._key, None)


class DeferredPreHook:
    """An optimizer stand-in whose step *pre*-hooks run when ``fire()`` is called.

    Lightning calls ``optimizer.step(closure)``: torch's pre-hooks run before the closure, that
    is before this step's forward and backward. The callback fires them from
    ``on_before_optimizer_step`` instead (after backward, accumulation, unscaling and clipping).
    Everything else, post-hooks included, is the real optimizer's.
    """

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.__dict__["_optimizer"] = optimizer
        self.__dict__["_pre_hooks"] = {}

    def register_step_pre_hook(self, hook: Callable[..., Any]) -> _Handle:
        key = len(self._pre_hooks) + id(hook)
        self._pre_hooks[key] = hook
        return _Handle(self._pre_hooks, key)

    def fire(self) -> None:
        for hook in list(self._pre_hooks.values()):
            hook(self._optimizer, (), {})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._optimizer, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._optimizer, name, value)


def deferred(optimizer: torch.optim.Optimizer) -> DeferredPreHook:
    """A ``DeferredPreHook`` whose class carries the optimizer's class name (for the metadata)."""
    cls = type(type(optimizer).__name__, (DeferredPreHook,), {})
    return cls(optimizer)


def number(value: Any) -> float | None:
    """A Python float from a number or a one-element tensor; None for anything else."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return None
        value = value.detach().float().cpu().item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def epoch_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Epoch-level metrics under the Run's names (val_loss, val_acc, train_loss, train_acc...).

    Per-step values (``*_step``, the loss, learning rates) are left out: the recorder has them.
    """
    out: dict[str, float] = {}
    for name, value in metrics.items():
        signal = classify(name)
        if signal.table != "epochs":
            continue
        x = number(value)
        if x is not None and (signal.column not in out or not math.isnan(x)):
            out[signal.column] = x
    return out
