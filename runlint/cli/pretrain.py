"""CLI commands that run before training: ``runlint gradcheck`` and ``runlint sanity``.

Both load a model through a factory (``path/to/file.py:make`` or ``package.module:make``, see
``runlint.factory``). torch is imported inside the commands only, so ``runlint check`` never
imports it. Exit codes: 0 passed, 1 a gradient is wrong / a sanity check failed, 2 usage or a
factory that cannot be loaded or evaluated.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from runlint.pretrain.factory import Spec
    from runlint.pretrain.gradcheck import GradcheckReport
    from runlint.pretrain.sanity import SanityReport

_Report = TypeVar("_Report", "GradcheckReport", "SanityReport")


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


class BurnInOptimizer(StrEnum):
    adam = "adam"
    sgd = "sgd"


SpecArg = Annotated[
    str, typer.Argument(help="Factory: path/to/file.py:make or package.module:make.")
]
FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]
DeviceOpt = Annotated[
    str, typer.Option(help="Device: auto (CUDA when available), cpu, cuda, cuda:1, ...")
]
SeedOpt = Annotated[int, typer.Option(help="Seed for sampling and training.")]

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


def _error(message: str) -> typer.Exit:
    typer.echo(f"runlint: error: {message}", err=True)
    return typer.Exit(2)


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
        raise _error(str(exc)) from None
    from runlint.pretrain.factory import FactoryError, load_spec

    try:
        return load_spec(ref)
    except FactoryError as exc:
        raise _error(str(exc)) from exc


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1e}" if math.isfinite(value) else str(value)


def register(app: typer.Typer) -> None:
    """Add the pre-training commands to the ``runlint`` app."""
    app.command()(gradcheck)
    app.command()(sanity)


def gradcheck(
    spec: SpecArg,
    inputs: Annotated[int, typer.Option("--inputs", "-n", min=1, help="Data points used.")] = 3,
    coords: Annotated[
        int, typer.Option("--coords", "-k", min=1, help="Coordinates sampled per parameter.")
    ] = 10,
    step: Annotated[
        float, typer.Option(min=0.0, help="Step h, scaled by max(1, |θ|) per coordinate.")
    ] = 1e-5,
    burn_in: Annotated[
        int, typer.Option(min=0, help="Optimizer steps on the batch before checking.")
    ] = 0,
    burn_in_optimizer: Annotated[
        BurnInOptimizer, typer.Option(help="Optimizer for the burn-in.")
    ] = BurnInOptimizer.adam,
    burn_in_lr: Annotated[float, typer.Option(min=0.0, help="Burn-in learning rate.")] = 1e-3,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = OutputFormat.text,
) -> None:
    """Compare autograd gradients with centered differences in float64 (CS231n gradcheck).

    Data loss alone first, then with the factory's regularization; kinks (ReLU/max/abs crossing
    zero within ±h) are reported apart. Exit 1 when any parameter's relative error > 1e-2.
    """
    loaded = _load(spec)
    from runlint.pretrain.gradcheck import GradcheckError, GradcheckOptions, run_gradcheck

    opts = GradcheckOptions(
        num_inputs=inputs,
        coords=coords,
        step=step,
        seed=seed,
        burn_in=burn_in,
        burn_in_optimizer=burn_in_optimizer.value,
        burn_in_lr=burn_in_lr,
        device=device,
    )
    try:
        report = run_gradcheck(loaded, opts)
    except GradcheckError as exc:
        raise _error(str(exc)) from exc
    _report("gradcheck", spec, report, fmt, _print_gradcheck)


def _report(
    command: str,
    spec: str,
    report: _Report,
    fmt: OutputFormat,
    text: Callable[[str, _Report], None],
) -> NoReturn:
    """Print ``report`` as strict JSON or as ``text`` prints it; exit 1 when it failed."""
    if fmt is OutputFormat.json:
        data = {"version": 1, "command": command, "spec": spec, **report.to_dict()}
        typer.echo(json.dumps(_finite(data), indent=2, allow_nan=False, default=_json_default))
    else:
        text(spec, report)
    raise typer.Exit(1 if report.failed else 0)


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


def sanity(
    spec: SpecArg,
    tolerance: Annotated[
        float, typer.Option(min=0.0, help="Relative tolerance on the initial loss.")
    ] = 0.25,
    overfit_examples: Annotated[
        int, typer.Option(min=1, help="Examples in the subset to overfit.")
    ] = 20,
    overfit_steps: Annotated[int, typer.Option(min=1, help="Adam steps at most.")] = 500,
    overfit_lr: Annotated[float, typer.Option(min=0.0, help="Adam learning rate.")] = 3e-3,
    overfit_target: Annotated[
        float, typer.Option(min=0.0, help="Target loss as a fraction of the initial loss.")
    ] = 0.01,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    fmt: FormatOpt = OutputFormat.text,
) -> None:
    """Sanity checks before training: initial loss vs ln(C) / C−1, regularization raises the
    loss, ~20 examples can be overfit to near-zero loss. Exit 1 when a check fails."""
    loaded = _load(spec)
    from runlint.pretrain.sanity import SanityError, SanityOptions, run_sanity

    opts = SanityOptions(
        tolerance=tolerance,
        overfit_examples=overfit_examples,
        overfit_steps=overfit_steps,
        overfit_lr=overfit_lr,
        overfit_target=overfit_target,
        seed=seed,
        device=device,
    )
    try:
        report = run_sanity(loaded, opts)
    except SanityError as exc:
        raise _error(str(exc)) from exc
    _report("sanity", spec, report, fmt, _print_sanity)


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
