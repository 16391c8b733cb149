"""CLI commands that run before training: ``runlint gradcheck`` and ``runlint sanity``.

Both load a model through a factory (``path/to/file.py:make`` or ``package.module:make``, see
``runlint.factory``). torch is imported inside the commands only, so ``runlint check`` never
imports it. Exit codes: 0 passed, 1 a gradient is wrong / a sanity check failed, 2 usage or a
factory that cannot be loaded or evaluated.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from runlint.cli.flags import Command, CommandError, Flag, at_least, positive_int

if TYPE_CHECKING:
    from rich.console import Console

    from runlint.pretrain.factory import Spec
    from runlint.pretrain.gradcheck import GradcheckReport
    from runlint.pretrain.sanity import SanityReport

__all__ = ["GRADCHECK", "SANITY"]

_Report = TypeVar("_Report", "GradcheckReport", "SanityReport")

non_negative_int = at_least(int, 0)
non_negative_float = at_least(float, 0.0)

#: Flags both commands take (declared once).
SPEC = Flag(("spec",), "Factory: path/to/file.py:make or package.module:make.")
SEED = Flag(("--seed",), "Seed for sampling and training.", value=int, default=0)
DEVICE = Flag(
    ("--device",), "Device: auto (CUDA when available), cpu, cuda, cuda:1, ...", default="auto"
)
FORMAT = Flag(
    ("--format", "-f"), "Output format.", choices=("text", "json"), default="text", dest="fmt"
)

_BANDS_LINE = (
    "bands (CS231n): > 1e-2 wrong · 1e-2…1e-4 suspicious · < 1e-4 ok for kinked objectives "
    "· < 1e-7 good"
)
_STYLE = {
    "good": "green",
    "ok": "green",
    "kinks": "cyan",
    "suspicious": "yellow",
    "wrong": "bold red",
    "pass": "green",
    "warn": "yellow",
    "fail": "bold red",
    "skip": "dim",
}


def _console() -> Console:
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=120)
    return console


def _load(ref: str) -> Spec:
    from runlint.extras import MissingExtra, requires_extra

    try:
        with requires_extra("torch", "this command"):
            import torch  # noqa: F401
    except MissingExtra as exc:
        raise CommandError(str(exc)) from None
    from runlint.pretrain.factory import FactoryError, load_spec

    try:
        return load_spec(ref)
    except FactoryError as exc:
        raise CommandError(str(exc)) from exc


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1e}" if math.isfinite(value) else str(value)


GRADCHECK_FLAGS = (
    SPEC,
    Flag(("--inputs", "-n"), "Data points used.", value=positive_int, default=3),
    Flag(("--coords", "-k"), "Coordinates sampled per parameter.", value=positive_int, default=10),
    Flag(
        ("--step",),
        "Step h, scaled by max(1, |θ|) per coordinate.",
        value=non_negative_float,
        default=1e-5,
    ),
    Flag(
        ("--burn-in",),
        "Optimizer steps on the batch before checking.",
        value=non_negative_int,
        default=0,
    ),
    Flag(
        ("--burn-in-optimizer",),
        "Optimizer for the burn-in.",
        choices=("adam", "sgd"),
        default="adam",
    ),
    Flag(("--burn-in-lr",), "Burn-in learning rate.", value=non_negative_float, default=1e-3),
    SEED,
    DEVICE,
    FORMAT,
)


def gradcheck(args: argparse.Namespace) -> int:
    loaded = _load(args.spec)
    from runlint.pretrain.gradcheck import GradcheckError, GradcheckOptions, run_gradcheck

    opts = GradcheckOptions(
        num_inputs=args.inputs,
        coords=args.coords,
        step=args.step,
        seed=args.seed,
        burn_in=args.burn_in,
        burn_in_optimizer=args.burn_in_optimizer,
        burn_in_lr=args.burn_in_lr,
        device=args.device,
    )
    try:
        report = run_gradcheck(loaded, opts)
    except GradcheckError as exc:
        raise CommandError(str(exc)) from exc
    return _report("gradcheck", args.spec, report, args.fmt, _print_gradcheck)


GRADCHECK = Command(
    "gradcheck",
    "Compare autograd gradients with centered differences in float64 (CS231n gradcheck).",
    """Compare autograd gradients with centered differences in float64 (CS231n gradcheck).

Data loss alone first, then with the factory's regularization; kinks (ReLU/max/abs crossing
zero within ±h) are reported apart. Exit 1 when any parameter's relative error > 1e-2.""",
    lambda: GRADCHECK_FLAGS,
    gradcheck,
)


def _report(
    command: str,
    spec: str,
    report: _Report,
    fmt: str,
    text: Callable[[str, _Report], None],
) -> int:
    """Print ``report`` as strict JSON or as ``text`` prints it; 1 when it failed."""
    if fmt == "json":
        data = {"version": 1, "command": command, "spec": spec, **report.to_dict()}
        print(json.dumps(_finite(data), indent=2, allow_nan=False, default=_json_default))
    else:
        text(spec, report)
    return 1 if report.failed else 0


def _json_default(value: Any) -> Any:
    return str(value)


