"""RL303 end to end: a real loop records fingerprints of what it trains and evaluates on, and the
rule tells a validation set drawn from the training set from a held-out one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from runlint.rules.rl303_val_from_train import ValFromTrain
from torch import nn

import runlint
from runlint.recorder.kernels import fingerprints
from runlint.run import load_run


def _train(
    out: Path, val: str, *, train_eval: bool = False, epochs: int = 5, eval_batch: int = 50
) -> Path:
    """``epochs`` of an MLP on 600 examples; ``val``: ``held-out``, ``from-train``."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(600, 10, generator=gen)
    y = (x[:, 0] > 0).long()
    xv = x[:200] if val == "from-train" else torch.randn(200, 10, generator=gen)
    yv = (xv[:, 0] > 0).long()
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def evaluate(xs: torch.Tensor, ys: torch.Tensor) -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            out = torch.cat([model(xs[i : i + eval_batch]) for i in range(0, len(xs), eval_batch)])
        model.train()
        return float(nn.functional.cross_entropy(out, ys)), float(
            (out.argmax(1) == ys).float().mean()
        )

    with runlint.record(model, opt, out) as rec:
        for _ in range(epochs):
            for i in range(0, 600, 50):
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(x[i : i + 50]), y[i : i + 50])
                loss.backward()
                opt.step()
                rec.log(loss=loss.detach())
            train_loss, train_acc = (
                evaluate(x[:200], y[:200]) if train_eval else (float(loss.detach()), 0.0)
            )
            val_loss, val_acc = evaluate(xv, yv)
            rec.log_epoch(
                train_loss=train_loss, val_loss=val_loss, val_acc=val_acc, train_acc=train_acc
            )
    return out


def _rl303(path: Path) -> list[str]:
    return [f.severity.value for f in ValFromTrain().check(load_run(path))]


def test_a_validation_set_drawn_from_the_training_set_is_a_warning(tmp_path: Path) -> None:
    assert _rl303(_train(tmp_path / "leak", "from-train")) == ["warning"]


def test_one_evaluation_of_one_pass_is_enough_to_see_the_leak(tmp_path: Path) -> None:
    """A one-epoch run that evaluates its 200 examples in one pass: 16 of them fingerprinted."""
    one = {"epochs": 1, "eval_batch": 200}
    assert _rl303(_train(tmp_path / "leak", "from-train", **one)) == ["warning"]
    assert _rl303(_train(tmp_path / "ok", "held-out", **one)) == []


def test_a_held_out_validation_set_is_silent_even_beside_a_training_set_evaluation(
    tmp_path: Path,
) -> None:
    assert _rl303(_train(tmp_path / "ok", "held-out")) == []
    # a training accuracy measured in eval mode, then the held-out set: advice at most
    assert _rl303(_train(tmp_path / "both", "held-out", train_eval=True)) == ["info"]


def test_each_training_example_is_written_once_and_evaluation_passes_are_sampled(
    tmp_path: Path,
) -> None:
    run = load_run(_train(tmp_path / "leak", "from-train"))
    ex = run.examples
    train = ex[ex["phase"] == "train"]["fingerprint"]
    assert len(train) == train.nunique() == 600
    evals = ex[ex["phase"] == "eval"]
    assert len(evals) == 5 * 4 * 16  # 5 evaluations of 4 passes, 16 examples each


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.int64])
def test_fingerprints_do_not_depend_on_the_batch_an_example_came_in(dtype: torch.dtype) -> None:
    x = (torch.randn(64, 3, 40, 40) * 10).to(dtype)
    whole = fingerprints(x, 64)
    assert torch.equal(whole[10:20], fingerprints(x[10:], 10))
    assert len(torch.unique(whole, dim=0)) == 64
