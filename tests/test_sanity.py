"""Sanity checks on real small models: expected initial loss, regularization, overfitting."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from runlint.pretrain.factory import Spec, load_spec
from runlint.pretrain.sanity import CheckResult, SanityOptions, SanityReport, run_sanity

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _by_name(report: SanityReport) -> dict[str, CheckResult]:
    return {c.name: c for c in report.checks}


def _blobs(n: int = 20, dim: int = 8, classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    targets = torch.arange(n) % classes
    return torch.randn(classes, dim, generator=gen)[targets] + 0.3 * torch.randn(
        n, dim, generator=gen
    ), targets


def _classifier(scale: float = 1.0) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 10))
    with torch.no_grad():
        model[2].weight.mul_(scale)
    return model


def test_softmax_example_passes_with_ln_c() -> None:
    report = run_sanity(load_spec(f"{EXAMPLES / 'mlp.py'}:make"))
    checks = _by_name(report)
    assert not report.failed
    initial = checks["initial-loss"]
    assert initial.status == "pass"
    assert initial.details["expected"] == pytest.approx(math.log(10))
    assert "ln(10)" in initial.message and "2.303" in initial.message
    assert checks["regularization-raises-loss"].status == "skip"
    overfit = checks["overfit-small-subset"]
    assert overfit.status == "pass" and overfit.details["examples"] == 20
    assert overfit.details["final_loss"] <= 0.01 * overfit.details["initial_loss"]
    assert 0 < overfit.details["steps"] < 500


def test_svm_example_expects_c_minus_one() -> None:
    report = run_sanity(load_spec(f"{EXAMPLES / 'svm.py'}:make"))
    initial = _by_name(report)["initial-loss"]
    assert initial.status == "pass"
    assert initial.details["expected"] == 9.0
    assert "C−1" in initial.message
    assert not report.failed


def test_torch_multi_margin_loss_averages_over_classes() -> None:
    x, y = _blobs()
    model = _classifier(scale=0.001)
    report = run_sanity(Spec(model, nn.MultiMarginLoss(), x, y))
    initial = _by_name(report)["initial-loss"]
    assert initial.details["loss_kind"] == "svm"
    assert initial.details["expected"] == pytest.approx(0.9)
    assert initial.status == "pass"


def test_large_last_layer_fails_with_the_fix() -> None:
    x, y = _blobs()
    report = run_sanity(Spec(_classifier(scale=40.0), nn.CrossEntropyLoss(), x, y))
    initial = _by_name(report)["initial-loss"]
    assert report.failed and initial.status == "fail"
    assert initial.details["observed"] > 1.25 * math.log(10)
    assert "×0.01" in initial.fix and "`2`" in initial.fix and "zero its bias" in initial.fix


def test_num_classes_is_inferred_from_the_output() -> None:
    x, y = _blobs()
    report = run_sanity(Spec(_classifier(0.01), nn.CrossEntropyLoss(), x, y))
    initial = _by_name(report)["initial-loss"]
    assert initial.details["num_classes"] == 10
    assert initial.details["num_classes_source"] == "inferred from the model's output"


def test_regularization_example_raises_the_loss() -> None:
    report = run_sanity(load_spec(f"{EXAMPLES / 'regularized.py'}:make"))
    reg = _by_name(report)["regularization-raises-loss"]
    assert reg.status == "pass"
    assert reg.details["total"] > reg.details["data_loss"]


def test_negative_regularization_fails() -> None:
    x, y = _blobs()
    spec = Spec(
        _classifier(0.01),
        nn.CrossEntropyLoss(),
        x,
        y,
        regularization=lambda m: -0.01 * sum((p**2).sum() for p in m.parameters()),
    )
    reg = _by_name(run_sanity(spec))["regularization-raises-loss"]
    assert reg.status == "fail"
    assert reg.fix is not None and "sign" in reg.fix


def test_regularization_swamping_the_data_loss_warns() -> None:
    x, y = _blobs()
    spec = Spec(
        _classifier(0.01),
        nn.CrossEntropyLoss(),
        x,
        y,
        regularization=lambda m: 10.0 * sum((p**2).sum() for p in m.parameters()),
    )
    report = run_sanity(spec)
    reg = _by_name(report)["regularization-raises-loss"]
    assert reg.status == "warn" and "exceeds the data loss" in reg.message
    assert not report.failed


def test_model_without_capacity_cannot_overfit() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(20, 1, generator=gen)  # one feature, ten random classes: not separable
    y = torch.randint(0, 10, (20,), generator=gen)
    torch.manual_seed(0)
    spec = Spec(nn.Linear(1, 10), nn.CrossEntropyLoss(), x, y, num_classes=10)
    report = run_sanity(spec, SanityOptions(overfit_steps=150))
    overfit = _by_name(report)["overfit-small-subset"]
    assert report.failed and overfit.status == "fail"
    assert overfit.details["steps"] == 150
    assert "after 150 Adam steps" in overfit.message
    assert overfit.fix is not None and "data pipeline" in overfit.fix


def test_small_batch_uses_what_there_is() -> None:
    x, y = _blobs(n=8)
    report = run_sanity(Spec(_classifier(0.01), nn.CrossEntropyLoss(), x, y))
    overfit = _by_name(report)["overfit-small-subset"]
    assert overfit.details["examples"] == 8 and "only 8 examples" in overfit.message


def test_regression_has_no_expected_initial_loss() -> None:
    torch.manual_seed(0)
    spec = Spec(nn.Linear(3, 1), nn.MSELoss(), torch.randn(20, 3), torch.randn(20, 1))
    initial = _by_name(run_sanity(spec))["initial-loss"]
    assert initial.status == "skip"


def test_expected_loss_override() -> None:
    x, y = _blobs()
    spec = Spec(_classifier(0.01), nn.CrossEntropyLoss(), x, y, expected_initial_loss=5.0)
    initial = _by_name(run_sanity(spec))["initial-loss"]
    assert initial.status == "fail" and "given by the factory" in initial.message


def test_users_model_is_left_untouched() -> None:
    spec = load_spec(f"{EXAMPLES / 'mlp.py'}:make")
    before = [p.detach().clone() for p in spec.model.parameters()]
    run_sanity(spec)
    assert all(torch.equal(a, b) for a, b in zip(before, spec.model.parameters(), strict=True))


def test_non_finite_loss_fails_every_loss_check() -> None:
    x, y = _blobs()
    model = _classifier(0.01)
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    report = run_sanity(Spec(model, nn.CrossEntropyLoss(), x, y))
    checks = _by_name(report)
    assert checks["initial-loss"].status == "fail" and "nan" in checks["initial-loss"].message
    overfit = checks["overfit-small-subset"]
    assert overfit.status == "fail" and overfit.details["steps"] == 0
    assert overfit.fix is not None and "diverged" in overfit.fix
