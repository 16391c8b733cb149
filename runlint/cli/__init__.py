"""The ``runlint`` command line: ``check``, ``rules``, ``rule`` (+ ``gradcheck``, ``sanity``).

Nothing here imports torch: ``runlint check`` starts fast and runs in CI jobs without it. The
``check`` command is also parsed by a small argparse front end (same flags, same behaviour) so
that it does not pay for typer's parameter machinery; help and usage errors go through typer.
"""

import argparse
import json
import os
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runlint import __version__
from runlint.check.config import Config, ConfigError, find_config, load_config

if TYPE_CHECKING:
    import typer


class Format(StrEnum):
    text = "text"
    json = "json"
    github = "github"
    sarif = "sarif"
    junit = "junit"


class Level(StrEnum):
    info = "info"
    warning = "warning"
    error = "error"


class CatalogFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


@dataclass
class CheckArgs:
    """The arguments of ``runlint check`` (from typer or from the fast parser)."""

    paths: list[Path]
    select: list[str] | None = None
    ignore: list[str] | None = None
    fail_on: str | None = None
    exit_zero: bool = False
    fmt: str = "text"
    jobs: int = 1
    verbose: bool = False
    num_classes: int | None = None
    batch_size: int | None = None
    loss: str | None = None
    config: Path | None = None
    output: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _error(message: str) -> int:
    """Print ``runlint: error: message`` on stderr; return exit code 2."""
    print(f"runlint: error: {message}", file=sys.stderr)
    return 2


