"""Sanity checks before training (CS231n "Before learning: sanity checks").

1. ``initial-loss``: the data loss at initialization is what diffuse class scores give: ln(C)
   for a softmax classifier, C−1 for a multiclass SVM (margin 1, summed over the wrong classes;
   (C−1)/C for ``nn.MultiMarginLoss``, which averages over classes).
2. ``regularization-raises-loss``: adding the regularization term raises the loss (and does not
   swamp the data loss).
3. ``overfit-small-subset``: ~20 examples can be fitted to near-zero loss with regularization off
   (Adam, a few hundred steps, dropout off).

Each check passes, warns, fails (with the fix to try) or is skipped with the reason.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from runlint.analysis.expected import SVM, chance_loss
from runlint.pretrain.factory import Spec, infer_loss_kind
from runlint.pretrain.gradcheck import resolve_device, single_thread
from runlint.schema.meta import Setup

__all__ = ["CheckResult", "SanityError", "SanityOptions", "SanityReport", "run_sanity"]


class SanityError(Exception):
    """The model, loss or batch could not be evaluated; the message is one line."""


@dataclass
class SanityOptions:
    """Tolerances and the overfitting budget."""

    tolerance: float = 0.25
    overfit_examples: int = 20
    overfit_steps: int = 500
    overfit_lr: float = 3e-3
    overfit_target: float = 0.01
    seed: int = 0
    device: str = "auto"


@dataclass
class CheckResult:
    """One sanity check: ``status`` is pass, warn, fail or skip."""

    name: str
    status: str
    message: str
    fix: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class SanityReport:
    """All checks of one ``runlint sanity`` run."""

    device: str
    checks: list[CheckResult]

    @property
    def failed(self) -> bool:
        """True when any check failed."""
        return any(c.status == "fail" for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        counts = {s: sum(c.status == s for c in self.checks) for s in ("pass", "warn", "fail")}
        counts["skip"] = sum(c.status == "skip" for c in self.checks)
        return {"device": self.device, "checks": [asdict(c) for c in self.checks], **counts}


def _scalar(value: Any, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise SanityError(f"{what} must return a scalar tensor, got {type(value).__name__}")
    return value.reshape(())


class _Model:
    """A float32 copy of the factory's model on one device, with its batch."""

    def __init__(self, spec: Spec, device: torch.device) -> None:
        try:
            self.model = copy.deepcopy(spec.model).to(device)
        except Exception as exc:
            raise SanityError(f"cannot copy the model to {device}: {exc}") from exc
        self.spec = spec
        loss_fn = spec.loss_fn
        if isinstance(loss_fn, nn.Module):
            loss_fn = copy.deepcopy(loss_fn).to(device)
        self.loss_fn = loss_fn
        self.inputs = tuple(t.detach().to(device) for t in spec.input_tuple)
        self.targets = spec.targets.detach().to(device)

    def outputs(self, n: int | None = None) -> Any:
        return self.model(*(t[:n] for t in self.inputs))

    def data_loss(self, outputs: Any, n: int | None = None) -> torch.Tensor:
        return _scalar(self.loss_fn(outputs, self.targets[:n]), "loss_fn")


def _output_layer(wrapped: _Model) -> str | None:
    """The name of the last weight-matrix module that runs in the forward pass."""
    order: list[str] = []
    handles = []
    for name, module in wrapped.model.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.dim() >= 2 and name:
            handles.append(module.register_forward_hook(lambda *_, n=name: order.append(n)))
    try:
        with torch.no_grad():
            wrapped.outputs(1)
    finally:
        for h in handles:
            h.remove()
    return order[-1] if order else None


def _expected_loss(spec: Spec, kind: str | None, classes: int) -> tuple[float, str] | None:
    if spec.expected_initial_loss is not None:
        return float(spec.expected_initial_loss), "given by the factory"
    loss = {"softmax": "cross_entropy", "svm": "svm"}.get(kind or "")
    if kind == "svm" and isinstance(spec.loss_fn, nn.MultiMarginLoss):
        loss = "multi_margin"  # PyTorch divides the hinge sum by C
    chance = chance_loss(Setup(num_classes=classes, loss=loss)) if loss else None
    if chance is None:
        return None
    if loss == "multi_margin":
        margin = float(getattr(spec.loss_fn, "margin", 1.0))
        return margin * chance.value, f"margin·(C−1)/C for nn.MultiMarginLoss, C = {classes}"
    if chance.kind == SVM:
        return chance.value, f"C−1 for a {classes}-class SVM with margin 1"
    return chance.value, f"{chance.formula} for a {classes}-class {chance.kind}"