def _finite(value: Any) -> Any:
    """Non-finite floats become strings ("nan", "inf") so the output stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _print_gradcheck(spec: str, report: GradcheckReport) -> None:
    from rich.table import Table

    console = _console()
    burn = report.burn_in
    burn_txt = ""
    if burn.get("steps"):
        burn_txt = (
            f", burn-in {burn['steps']} {burn['optimizer']} steps "
            f"(loss {burn['loss_before']:.4g} → {burn['loss_after']:.4g})"
        )
    console.print(
        f"[bold]gradcheck[/] {spec}: {report.dtype} on {report.device}, "
        f"{report.num_inputs} data points, ≤{report.coords} coordinates per parameter, "
        f"h = {report.step:g}·max(1, |θ|){burn_txt}"
    )
    for phase in report.phases:
        reg = f", regularization {phase.reg_loss:.4g}" if phase.reg_loss is not None else ""
        kind = "smooth" if phase.smooth else "has kinks"
        table = Table(
            title=f"{phase.name}: loss {phase.loss:.4g}{reg} (objective {kind})",
            title_justify="left",
        )
        for col in ("parameter", "shape", "checked", "kinks", "max rel err", "median rel err"):
            table.add_column(col, justify="left" if col in ("parameter", "shape") else "right")
        table.add_column("verdict")
        for p in phase.params:
            style = _STYLE.get(p.verdict, "")
            table.add_row(
                p.name,
                "×".join(map(str, p.shape)) or "scalar",
                str(p.checked),
                str(p.kinks),
                _fmt(p.max_rel_error),
                _fmt(p.median_rel_error),
                f"[{style}]{p.verdict.upper()}[/]",
            )
        console.print(table)
        for p in phase.params:
            if p.verdict in ("wrong", "suspicious") and p.worst is not None:
                w = p.worst
                console.print(
                    f"  {p.name}[{', '.join(map(str, w.index))}]: analytic {w.analytic:.6g}, "
                    f"numeric {w.numeric:.6g}, relative error {w.rel_error:.2e}"
                )
    console.print(f"[dim]{_BANDS_LINE}[/]")
    for note in report.notes:
        console.print(f"[dim]note: {note}[/]")
    kinks = sum(p.kinks for ph in report.phases for p in ph.params)
    if kinks:
        console.print(
            f"note: {kinks} coordinate(s) crossed a kink (ReLU/max/abs/hinge) within ±h; "
            "they are reported, not counted as failures"
        )
    wrong = [
        f"{ph.name}: {p.name}" for ph in report.phases for p in ph.params if p.verdict == "wrong"
    ]
    if wrong:
        console.print(f"[bold red]gradcheck: WRONG[/] gradients for {', '.join(wrong)}")
        console.print(
            "fix: check the backward of custom autograd.Functions and hand-written gradients "
            "feeding these parameters; if only the regularization phase fails, check the "
            "regularization term"
        )
    else:
        console.print(f"gradcheck: passed (verdict {report.verdict})")


SANITY_FLAGS = (
    SPEC,
    Flag(
        ("--tolerance",),
        "Relative tolerance on the initial loss.",
        value=non_negative_float,
        default=0.25,
    ),
    Flag(
        ("--overfit-examples",),
        "Examples in the subset to overfit.",
        value=positive_int,
        default=20,
    ),
    Flag(("--overfit-steps",), "Adam steps at most.", value=positive_int, default=500),
    Flag(("--overfit-lr",), "Adam learning rate.", value=non_negative_float, default=3e-3),
    Flag(
        ("--overfit-target",),
        "Target loss as a fraction of the initial loss.",
        value=non_negative_float,
        default=0.01,
    ),
    SEED,
    DEVICE,
    FORMAT,
)


def sanity(args: argparse.Namespace) -> int:
    loaded = _load(args.spec)
    from runlint.pretrain.sanity import SanityError, SanityOptions, run_sanity

    opts = SanityOptions(
        tolerance=args.tolerance,
        overfit_examples=args.overfit_examples,
        overfit_steps=args.overfit_steps,
        overfit_lr=args.overfit_lr,
        overfit_target=args.overfit_target,
        seed=args.seed,
        device=args.device,
    )
    try:
        report = run_sanity(loaded, opts)
    except SanityError as exc:
        raise CommandError(str(exc)) from exc
    return _report("sanity", args.spec, report, args.fmt, _print_sanity)


SANITY = Command(
    "sanity",
    "Sanity checks before training: initial loss vs ln(C) / C−1, regularization raises the "
    "loss, ~20 examples can be overfit to near-zero loss.",
    """Sanity checks before training: initial loss vs ln(C) / C−1, regularization raises the
loss, ~20 examples can be overfit to near-zero loss. Exit 1 when a check fails.""",
    lambda: SANITY_FLAGS,
    sanity,
)


def _print_sanity(spec: str, report: SanityReport) -> None:
    console = _console()
    console.print(f"[bold]sanity[/] {spec} on {report.device}")
    for check in report.checks:
        style = _STYLE.get(check.status, "")
        console.print(f"[{style}]{check.status.upper():4}[/] {check.name}: {check.message}")
        if check.fix:
            console.print(f"     fix: {check.fix}")
    data = report.to_dict()
    console.print(
        f"sanity: {data['pass']} passed, {data['warn']} warned, {data['fail']} failed, "
        f"{data['skip']} skipped"
    )
