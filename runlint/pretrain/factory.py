"""Load a user's model through a factory for ``runlint gradcheck`` and ``runlint sanity``.

A factory is named ``path/to/file.py:make`` or ``package.module:make`` (the function name
defaults to ``make``). It takes no arguments and returns either a :class:`Spec` or a dict with
the same keys:

``model``
    a ``torch.nn.Module``.
``loss_fn``
    a callable ``loss_fn(outputs, targets) -> scalar tensor``: the **data loss**, a mean over
    the batch (``nn.CrossEntropyLoss()`` and friends qualify).
``inputs``, ``targets``
    a small batch; dimension 0 is the batch dimension. ``inputs`` is a tensor or a tuple of
    tensors (the model is called as ``model(*inputs)``); ``batch=(inputs, targets)`` may be
    given instead of the two keys.
``num_classes`` (optional)
    the number of classes C; inferred from the model's output when left out.
``regularization`` (optional)
    a callable ``regularization(model) -> scalar tensor`` added to the data loss, e.g.
    ``lambda m: 0.5 * 1e-3 * sum((p ** 2).sum() for p in m.parameters())``.
``loss_kind`` (optional)
    ``"softmax"``, ``"svm"`` or ``"regression"``; inferred from ``loss_fn`` when left out
    (``CrossEntropyLoss``/``NLLLoss``: softmax, ``MultiMarginLoss``: svm, ``MSELoss``/
    ``L1Loss``/``SmoothL1Loss``/``HuberLoss``: regression).
``expected_initial_loss`` (optional)
    overrides the expected loss at initialization (ln C for softmax, C-1 for a multiclass SVM
    summed over classes with margin 1, (C-1)/C for ``nn.MultiMarginLoss``).

A bad spec raises :class:`FactoryError` with a one-line message.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

__all__ = [
    "LOSS_KINDS",
    "FactoryError",
    "Spec",
    "infer_loss_kind",
    "load_factory",
    "load_spec",
    "to_spec",
]

LOSS_KINDS = ("softmax", "svm", "regression")


class FactoryError(Exception):
    """A factory could not be loaded or returned something that is not a valid spec."""


@dataclass
class Spec:
    """What a factory returns: a model, its data loss and a small batch (see module docs)."""

    model: Any
    loss_fn: Callable[[Any, Any], Any]
    inputs: Any
    targets: Any
    num_classes: int | None = None
    regularization: Callable[[Any], Any] | None = None
    loss_kind: str | None = None
    expected_initial_loss: float | None = None

    @property
    def input_tuple(self) -> tuple[Any, ...]:
        """The inputs as a tuple, ready for ``model(*inputs)``."""
        return tuple(self.inputs) if isinstance(self.inputs, (tuple, list)) else (self.inputs,)

    @property
    def batch_size(self) -> int:
        """Size of dimension 0 of the first input."""
        return int(self.input_tuple[0].shape[0])


_KEYS = {f.name for f in fields(Spec)}


def load_factory(ref: str) -> Callable[[], Any]:
    """Import ``file.py:func`` or ``package.module:func`` and return the function."""
    module_ref, _, func_name = ref.rpartition(":")
    if not module_ref:
        module_ref, func_name = ref, "make"
    func_name = func_name or "make"
    if module_ref.endswith(".py") or "/" in module_ref or "\\" in module_ref:
        module = _import_file(Path(module_ref))
    else:
        module = _import_module(module_ref)
    func = getattr(module, func_name, None)
    if func is None:
        raise FactoryError(f"{module_ref} has no function {func_name!r}")
    if not callable(func):
        raise FactoryError(f"{module_ref}:{func_name} is not callable")
    return func


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise FactoryError(f"no such file: {path}")
    name = f"_runlint_factory_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FactoryError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    parent = str(path.resolve().parent)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise FactoryError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _import_module(name: str) -> Any:
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise FactoryError(f"cannot import {name}: {exc}") from exc
    except Exception as exc:
        raise FactoryError(f"importing {name} failed: {type(exc).__name__}: {exc}") from exc


def load_spec(ref: str) -> Spec:
    """Load the factory ``ref``, call it and validate what it returns."""
    func = load_factory(ref)
    try:
        result = func()
    except Exception as exc:
        raise FactoryError(f"factory {ref} raised {type(exc).__name__}: {exc}") from exc
    return to_spec(result, ref)


def to_spec(obj: Any, ref: str = "factory") -> Spec:
    """Validate a factory's return value (a :class:`Spec` or a dict) and return a Spec."""
    if isinstance(obj, Spec):
        spec = obj
    elif isinstance(obj, Mapping):
        data = dict(obj)
        if "batch" in data:
            batch = data.pop("batch")
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise FactoryError(f"{ref}: 'batch' must be a pair (inputs, targets)")
            data.setdefault("inputs", batch[0])
            data.setdefault("targets", batch[1])
        if "loss" in data and "loss_fn" not in data:
            data["loss_fn"] = data.pop("loss")
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise FactoryError(
                f"{ref} returned unknown key(s) {', '.join(unknown)}; "
                f"expected some of {', '.join(sorted(_KEYS))}"
            )
        missing = [k for k in ("model", "loss_fn", "inputs", "targets") if k not in data]
        if missing:
            raise FactoryError(f"{ref} returned a dict without {', '.join(missing)}")
        spec = Spec(**data)
    else:
        raise FactoryError(
            f"{ref} returned {type(obj).__name__}; expected runlint.factory.Spec or a dict "
            "with model, loss_fn, inputs, targets"
        )
    _validate(spec, ref)
    return spec


