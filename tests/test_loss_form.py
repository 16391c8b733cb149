"""RL105 without ``meta.loss``: the loss's gradient at the model's output shows what the loss
does with it. Real CPU runs: a model ending in a functional softmax or sigmoid before a loss that
applies its own is caught; the right pairings stay silent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from runlint.rules.rl105_loss_input_off import LossInputOff
from torch import nn
from torch.nn import functional as F

import runlint
from runlint.check.rule import Finding, Severity

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Squashed(nn.Module):
    """An MLP whose forward ends in ``squash`` (a functional op the module graph cannot show)."""

    def __init__(self, squash: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4))
        self.squash = squash

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.squash(self.net(x))


def train(
    root: Path,
    squash: Callable[[torch.Tensor], torch.Tensor],
    loss_fn: Loss,
    *,
    multilabel: bool = False,
    meta: dict[str, Any] | None = None,
    bf16: bool = False,
) -> list[Finding]:
    """30 steps of Adam on seeded data, the loss logged detached; RL105's findings."""
    torch.manual_seed(0)
    x = torch.randn(512, 8)
    y = (x[:, :4] > 0).float() if multilabel else x[:, :4].argmax(1)
    model = Squashed(squash)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    with runlint.record(model, opt, root, meta=meta, stats_every=5) as rec:
        for step in range(30):
            i = (step * 32) % len(x)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(x[i : i + 32])
            loss = loss_fn(out.float(), y[i : i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.log(loss=loss.detach())
    return list(LossInputOff().check(runlint.load_run(root)))


def softmax(z: torch.Tensor) -> torch.Tensor:
    return F.softmax(z, dim=-1)


def identity(z: torch.Tensor) -> torch.Tensor:
    return z


def brier(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(p, F.one_hot(y, p.shape[-1]).float())


def nll_of_log(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.nll_loss(torch.log(p), y)


@pytest.mark.parametrize(
    ("squash", "loss_fn", "multilabel", "bf16", "applies"),
    [
        (softmax, F.cross_entropy, False, False, "softmax"),
        (softmax, F.cross_entropy, False, True, "softmax"),
        (torch.sigmoid, F.binary_cross_entropy_with_logits, True, False, "sigmoid"),
    ],
    ids=["softmax-cross-entropy", "softmax-cross-entropy-bf16", "sigmoid-bce-with-logits"],
)
def test_a_functional_squash_before_a_loss_that_applies_its_own_is_a_warning(
    tmp_path: Path, squash: Any, loss_fn: Loss, multilabel: bool, bf16: bool, applies: str
) -> None:
    (finding,) = train(tmp_path, squash, loss_fn, multilabel=multilabel, bf16=bf16)
    assert finding.severity == Severity.WARNING
    assert f"the loss applies a {applies} to it" in finding.message
    assert "squashed twice" in finding.message and finding.evidence["applies"] == applies


@pytest.mark.parametrize(
    ("squash", "loss_fn", "multilabel"),
    [
        (identity, F.cross_entropy, False),  # logits into cross_entropy
        (torch.sigmoid, F.binary_cross_entropy, True),  # probabilities into BCELoss
        (softmax, nll_of_log, False),  # log of probabilities into nll_loss
        (identity, F.binary_cross_entropy_with_logits, True),
    ],
    ids=["logits-cross-entropy", "sigmoid-bce", "softmax-log-nll", "logits-bce-with-logits"],
)
def test_the_right_input_for_each_loss_is_silent(
    tmp_path: Path, squash: Any, loss_fn: Loss, multilabel: bool
) -> None:
    assert train(tmp_path, squash, loss_fn, multilabel=multilabel) == []


def log_softmax_over_batch(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.nll_loss(F.log_softmax(z, dim=0), y)


@pytest.mark.parametrize("meta", [None, {"loss": "nll"}], ids=["unnamed", "named"])
def test_a_log_softmax_over_the_batch_is_caught_whatever_the_loss_is_named(
    tmp_path: Path, meta: dict[str, Any] | None
) -> None:
    (finding,) = train(tmp_path, identity, log_softmax_over_batch, meta=meta)
    assert "normalizes over the batch" in finding.message and "dim=-1" in finding.fix


def test_a_brier_score_looks_like_a_softmax_loss_until_the_run_names_it(tmp_path: Path) -> None:
    """The known problem: MSE between probabilities and one-hot targets has rows summing to 0."""
    (finding,) = train(tmp_path / "unnamed", softmax, brier)
    assert "applies a softmax" in finding.message
    assert train(tmp_path / "named", softmax, brier, meta={"loss": "mse"}) == []
