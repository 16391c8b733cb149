"""Gradient check on real small models: correct ones pass, buggy backwards are caught."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from runlint.pretrain.factory import Spec, load_spec
from runlint.pretrain.gradcheck import GradcheckOptions, GradcheckReport, band, run_gradcheck

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _check(ref: str, **options: Any) -> GradcheckReport:
    return run_gradcheck(load_spec(f"{EXAMPLES / ref}"), GradcheckOptions(**options))


def _param(report: GradcheckReport, name: str, phase: int = 0) -> Any:
    return next(p for p in report.phases[phase].params if p.name == name)


@pytest.mark.parametrize(
    "ref",
    [
        "mlp.py:make",
        "cnn.py:make",
        "transformer.py:make",
        "svm.py:make",
        "regularized.py:make",
        "buggy.py:make_correct",
    ],
)
def test_correct_models_pass(ref: str) -> None:
    report = _check(ref)
    assert not report.failed
    errors = [p.max_rel_error for ph in report.phases for p in ph.params]
    assert max(e for e in errors if e is not None) < 1e-4
    assert report.dtype == "float64"


def test_factor_of_two_in_backward_is_wrong() -> None:
    report = _check("buggy.py:make")
    assert report.failed
    weight = _param(report, "0.weight")
    assert weight.verdict == "wrong"
    # |2a - a| / |2a| = 0.5 on every coordinate
    assert weight.max_rel_error == pytest.approx(0.5, abs=1e-6)
    assert weight.worst.analytic == pytest.approx(2 * weight.worst.numeric, rel=1e-6)
    assert _param(report, "2.weight").verdict == "good"


def test_transposed_gradient_is_wrong() -> None:
    report = _check("buggy.py:make_transposed")
    assert _param(report, "0.weight").verdict == "wrong"
    assert _param(report, "0.bias").verdict == "good"


def test_missing_product_rule_term_is_wrong() -> None:
    report = _check("buggy.py:make_missing")
    assert {p.name for p in report.phases[0].params if p.verdict == "wrong"} == {
        "0.weight",
        "0.bias",
    }


class _BadSquare(torch.autograd.Function):
    """Σ w² with the backward missing its factor 2."""

    @staticmethod
    def forward(ctx: Any, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(w)
        return (w**2).sum()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (w,) = ctx.saved_tensors
        return grad * w


def test_buggy_regularization_fails_only_with_regularization_on() -> None:
    spec = load_spec(f"{EXAMPLES / 'regularized.py'}:make")
    spec.regularization = lambda m: 0.5 * _BadSquare.apply(m[0].weight)
    report = run_gradcheck(spec)
    data, with_reg = report.phases
    assert data.verdict != "wrong"
    assert with_reg.name == "data loss + regularization"
    assert _param(report, "0.weight", phase=1).verdict == "wrong"
    assert _param(report, "2.weight", phase=1).verdict != "wrong"
    assert with_reg.reg_loss is not None and with_reg.reg_loss > 0


def _relu_at_kink() -> Spec:
    """A ReLU net whose unit 0 has pre-activation exactly 0 on example 0."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3)).double()
    x = torch.randn(2, 3, dtype=torch.float64)
    with torch.no_grad():
        model[0].bias[0] = -(x[0] @ model[0].weight[0])
    return Spec(model, nn.CrossEntropyLoss(), x, torch.tensor([0, 1]))


def test_relu_at_a_kink_is_reported_as_a_kink_not_a_failure() -> None:
    report = run_gradcheck(_relu_at_kink(), GradcheckOptions(coords=16))
    weight = _param(report, "0.weight")
    assert weight.kinks == 3 and weight.checked == 12
    assert _param(report, "0.bias").kinks == 1
    # at the kink the one-sided slopes differ: counted, it would have been WRONG
    assert weight.kink_max_rel_error > 1e-2
    assert not report.failed
    assert report.phases[0].smooth is False


