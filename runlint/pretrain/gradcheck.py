"""Gradient check (CS231n "Gradient Checks"): autograd against centered differences.

The model is copied to float64 and put in eval mode (dropout off; BatchNorm uses its running
statistics, which is a fixed function of the input and so fine for checking). A few data points
of the factory's batch are used, a few coordinates per parameter are sampled (seeded), and for
each coordinate the numerical gradient ``(f(θ+h) - f(θ-h)) / 2h`` is compared with the analytic
one by the relative error ``|a - n| / max(|a|, |n|)``. The data loss is checked first, then data
loss plus regularization. A coordinate whose perturbation flips a non-differentiable branch
(ReLU/max/abs/clamp/max-pool/hinge or a comparison) between ``θ+h`` and ``θ-h`` is a *kink*: it
is reported and left out of the verdict.
"""

from __future__ import annotations

import contextlib
import copy
import math
import statistics
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from runlint.pretrain.factory import Spec

__all__ = [
    "BANDS",
    "GradcheckError",
    "GradcheckOptions",
    "GradcheckReport",
    "KinkRecorder",
    "ParamResult",
    "PhaseResult",
    "band",
    "run_gradcheck",
]

# CS231n bands: > 1e-2 wrong; 1e-2..1e-4 suspicious; < 1e-4 ok for kinked objectives; < 1e-7 good
BANDS = {"wrong": 1e-2, "suspicious": 1e-4, "ok": 1e-7}
VERDICT_ORDER = ("good", "kinks", "ok", "suspicious", "wrong")
_EPS = torch.finfo(torch.float64).eps


class GradcheckError(Exception):
    """The model, loss or batch could not be evaluated; the message is one line."""


@dataclass
class GradcheckOptions:
    """How many points and coordinates to check, the step and the burn-in."""

    num_inputs: int = 3
    coords: int = 10
    step: float = 1e-5
    seed: int = 0
    burn_in: int = 0
    burn_in_optimizer: str = "adam"
    burn_in_lr: float = 1e-3
    device: str = "auto"


@dataclass
class CoordResult:
    """One checked coordinate."""

    index: list[int]
    analytic: float
    numeric: float
    rel_error: float
    step: float
    kink: bool
    below_noise: bool


@dataclass
class ParamResult:
    """The check of one parameter in one phase."""

    name: str
    shape: list[int]
    numel: int
    checked: int
    kinks: int
    zero: int
    max_rel_error: float | None
    median_rel_error: float | None
    verdict: str
    worst: CoordResult | None
    kink_max_rel_error: float | None


@dataclass
class PhaseResult:
    """All parameters checked against one objective (data loss, or data + regularization)."""

    name: str
    loss: float
    data_loss: float
    reg_loss: float | None
    smooth: bool
    verdict: str
    params: list[ParamResult]


@dataclass
class GradcheckReport:
    """Everything ``runlint gradcheck`` prints."""

    device: str
    dtype: str
    num_inputs: int
    coords: int
    step: float
    seed: int
    burn_in: dict[str, Any]
    phases: list[PhaseResult]
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """The worst verdict over all phases."""
        return worst_verdict(p.verdict for p in self.phases)

    @property
    def failed(self) -> bool:
        """True when any parameter's gradient is wrong (relative error > 1e-2)."""
        return self.verdict == "wrong"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["verdict"] = self.verdict
        return data


def band(rel_error: float) -> str:
    """The CS231n verdict for a relative error."""
    if not math.isfinite(rel_error) or rel_error > BANDS["wrong"]:
        return "wrong"
    if rel_error > BANDS["suspicious"]:
        return "suspicious"
    if rel_error > BANDS["ok"]:
        return "ok"
    return "good"


def worst_verdict(verdicts: Any) -> str:
    """The worst of several verdicts (``good`` when there are none)."""
    return max(verdicts, key=VERDICT_ORDER.index, default="good")


