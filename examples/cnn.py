"""A small CNN (conv, BatchNorm, ReLU, max-pool, dropout) on 8×8 synthetic images.

    runlint gradcheck examples/cnn.py:make

Gradcheck runs the model in eval mode: dropout is off and BatchNorm uses its running
statistics, so the checked function is deterministic.
"""

from __future__ import annotations

import torch
from torch import nn


def make() -> dict[str, object]:
    """Returns a dict (the other accepted form of a spec) with ``batch=(inputs, targets)``."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(16 * 2 * 2, 10),
    )
    targets = torch.arange(24) % 10
    patterns = torch.randn(10, 1, 8, 8, generator=gen)
    inputs = patterns[targets] + 0.3 * torch.randn(24, 1, 8, 8, generator=gen)
    return {
        "model": model,
        "loss_fn": nn.CrossEntropyLoss(),
        "batch": (inputs, targets),
        "num_classes": 10,
    }
