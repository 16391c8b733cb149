"""An MLP classifier: the plain case for ``runlint gradcheck`` and ``runlint sanity``.

    runlint gradcheck examples/mlp.py:make
    runlint sanity examples/mlp.py:make

A factory takes no arguments and returns a ``runlint.factory.Spec`` (or a dict with the same
keys): the model, the data loss, a small batch and, optionally, the number of classes, a
regularization term and the loss kind.
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


def make() -> Spec:
    """A 20-64-64-10 ReLU MLP on 32 synthetic examples with a softmax (cross-entropy) loss."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)
    )
    inputs, targets = blobs(n=32, dim=20, classes=10)
    return Spec(
        model=model,
        loss_fn=nn.CrossEntropyLoss(),
        inputs=inputs,
        targets=targets,
        num_classes=10,
    )