# ---------------------------------------------------------------- kink detection

_POSITIVE = {"relu", "relu_", "leaky_relu", "leaky_relu_", "prelu", "rrelu", "rrelu_"}
_CLAMPS = {"clamp", "clamp_", "clip", "clip_", "clamp_min", "clamp_min_", "clamp_max"}
_CLAMPS |= {"clamp_max_", "hardtanh", "hardtanh_", "relu6"}
_PAIRWISE = {"maximum", "minimum", "fmax", "fmin"}
_OUTPUT = {"gt", "lt", "ge", "le", "eq", "ne", "greater", "less", "greater_equal"}
_OUTPUT |= {"less_equal", "__gt__", "__lt__", "__ge__", "__le__", "__eq__", "__ne__"}
_OUTPUT |= {"sign", "sgn", "heaviside", "argmax", "argmin", "argsort"}
_INDICES = {"sort", "topk"}
_POOL_INDEX_ARG = {
    F.max_pool1d: 6,
    F.max_pool2d: 6,
    F.max_pool3d: 6,
    F.adaptive_max_pool1d: 2,
    F.adaptive_max_pool2d: 2,
    F.adaptive_max_pool3d: 2,
}


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], pos: int, name: str, default: Any) -> Any:
    if len(args) > pos:
        return args[pos]
    return kwargs.get(name, default)


def _above(x: torch.Tensor, bound: Any) -> torch.Tensor:
    return (x > bound).to(torch.int8)


