"""An MLP with an explicit L2 regularization term ½λ‖W‖² (weights only, not biases).

    runlint gradcheck examples/regularized.py:make   # data loss first, then with the term
    runlint sanity examples/regularized.py:make      # checks the term raises the loss

``regularization`` is a callable ``model -> scalar tensor`` that runlint adds to the data loss.
"""

from __future__ import annotations

import torch
from torch import nn

from runlint.pretrain.factory import Spec


def blobs(n: int, dim: int, classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` synthetic points around one random centre per class (generated, seeded)."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=gen)
    targets = torch.arange(n) % classes
    return centres[targets] + 0.5 * torch.randn(n, dim, generator=gen), targets


LAMBDA = 1e-2


def l2(model: nn.Module) -> torch.Tensor:
    """½λ Σ w² over the weight matrices."""
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    return 0.5 * LAMBDA * torch.stack([(w**2).sum() for w in weights]).sum()


def make() -> Spec:
    """A 20-32-10 tanh MLP: a smooth objective, so errors should be below 1e-7."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.Tanh(), nn.Linear(32, 10))
    inputs, targets = blobs(n=32, dim=20, classes=10)
    return Spec(
        model=model,
        loss_fn=nn.CrossEntropyLoss(),
        inputs=inputs,
        targets=targets,
        num_classes=10,
        regularization=l2,
    )