def check_initial_loss(wrapped: _Model, tolerance: float) -> CheckResult:
    """Data loss at initialization against ln(C) / C−1."""
    name = "initial-loss"
    spec = wrapped.spec
    wrapped.model.eval()
    with torch.no_grad():
        out = wrapped.outputs()
        observed = float(wrapped.data_loss(out))
    kind = infer_loss_kind(spec)
    classes = spec.num_classes
    source = "given"
    if classes is None and isinstance(out, torch.Tensor) and out.dim() >= 2:
        classes, source = int(out.shape[-1]), "inferred from the model's output"
    details: dict[str, Any] = {"observed": observed, "loss_kind": kind, "num_classes": classes}
    details["num_classes_source"] = source
    if not math.isfinite(observed):
        return CheckResult(
            name,
            "fail",
            f"initial loss is {observed}",
            "check the inputs for NaN/Inf and lower the initial weight scale",
            details,
        )
    if kind is None and spec.expected_initial_loss is None:
        return CheckResult(
            name,
            "skip",
            f"initial loss {observed:.4g}; loss kind unknown, no expected value "
            "(set loss_kind='softmax' or 'svm' in the factory)",
            None,
            details,
        )
    if (classes is None or classes < 2) and spec.expected_initial_loss is None:
        return CheckResult(name, "skip", "number of classes unknown (set num_classes)", None)
    expected = _expected_loss(spec, kind, classes or 0)
    if expected is None:
        return CheckResult(
            name, "skip", f"initial loss {observed:.4g}; no expected value for a {kind} loss"
        )
    value, why = expected
    details.update(expected=value, tolerance=tolerance)
    message = f"initial loss {observed:.4g}; expected {why} = {value:.4g}"
    if abs(observed - value) <= tolerance * abs(value):
        return CheckResult(name, "pass", message, None, details)
    layer = _output_layer(wrapped)
    where = f" (`{layer}`)" if layer else ""
    if observed > value:
        fix = (
            f"scale the last layer's weights{where} ×0.01 and zero its bias so the initial "
            "scores are ≈ 0; check that the loss is a mean over the batch, not a sum"
        )
    else:
        fix = (
            "the loss is below chance before training: check that the targets do not leak into "
            "the inputs, that num_classes is right and how the loss averages over classes"
        )
    return CheckResult(name, "fail", message, fix, details)


def check_regularization(wrapped: _Model) -> CheckResult:
    """Adding the regularization term must raise the loss."""
    name = "regularization-raises-loss"
    spec = wrapped.spec
    if spec.regularization is None:
        return CheckResult(name, "skip", "the factory gives no regularization term")
    wrapped.model.eval()
    with torch.no_grad():
        data = float(wrapped.data_loss(wrapped.outputs()))
        reg = float(_scalar(spec.regularization(wrapped.model), "regularization"))
    total = data + reg
    details = {"data_loss": data, "regularization": reg, "total": total}
    message = f"loss {data:.4g} without regularization, {total:.4g} with it (term {reg:.4g})"
    if not math.isfinite(reg) or not total > data:
        fix = (
            "the regularization term must be positive and added to the loss, "
            "e.g. 0.5·λ·Σw² over the weights: check its sign and that it reaches the loss"
        )
        return CheckResult(name, "fail", message, fix, details)
    if reg > data:
        fix = (
            "lower the regularization strength λ: a term larger than the data loss "
            "swamps it (check the data loss alone first)"
        )
        return CheckResult(name, "warn", message + "; regularization exceeds the data loss", fix)
    return CheckResult(name, "pass", message, None, details)


def check_overfit(wrapped: _Model, opts: SanityOptions) -> CheckResult:
    """~20 examples must reach near-zero loss without regularization."""
    name = "overfit-small-subset"
    n = min(opts.overfit_examples, int(wrapped.inputs[0].shape[0]))
    model = wrapped.model
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=opts.overfit_lr)
    first = last = best = math.nan
    target = math.nan
    reached = None
    ran = 0
    for step in range(opts.overfit_steps + 1):
        ran = step
        loss = wrapped.data_loss(wrapped.outputs(n), n)
        value = float(loss.detach())
        if step == 0:
            first, best = value, value
            target = opts.overfit_target * value
        last, best = value, min(best, value)
        if not math.isfinite(value) or value <= target or step == opts.overfit_steps:
            if math.isfinite(value) and value <= target:
                reached = step
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    details = {
        "examples": n,
        "initial_loss": first,
        "final_loss": last,
        "best_loss": best,
        "target": target,
        "steps": reached if reached is not None else ran,
        "lr": opts.overfit_lr,
    }
    few = f" (the batch has only {n} examples)" if n < opts.overfit_examples else ""
    if reached is not None:
        message = (
            f"{n} examples fitted: loss {first:.4g} → {last:.4g} in {reached} Adam steps "
            f"(lr {opts.overfit_lr:g}, target {target:.3g}){few}"
        )
        return CheckResult(name, "pass", message, None, details)
    message = (
        f"{n} examples not fitted: loss {first:.4g} → {last:.4g} (best {best:.4g}) after "
        f"{ran} Adam steps (lr {opts.overfit_lr:g}, target {target:.3g}){few}"
    )
    fix = (
        "check the data pipeline (do the targets match the inputs?), the model's capacity and "
        "the learning rate (try --overfit-lr ×10 and ÷10); a model that cannot fit "
        f"{n} examples will not learn the full data set"
    )
    if not math.isfinite(last):
        fix = "the loss diverged: lower --overfit-lr and check the initialization"
    return CheckResult(name, "fail", message, fix, details)


def run_sanity(spec: Spec, opts: SanityOptions | None = None) -> SanityReport:
    """Run the three sanity checks on ``spec``."""
    opts = opts or SanityOptions()
    if opts.overfit_examples < 1 or opts.overfit_steps < 1 or not opts.overfit_lr > 0:
        raise SanityError("--overfit-examples and --overfit-steps must be >= 1, --overfit-lr > 0")
    try:
        device = resolve_device(opts.device)
    except Exception as exc:
        raise SanityError(str(exc)) from exc
    torch.manual_seed(opts.seed)
    try:
        with single_thread(device):
            wrapped = _Model(spec, device)
            checks = [check_initial_loss(wrapped, opts.tolerance), check_regularization(wrapped)]
            checks.append(check_overfit(wrapped, opts))
    except SanityError:
        raise
    except Exception as exc:
        raise SanityError(f"evaluating the model failed: {type(exc).__name__}: {exc}") from exc
    return SanityReport(device=str(device), checks=checks)
