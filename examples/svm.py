"""A linear classifier with the CS231n multiclass SVM loss (hinge, margin 1, summed over classes).

    runlint sanity examples/svm.py:make

With small initial weights every score is ≈ 0, so each of the C−1 wrong classes contributes a
margin of 1: the initial loss is C−1 (9 for 10 classes). The hinge max(0, ·) is a kink that
``runlint gradcheck`` detects.
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


def multiclass_svm_loss(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Σ_{j≠y} max(0, s_j − s_y + 1), averaged over the batch."""
    correct = scores.gather(1, targets.view(-1, 1))
    margins = (scores - correct + 1.0).clamp(min=0)
    margins = margins.masked_fill(nn.functional.one_hot(targets, scores.shape[1]).bool(), 0.0)
    return margins.sum(dim=1).mean()


def make() -> Spec:
    """A linear SVM on 20-d synthetic points, weights initialized small (×0.001)."""
    torch.manual_seed(0)
    model = nn.Linear(20, 10)
    with torch.no_grad():
        model.weight.mul_(0.001)
        model.bias.zero_()
    inputs, targets = blobs(n=32, dim=20, classes=10)
    return Spec(
        model=model,
        loss_fn=multiclass_svm_loss,
        inputs=inputs,
        targets=targets,
        num_classes=10,
        loss_kind="svm",
    )
