"""Deliberately buggy models: custom ``torch.autograd.Function``s whose backward is wrong.

    runlint gradcheck examples/buggy.py:make             # grad_W off by a factor 2
    runlint gradcheck examples/buggy.py:make_transposed  # grad_W transposed
    runlint gradcheck examples/buggy.py:make_missing     # product-rule term missing

Each one trains without an error message and each one is flagged WRONG by the gradient check
(exit code 1): this is the kind of bug the check exists for.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from runlint.pretrain.factory import Spec


class LinearFn(torch.autograd.Function):
    """y = x Wᵀ + b with a hand-written backward; ``bug`` picks the mistake."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, bug: str) -> Any:
        ctx.save_for_backward(x, w)
        ctx.bug = bug
        return x @ w.t() + b

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        x, w = ctx.saved_tensors
        grad_w = grad.t() @ x  # correct: dL/dW = gᵀ x
        if ctx.bug == "factor":
            grad_w = 2 * grad_w
        elif ctx.bug == "transposed":
            grad_w = grad_w.t()  # same shape only because W is square
        return grad @ w, grad_w, grad.sum(0), None


class BuggyLinear(nn.Linear):
    """An ``nn.Linear`` whose forward goes through ``LinearFn``."""

    def __init__(self, n_in: int, n_out: int, bug: str = "none") -> None:
        super().__init__(n_in, n_out)
        self.bug = bug

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return LinearFn.apply(x, self.weight, self.bias, self.bug)


class SwishFn(torch.autograd.Function):
    """swish(x) = x·σ(x); its derivative is σ(x) + x·σ(x)(1−σ(x))."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, missing: bool) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.missing = missing
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        deriv = s if ctx.missing else s + x * s * (1 - s)
        return grad * deriv, None


class Swish(nn.Module):
    """Swish activation through ``SwishFn``; ``missing=True`` drops the product-rule term."""

    def __init__(self, missing: bool = False) -> None:
        super().__init__()
        self.missing = missing

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return SwishFn.apply(x, self.missing)


def _spec(model: nn.Module) -> Spec:
    gen = torch.Generator().manual_seed(3)
    inputs = torch.randn(16, 16, generator=gen)
    targets = torch.arange(16) % 4
    return Spec(model=model, loss_fn=nn.CrossEntropyLoss(), inputs=inputs, targets=targets)


def make() -> Spec:
    """Hidden layer's weight gradient is twice the true one."""
    torch.manual_seed(0)
    return _spec(nn.Sequential(BuggyLinear(16, 16, "factor"), nn.Tanh(), nn.Linear(16, 4)))


def make_transposed() -> Spec:
    """Hidden layer's weight gradient is transposed (square W, so no shape error)."""
    torch.manual_seed(0)
    return _spec(nn.Sequential(BuggyLinear(16, 16, "transposed"), nn.Tanh(), nn.Linear(16, 4)))


def make_missing() -> Spec:
    """Swish backward misses the x·σ'(x) term: every layer below it gets wrong gradients."""
    torch.manual_seed(0)
    return _spec(nn.Sequential(nn.Linear(16, 16), Swish(missing=True), nn.Linear(16, 4)))


def make_correct() -> Spec:
    """The same custom Functions without a bug: the check passes."""
    torch.manual_seed(0)
    return _spec(nn.Sequential(BuggyLinear(16, 16), Swish(), nn.Linear(16, 4)))