class KinkRecorder(TorchFunctionMode):
    """Records which branch every non-differentiable op took, in call order.

    Two forward passes whose records differ crossed a kink between them. Covers module and
    functional calls (ReLU family, clamp/hardtanh, abs, max/min, max-pooling, multi-margin and
    L1 losses, comparisons, sign, arg-max/sort); ``names`` lists the kinked ops seen.
    """

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, torch.Tensor]] = []
        self.names: set[str] = set()

    def _add(self, name: str, state: Any) -> None:
        if isinstance(state, torch.Tensor):
            self.records.append((name, state.detach()))
            self.names.add(name)

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = dict(kwargs or {})
        name = getattr(func, "__name__", "")
        x = args[0] if args else None
        if not isinstance(x, torch.Tensor):
            return func(*args, **kwargs)
        if name in _POSITIVE:
            self._add(name, _above(x, 0))
        elif name == "threshold" or name == "threshold_":
            self._add(name, _above(x, _arg(args, kwargs, 1, "threshold", 0.0)))
        elif name in _CLAMPS:
            self._add(name, self._clamp_state(name, x, args, kwargs))
        elif name in ("abs", "abs_", "absolute"):
            self._add(name, torch.sign(x).to(torch.int8))
        elif name in _PAIRWISE or (
            name in ("max", "min")
            and isinstance(_arg(args, kwargs, 1, "other", None), torch.Tensor)
        ):
            self._add(name, x > _arg(args, kwargs, 1, "other", None))
        elif name == "multi_margin_loss":
            self._add(name, self._hinge_state(x, args, kwargs))
        elif name == "l1_loss":
            target = _arg(args, kwargs, 1, "target", None)
            if isinstance(target, torch.Tensor):
                self._add(name, torch.sign(x - target).to(torch.int8))
        elif func in _POOL_INDEX_ARG:
            return self._pool(name, func, args, kwargs)
        out = func(*args, **kwargs)
        if name in ("max", "min"):
            dim = _arg(args, kwargs, 1, "dim", None)
            if isinstance(dim, int):
                self._add(name, out[1])
            elif dim is None and "other" not in kwargs:
                self._add(name, x.argmax() if name == "max" else x.argmin())
        elif name in _OUTPUT:
            self._add(name, out)
        elif name in _INDICES or name.endswith("_with_indices"):
            self._add(name, out[1])
        return out

    @staticmethod
    def _clamp_state(
        name: str, x: torch.Tensor, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> torch.Tensor:
        if name.startswith("hardtanh"):
            lo, hi = _arg(args, kwargs, 1, "min_val", -1.0), _arg(args, kwargs, 2, "max_val", 1.0)
        elif name == "relu6":
            lo, hi = 0.0, 6.0
        elif name.startswith("clamp_min"):
            lo, hi = _arg(args, kwargs, 1, "min", None), None
        elif name.startswith("clamp_max"):
            lo, hi = None, _arg(args, kwargs, 1, "max", None)
        else:
            lo, hi = _arg(args, kwargs, 1, "min", None), _arg(args, kwargs, 2, "max", None)
        state = torch.zeros(x.shape, dtype=torch.int8, device=x.device)
        if lo is not None:
            state = state + _above(x, lo)
        if hi is not None:
            state = state + _above(x, hi)
        return state

    @staticmethod
    def _hinge_state(x: torch.Tensor, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        target = _arg(args, kwargs, 1, "target", None)
        margin = _arg(args, kwargs, 3, "margin", 1.0)
        if not isinstance(target, torch.Tensor) or x.dim() != 2:
            return None
        correct = x.gather(1, target.long().view(-1, 1))
        return (margin - correct + x) > 0

    def _pool(
        self, name: str, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        pos = _POOL_INDEX_ARG[func]
        if len(args) > pos:
            args = (*args[:pos], True, *args[pos + 1 :])
            wanted = bool(args[pos])
        else:
            wanted = bool(kwargs.get("return_indices", False))
            kwargs["return_indices"] = True
        values, indices = func(*args, **kwargs)
        self._add(name, indices)
        return (values, indices) if wanted else values


def _same_branches(a: list[tuple[str, torch.Tensor]], b: list[tuple[str, torch.Tensor]]) -> bool:
    if len(a) != len(b):
        return False
    for (na, ta), (nb, tb) in zip(a, b, strict=True):
        if na != nb or ta.shape != tb.shape or not torch.equal(ta, tb):
            return False
    return True


# ---------------------------------------------------------------- the check


@contextlib.contextmanager
def single_thread(device: torch.device) -> Iterator[None]:
    """Run small CPU problems on one thread: thread hand-offs cost more than they save."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when it is available."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise GradcheckError(f"unknown device {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GradcheckError("--device cuda asked for, but CUDA is not available")
    return dev


def _prepare(t: Any, n: int | None, device: torch.device) -> Any:
    if n is not None:
        t = t[:n]
    t = t.detach().to(device)
    return t.to(torch.float64) if t.is_floating_point() else t


class _Objective:
    """The model in float64 on one device, with its batch, data loss and regularization."""

    def __init__(self, spec: Spec, device: torch.device, n: int | None) -> None:
        try:
            self.model = copy.deepcopy(spec.model).to(device=device, dtype=torch.float64)
            loss_fn = spec.loss_fn
            if isinstance(loss_fn, torch.nn.Module):
                loss_fn = copy.deepcopy(loss_fn).to(device=device, dtype=torch.float64)
        except Exception as exc:
            raise GradcheckError(f"cannot copy the model to float64: {exc}") from exc
        self.loss_fn = loss_fn
        self.regularization = spec.regularization
        self.inputs = tuple(_prepare(t, n, device) for t in spec.input_tuple)
        self.targets = _prepare(spec.targets, n, device)

    def data_loss(self) -> torch.Tensor:
        return self._scalar(self.loss_fn(self.model(*self.inputs), self.targets), "loss_fn")

    def reg_loss(self) -> torch.Tensor:
        assert self.regularization is not None
        return self._scalar(self.regularization(self.model), "regularization")

    def loss(self, with_reg: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        data = self.data_loss()
        if not with_reg:
            return data, None
        reg = self.reg_loss()
        return data + reg, reg

    @staticmethod
    def _scalar(value: Any, what: str) -> torch.Tensor:
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise GradcheckError(f"{what} must return a scalar tensor, got {type(value).__name__}")
        return value.reshape(())


def _evaluate(obj: _Objective, with_reg: bool) -> tuple[float, list[tuple[str, torch.Tensor]]]:
    with torch.no_grad(), KinkRecorder() as rec:
        loss, _ = obj.loss(with_reg)
    return float(loss), rec.records


def _burn_in(obj: _Objective, opts: GradcheckOptions) -> dict[str, Any]:
    info: dict[str, Any] = {"steps": opts.burn_in}
    if opts.burn_in <= 0:
        return info
    params = [p for p in obj.model.parameters() if p.requires_grad]
    if opts.burn_in_optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(params, lr=opts.burn_in_lr, momentum=0.9)
    elif opts.burn_in_optimizer == "adam":
        opt = torch.optim.Adam(params, lr=opts.burn_in_lr)
    else:
        raise GradcheckError(f"unknown burn-in optimizer {opts.burn_in_optimizer!r}")
    with_reg = obj.regularization is not None
    obj.model.train()
    losses = []
    for _ in range(opts.burn_in):
        loss, _ = obj.loss(with_reg)
        losses.append(float(loss.detach()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    obj.model.eval()
    with torch.no_grad():
        final = float(obj.loss(with_reg)[0])
    info.update(optimizer=opts.burn_in_optimizer, lr=opts.burn_in_lr)
    info.update(loss_before=losses[0], loss_after=final)
    return info


def _sample(p: torch.Tensor, k: int, gen: torch.Generator) -> list[list[int]]:
    n = p.numel()
    flat = torch.arange(n) if n <= k else torch.randperm(n, generator=gen)[:k].sort().values
    return [[int(i) for i in torch.unravel_index(j, p.shape)] for j in flat] if p.dim() else [[]]


def _rel_error(a: float, n: float, floor: float) -> tuple[float, bool]:
    scale = max(abs(a), abs(n))
    if scale <= floor:
        return 0.0, True
    return abs(a - n) / scale, False


def _check_phase(
    obj: _Objective,
    with_reg: bool,
    coords: dict[str, list[list[int]]],
    step: float,
) -> PhaseResult:
    obj.model.zero_grad(set_to_none=True)
    with KinkRecorder() as rec:
        loss, reg = obj.loss(with_reg)
    value = float(loss.detach())
    if not math.isfinite(value):
        raise GradcheckError(f"the loss is {value} on the checked batch")
    loss.backward()
    smooth = not rec.names
    reg_value = float(reg.detach()) if reg is not None else None
    data_loss = value - (reg_value or 0.0)
    results = []
    for name, p in obj.model.named_parameters():
        if name not in coords:
            continue
        grad = p.grad if p.grad is not None else torch.zeros_like(p)
        checked = []
        for idx in coords[name]:
            checked.append(_check_coord(obj, with_reg, p, grad, tuple(idx), step))
        results.append(_summarize(name, p, checked))
    verdict = worst_verdict(r.verdict for r in results)
    name = "data loss + regularization" if with_reg else "data loss"
    return PhaseResult(
        name=name,
        loss=value,
        data_loss=data_loss,
        reg_loss=reg_value,
        smooth=smooth,
        verdict=verdict,
        params=results,
    )


def _check_coord(
    obj: _Objective,
    with_reg: bool,
    p: torch.Tensor,
    grad: torch.Tensor,
    idx: tuple[int, ...],
    step: float,
) -> CoordResult:
    data = p.data
    orig = float(data[idx])
    h = step * max(1.0, abs(orig))
    data[idx] = orig + h
    up = float(data[idx])
    f_plus, rec_plus = _evaluate(obj, with_reg)
    data[idx] = orig - h
    down = float(data[idx])
    f_minus, rec_minus = _evaluate(obj, with_reg)
    data[idx] = orig
    numeric = (f_plus - f_minus) / (up - down)
    analytic = float(grad[idx])
    # below this both gradients are rounding noise of the loss: count them as zero
    floor = 1e3 * _EPS * max(abs(f_plus), abs(f_minus), 1e-30) / h
    rel, below_noise = _rel_error(analytic, numeric, floor)
    kink = not _same_branches(rec_plus, rec_minus)
    return CoordResult(list(idx), analytic, numeric, rel, h, kink, below_noise)


def _summarize(name: str, p: torch.Tensor, checked: list[CoordResult]) -> ParamResult:
    smooth = [c for c in checked if not c.kink]
    kinked = [c for c in checked if c.kink]
    errors = [c.rel_error for c in smooth]
    worst = max(smooth, key=lambda c: c.rel_error, default=None)
    verdict = band(max(errors)) if errors else ("kinks" if kinked else "good")
    zero = sum(1 for c in smooth if c.below_noise)
    return ParamResult(
        name=name,
        shape=list(p.shape),
        numel=p.numel(),
        checked=len(checked),
        kinks=len(kinked),
        zero=zero,
        max_rel_error=max(errors) if errors else None,
        median_rel_error=statistics.median(errors) if errors else None,
        verdict=verdict,
        worst=worst,
        kink_max_rel_error=max((c.rel_error for c in kinked), default=None),
    )


def run_gradcheck(spec: Spec, opts: GradcheckOptions | None = None) -> GradcheckReport:
    """Check the analytic gradients of ``spec``'s model against numerical ones."""
    opts = opts or GradcheckOptions()
    if opts.num_inputs < 1 or opts.coords < 1 or not opts.step > 0:
        raise GradcheckError("--inputs and --coords must be >= 1 and --step > 0")
    device = resolve_device(opts.device)
    torch.manual_seed(opts.seed)
    n = min(opts.num_inputs, spec.batch_size)
    try:
        with single_thread(device):
            phases, burn = _run(spec, opts, device, n)
    except GradcheckError:
        raise
    except Exception as exc:
        raise GradcheckError(f"evaluating the model failed: {type(exc).__name__}: {exc}") from exc
    report = GradcheckReport(
        device=str(device),
        dtype="float64",
        num_inputs=n,
        coords=opts.coords,
        step=opts.step,
        seed=opts.seed,
        burn_in=burn,
        phases=phases,
    )
    report.notes.extend(_notes(report))
    return report


def _run(
    spec: Spec, opts: GradcheckOptions, device: torch.device, n: int
) -> tuple[list[PhaseResult], dict[str, Any]]:
    obj = _Objective(spec, device, None if opts.burn_in > 0 else n)
    burn = _burn_in(obj, opts)
    if opts.burn_in > 0:
        obj.inputs = tuple(t[:n] for t in obj.inputs)
        obj.targets = obj.targets[:n]
    obj.model.eval()
    gen = torch.Generator().manual_seed(opts.seed)
    coords = {
        name: _sample(p, opts.coords, gen)
        for name, p in obj.model.named_parameters()
        if p.requires_grad
    }
    phases = [_check_phase(obj, False, coords, opts.step)]
    if spec.regularization is not None:
        phases.append(_check_phase(obj, True, coords, opts.step))
    return phases, burn


def _notes(report: GradcheckReport) -> list[str]:
    notes = [
        "model in eval mode: dropout off, BatchNorm uses its running statistics",
        f"step h = {report.step:g} × max(1, |θ|) per coordinate, centered differences",
    ]
    for phase in report.phases:
        if phase.reg_loss is not None and phase.reg_loss > phase.data_loss:
            notes.append(
                f"regularization ({phase.reg_loss:.4g}) exceeds the data loss "
                f"({phase.data_loss:.4g}): its gradient can hide a data-loss bug"
            )
        if phase.smooth and phase.verdict == "ok":
            notes.append(
                f"{phase.name}: the objective has no kinks, so errors above 1e-7 are high for it"
            )
    return notes