def test_max_pool_tie_is_a_kink() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(4, 4)
    with torch.no_grad():
        lin.weight[1] = lin.weight[0]
        lin.bias[1] = lin.bias[0]
    model = nn.Sequential(lin, nn.Unflatten(1, (1, 4)), nn.MaxPool1d(2), nn.Flatten())
    spec = Spec(model, nn.CrossEntropyLoss(), torch.randn(2, 4), torch.tensor([0, 1]))
    report = run_gradcheck(spec, GradcheckOptions(coords=16))
    assert _param(report, "0.weight").kinks >= 4
    assert _param(report, "0.bias").kinks == 2
    assert not report.failed


def test_dropout_is_off_during_the_check() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Dropout(0.5), nn.Linear(8, 3))
    spec = Spec(model, nn.CrossEntropyLoss(), torch.randn(4, 5), torch.tensor([0, 1, 2, 0]))
    report = run_gradcheck(spec)
    assert report.verdict == "good"
    assert model.training  # the user's model is left as it was


def test_the_users_model_is_not_modified() -> None:
    spec = load_spec(f"{EXAMPLES / 'mlp.py'}:make")
    before = [p.detach().clone() for p in spec.model.parameters()]
    run_gradcheck(spec, GradcheckOptions(burn_in=5))
    after = list(spec.model.parameters())
    assert all(p.dtype == torch.float32 for p in after)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_burn_in_trains_before_checking() -> None:
    report = _check("regularized.py:make", burn_in=30, burn_in_lr=1e-2)
    burn = report.burn_in
    assert burn["steps"] == 30 and burn["optimizer"] == "adam"
    assert burn["loss_after"] < burn["loss_before"]
    assert not report.failed
    sgd = _check("regularized.py:make", burn_in=5, burn_in_optimizer="sgd", burn_in_lr=0.1)
    assert sgd.burn_in["loss_after"] < sgd.burn_in["loss_before"]


def test_sampling_is_bounded_and_seeded() -> None:
    a = _check("mlp.py:make", coords=4, num_inputs=2, seed=3)
    b = _check("mlp.py:make", coords=4, num_inputs=2, seed=3)
    assert a.num_inputs == 2
    assert [p.checked for p in a.phases[0].params] == [4, 4, 4, 4, 4, 4]
    assert a.to_dict() == b.to_dict()
    c = _check("mlp.py:make", coords=4, num_inputs=2, seed=4)
    assert a.phases[0].params[0].worst.index != c.phases[0].params[0].worst.index


def test_unused_parameter_has_zero_error_not_nan() -> None:
    class WithSpare(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 2)
            self.spare = nn.Parameter(torch.ones(3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x)

    spec = Spec(WithSpare(), nn.CrossEntropyLoss(), torch.randn(2, 3), torch.tensor([0, 1]))
    spare = _param(run_gradcheck(spec), "spare")
    assert spare.max_rel_error == 0.0 and spare.zero == 3 and spare.verdict == "good"


def test_step_is_reported_and_scaled_by_the_parameter() -> None:
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.fill_(100.0)
    spec = Spec(model, nn.MSELoss(), torch.randn(3, 2), torch.randn(3, 2))
    report = run_gradcheck(spec, GradcheckOptions(step=1e-6))
    assert report.step == 1e-6
    assert _param(report, "weight").worst.step == pytest.approx(1e-4)
    assert _param(report, "bias").worst.step == pytest.approx(1e-6)


@pytest.mark.parametrize(
    ("error", "verdict"),
    [(0.5, "wrong"), (1e-3, "suspicious"), (1e-5, "ok"), (1e-9, "good"), (float("nan"), "wrong")],
)
def test_cs231n_bands(error: float, verdict: str) -> None:
    assert band(error) == verdict


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.cuda
def test_runs_on_cuda() -> None:
    report = _check("buggy.py:make", device="cuda")
    assert report.device.startswith("cuda") and report.failed