def _validate(spec: Spec, ref: str) -> None:
    import torch

    if not isinstance(spec.model, torch.nn.Module):
        raise FactoryError(f"{ref}: model is {type(spec.model).__name__}, not a torch.nn.Module")
    if not callable(spec.loss_fn):
        raise FactoryError(f"{ref}: loss_fn is not callable")
    inputs = spec.input_tuple
    if not inputs or not all(isinstance(t, torch.Tensor) for t in inputs):
        raise FactoryError(f"{ref}: inputs must be a tensor or a tuple of tensors")
    if not isinstance(spec.targets, torch.Tensor):
        raise FactoryError(f"{ref}: targets must be a tensor")
    sizes = {int(t.shape[0]) if t.dim() else -1 for t in (*inputs, spec.targets)}
    if len(sizes) != 1 or -1 in sizes:
        raise FactoryError(f"{ref}: inputs and targets must share batch dimension 0")
    if spec.regularization is not None and not callable(spec.regularization):
        raise FactoryError(f"{ref}: regularization must be a callable model -> scalar")
    if spec.loss_kind is not None and spec.loss_kind not in LOSS_KINDS:
        raise FactoryError(
            f"{ref}: loss_kind {spec.loss_kind!r} is not one of {', '.join(LOSS_KINDS)}"
        )
    if spec.num_classes is not None and (
        not isinstance(spec.num_classes, int) or spec.num_classes < 2
    ):
        raise FactoryError(f"{ref}: num_classes must be an integer >= 2")
    if not any(p.requires_grad for p in spec.model.parameters()):
        raise FactoryError(f"{ref}: the model has no parameters that require gradients")


def infer_loss_kind(spec: Spec) -> str | None:
    """The loss kind given in the spec or inferred from the loss function's class."""
    if spec.loss_kind is not None:
        return spec.loss_kind
    import torch.nn as nn

    loss = spec.loss_fn
    if isinstance(loss, (nn.CrossEntropyLoss, nn.NLLLoss)):
        return "softmax"
    if isinstance(loss, nn.MultiMarginLoss):
        return "svm"
    if isinstance(loss, (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)):
        return "regression"
    return None