def _split(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def run_check(args: CheckArgs) -> int:
    """Check the runs under ``args.paths``, print the report, return the exit code."""
    from runlint.check import engine
    from runlint.report import Report, make_reporter

    try:
        cfg = _config(args.config, args.paths)
        catalog = engine.discover()
        rules = engine.configure(catalog, cfg, _split(args.select), _split(args.ignore) or [])
    except ConfigError as exc:
        return _error(str(exc))
    meta = dict(cfg.meta)
    for key in ("num_classes", "batch_size", "loss"):
        if getattr(args, key) is not None:
            meta[key] = getattr(args, key)
    threshold = _severity(args.fail_on, cfg)
    zero = args.exit_zero or bool(cfg.exit_zero)
    jobs = args.jobs or os.cpu_count() or 1

    results = []
    runs = []
    for path, error in engine.expand_paths(args.paths):
        if error is None:
            runs.append(path)
        else:
            results.append(engine.RunResult(path=str(path), status="error", error=error))
    checker = engine.Checker(rules, meta=meta, curve=args.fmt == "text")
    try:
        target = args.output.open("w", encoding="utf-8") if args.output else nullcontext(sys.stdout)
    except OSError as exc:
        return _error(f"{args.output}: cannot write ({exc.strerror or exc})")
    with target as out:
        reporter = make_reporter(args.fmt, out, args.verbose)
        for result in results:
            reporter.add(result)
        for result in checker.check(runs, jobs):
            results.append(result)
            reporter.add(result)
        code = engine.exit_code(results, threshold, zero)
        if catalog.errors:
            code = 2
        report = Report(
            results=results,
            rules=[type(r) for r in rules],
            fail_on=threshold,
            exit_code=code,
            problems=list(catalog.errors),
            verbose=args.verbose,
        )
        reporter.finish(report)
    return code


def _config(path: Path | None, paths: list[Path]) -> Config:
    if path is None:
        path = find_config(paths[0] if paths else None)
    return load_config(path)


def _severity(value: str | None, cfg: Config) -> Any:
    from runlint.check.rule import Severity

    if value is not None:
        return Severity(value)
    return cfg.fail_on or Severity.WARNING


class _Fallback(Exception):
    """The fast parser gives up: typer parses the command line (and reports its errors)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise _Fallback(message)


def fast_parser() -> argparse.ArgumentParser:
    """argparse twin of the typer ``check`` command (a test keeps their flags equal)."""
    p = _Parser(prog="runlint check", add_help=False, allow_abbrev=False)
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--select", action="append")
    p.add_argument("--ignore", action="append")
    p.add_argument("--fail-on", choices=[lv.value for lv in Level])
    p.add_argument("--exit-zero", action="store_true")
    p.add_argument("--format", "-f", dest="fmt", choices=[f.value for f in Format], default="text")
    p.add_argument("--jobs", "-j", type=int, default=1)
    p.add_argument("--verbose", "-v", action="store_true")
    p.add_argument("--num-classes", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--loss")
    p.add_argument("--config", type=Path)
    p.add_argument("--output", "-o", type=Path)
    return p


def fast_check(argv: list[str]) -> int | None:
    """Run ``check`` parsed by argparse; ``None`` when typer should handle ``argv`` instead."""
    if any(a in ("-h", "--help") for a in argv):
        return None
    try:
        ns = fast_parser().parse_intermixed_args(argv)
    except _Fallback:
        return None
    if ns.jobs < 0 or any(v is not None and v < 1 for v in (ns.num_classes, ns.batch_size)):
        return None
    return run_check(CheckArgs(**vars(ns)))


_APP: "typer.Typer | None" = None


def get_app() -> "typer.Typer":
    """The typer application (built on first use: importing typer costs startup time)."""
    global _APP
    if _APP is None:
        _APP = _build_app()
    return _APP


def __getattr__(name: str) -> Any:
    if name == "app":
        return get_app()
    raise AttributeError(f"module 'runlint.cli' has no attribute {name!r}")


def _build_app() -> "typer.Typer":
    from typing import Annotated

    import typer

    from runlint.cli import pretrain as pretrain_cli

    app = typer.Typer(
        add_completion=False,
        no_args_is_help=True,
        help="A linter for neural-network training runs.",
        pretty_exceptions_enable=False,
    )
    pretrain_cli.register(app)

    def _fail(message: str) -> typer.Exit:
        return typer.Exit(_error(message))

    def _version(value: bool) -> None:
        if value:
            typer.echo(f"runlint {__version__}")
            raise typer.Exit()

    @app.callback()
    def main_options(
        version: Annotated[
            bool,
            typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
        ] = False,
    ) -> None:
        """A linter for neural-network training runs (CS231n "Learning the parameters")."""

    @app.command()
    def version() -> None:
        """Print runlint's version."""
        typer.echo(__version__)

    @app.command()
    def check(
        paths: Annotated[
            list[Path],
            typer.Argument(help="Run directories, or folders holding runs (recursively)."),
        ],
        select: Annotated[
            list[str] | None,
            typer.Option(
                help="Rules to run: codes, prefixes (RL4), names or ALL; comma-separated."
            ),
        ] = None,
        ignore: Annotated[
            list[str] | None,
            typer.Option(
                help="Rules to leave out (added to the config's ignore); comma-separated."
            ),
        ] = None,
        fail_on: Annotated[
            Level | None,
            typer.Option(help="Lowest severity that fails the check (exit 1). [default: warning]"),
        ] = None,
        exit_zero: Annotated[
            bool,
            typer.Option("--exit-zero", help="Exit 0 even with findings (errors still exit 2)."),
        ] = False,
        fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.text,
        jobs: Annotated[
            int,
            typer.Option("--jobs", "-j", min=0, help="Runs checked in parallel (0: one per CPU)."),
        ] = 1,
        verbose: Annotated[
            bool, typer.Option("--verbose", "-v", help="Show skipped rules with the reason.")
        ] = False,
        num_classes: Annotated[
            int | None, typer.Option(min=1, help="Number of classes, for runs that lack it.")
        ] = None,
        batch_size: Annotated[
            int | None, typer.Option(min=1, help="Batch size, for runs that lack it.")
        ] = None,
        loss: Annotated[
            str | None, typer.Option(help="Loss function (e.g. cross_entropy, mse), if lacking.")
        ] = None,
        config: Annotated[
            Path | None,
            typer.Option(help="Config file (pyproject.toml or a TOML of [tool.runlint] keys)."),
        ] = None,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Write the report to this file.")
        ] = None,
    ) -> None:
        """Check training runs against the CS231n heuristics.

        Exit codes: 0 no finding at or above --fail-on (default: warning); 1 findings at or
        above it; 2 usage, configuration or unreadable-input error, or a crashing rule (the
        other runs are still checked and reported).
        """
        args = CheckArgs(
            paths=paths,
            select=select,
            ignore=ignore,
            fail_on=fail_on.value if fail_on else None,
            exit_zero=exit_zero,
            fmt=fmt.value,
            jobs=jobs,
            verbose=verbose,
            num_classes=num_classes,
            batch_size=batch_size,
            loss=loss,
            config=config,
            output=output,
        )
        raise typer.Exit(run_check(args))

    @app.command("rules")
    def list_rules(
        fmt: Annotated[
            CatalogFormat, typer.Option("--format", "-f", help="text, markdown (README) or json.")
        ] = CatalogFormat.text,
    ) -> None:
        """List the rule catalog: code, name, default severity, what it catches."""
        from runlint.check import engine

        catalog = engine.discover()
        rows = [
            (r.code, r.name, r.severity.value, engine.rule_summary(r), ", ".join(map(str, r.needs)))
            for r in catalog.rules
        ]
        if fmt is CatalogFormat.json:
            keys = ("code", "name", "severity", "summary", "requires")
            typer.echo(json.dumps([dict(zip(keys, row, strict=True)) for row in rows], indent=2))
        elif fmt is CatalogFormat.markdown:
            typer.echo("| code | name | severity | what it catches | needs |")
            typer.echo("|---|---|---|---|---|")
            for code, name, sev, summary, needs in rows:
                cells = [code, f"`{name}`", sev, summary.replace("|", "\\|"), needs or "—"]
                typer.echo("| " + " | ".join(cells) + " |")
        else:
            from rich.console import Console
            from rich.table import Table
            from rich.text import Text

            table = Table(box=None, pad_edge=False, header_style="bold")
            for column in ("code", "name", "severity", "what it catches"):
                table.add_column(column, overflow="fold")
            for code, name, sev, summary, _ in rows:
                table.add_row(*(Text(cell) for cell in (code, name, sev, summary)))
            Console(highlight=False).print(table)
        for problem in catalog.errors:
            typer.echo(f"runlint: error: {problem}", err=True)
        if catalog.errors:
            raise typer.Exit(2)

    @app.command("rule")
    def explain_rule(
        code: Annotated[
            str, typer.Argument(help="A rule code (RL101) or name (initial-loss-off).")
        ],
    ) -> None:
        """Explain one rule: its documentation, options (with types and defaults), an example."""
        from rich.console import Console
        from rich.markdown import Markdown
        from rich.markup import escape as esc

        from runlint.check import engine
        from runlint.report import display_path

        catalog = engine.discover()
        rule = catalog.get(code)
        if rule is None:
            names = [*catalog.codes, *(r.name for r in catalog.rules)]
            from runlint.check.config import suggest

            raise _fail(f"unknown rule {code!r}{suggest(code, names)}")
        console = Console(highlight=False)
        doc = engine.rule_doc(rule)
        summary, _, body = doc.partition("\n")
        console.print(
            f"[bold]{rule.code} {rule.name}[/bold] ({rule.severity.value}): {esc(summary)}"
        )
        if body.strip():
            console.print(Markdown(body.strip()))
        console.print()
        console.print("[bold]Needs:[/bold] " + esc(", ".join(map(str, rule.needs)) or "nothing"))
        fields = engine.option_fields(rule)
        if fields:
            console.print(f"[bold]Options[/bold] (\\[tool.runlint.{rule.code}] in pyproject.toml):")
            for f in fields:
                shown = json.dumps(f.default) if _jsonable(f.default) else repr(f.default)
                console.print(
                    f"  {esc(f.name.replace('_', '-'))} = {esc(shown)}"
                    f"    [dim]{esc(engine.type_name(f.type))}: {esc(f.help)}[/dim]"
                )
            console.print(
                f'  severity = "{rule.severity.value}"    [dim]info | warning | error[/dim]'
            )
        example = _example(rule)
        if example is not None:
            run_path, finding = example
            console.print(f"[bold]Example[/bold] (fixture {esc(display_path(run_path))}):")
            console.print(
                f"  {finding.code} {finding.severity.value} {Path(run_path).name}", markup=False
            )
            console.print(f"  {finding.message}", markup=False)
            console.print(f"  fix: {finding.fix}", markup=False)

    return app


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _example(rule: Any) -> tuple[str, Any] | None:
    """The rule's first finding on a ``bad`` run of the corpus manifest, when one is at hand."""
    from runlint.check import engine

    roots = [
        Path.cwd() / "fixtures" / "corpus",
        Path(__file__).resolve().parents[1] / "fixtures" / "corpus",
    ]
    for root in roots:
        manifest = root / "manifest.json"
        if not manifest.is_file():
            continue
        try:
            entries = json.loads(manifest.read_text()).get("runs", [])
        except (OSError, ValueError, AttributeError):
            continue
        for entry in entries:
            if not isinstance(entry, dict) or rule.code not in entry.get("expect", []):
                continue
            result = engine.Checker([rule()]).check_path(root / str(entry.get("path", "")))
            if result.findings:
                return str(root / str(entry.get("path"))), result.findings[0]
    return None


def main(*, fast_exit: bool = True) -> None:
    """Entry point of the ``runlint`` script and ``python -m runlint``.

    After ``check`` has written its report, ``fast_exit`` ends the process without the
    interpreter's teardown of pandas and pyarrow (a tenth of a second of a small check).
    """
    argv = sys.argv[1:]
    try:
        if argv[:1] == ["check"]:
            code = fast_check(argv[1:])
            if code is not None:
                if fast_exit:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
                sys.exit(code)
        get_app()()
    except BrokenPipeError:  # `runlint check ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
