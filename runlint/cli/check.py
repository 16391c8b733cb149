"""``runlint check PATH...``: its flags (declared once, here) and what it runs.

The metadata flags (``--num-classes``, ``--batch-size``, ``--loss``, ...) are generated from
the schema's keys that have a ``flag`` (``runlint.check.config.meta_options``): adding such a
``MetaKey`` adds the flag, its help and its ``[tool.runlint]`` key, with no edit here.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runlint.check.config import (
    Config,
    ConfigError,
    find_config,
    limits_of,
    load_config,
    meta_options,
    meta_value_from_text,
)
from runlint.check.rule import Severity
from runlint.cli.flags import (
    Command,
    CommandError,
    Flag,
    at_least,
    print_note,
    print_warning,
    switch,
)
from runlint.report import FORMATS
from runlint.run.remote import RemoteRun, is_url
from runlint.schema.meta import MetaKey

__all__ = ["CHECK", "Settings", "check_flags", "run_check", "settings"]

LEVELS = tuple(s.value for s in Severity)
#: Where the metadata flags land in the parsed arguments: ``meta.<key>``.
META_DEST = "meta."


def path_or_url(text: str) -> Path | str:
    """A ``PATH`` argument: a URL stays text (``Path`` would fold its ``//``), else a path."""
    return text if is_url(text) else Path(text)


#: The flags of ``runlint check`` that are not generated from the schema, in ``--help`` order.
FLAGS = (
    Flag(
        ("paths",),
        "Run directories, or folders holding runs (found recursively); local paths or URLs "
        "(s3://bucket/prefix, any fsspec URL). [default: .]",
        value=path_or_url,
        many=True,
        optional=True,
        metavar="PATH",
        doc="run directories or folders holding runs, found recursively: local paths, or URLs "
        "such as `s3://bucket/prefix` (any fsspec URL; needs `pip install 'runlint[s3]'`): "
        "only the files the loaders read are fetched, one run at a time",
    ),
    Flag(
        ("--select",),
        "Rules to run: codes, prefixes (RL4), names or ALL; comma-separated or repeated.",
        repeat=True,
        metavar="RULES",
        doc="rules by code, code prefix (`RL4`, `RL40`), name, or `ALL`; comma-separated or "
        "repeated. Replaces the config's `select`; the more specific selector wins "
        "(`--select RL401 --ignore RL4` runs RL401)",
    ),
    Flag(
        ("--ignore",),
        "Rules to leave out (added to the config's ignore); comma-separated or repeated.",
        repeat=True,
        metavar="RULES",
        doc="rules to leave out, named as for `--select`; added to the config's `ignore`",
    ),
    Flag(
        ("--fail-on",),
        "Lowest severity that fails the check (exit 1). [default: warning]",
        choices=LEVELS,
        doc="lowest severity that makes the check fail (default `warning`, or the config's "
        "`fail-on`)",
    ),
    switch(
        ("--exit-zero",),
        "Exit 0 even with findings (errors still exit 2).",
        doc="exit 0 even with findings (errors still exit 2)",
    ),
    Flag(
        ("--format", "--output-format", "-f"),
        "Output format.",
        choices=FORMATS,
        default="text",
        dest="fmt",
        metavar="FORMAT",
        doc="output format (default `text`): see *Formats* below",
    ),
    Flag(
        ("--output", "-o"),
        "Write the report to this file.",
        value=Path,
        metavar="FILE",
        doc="write the report to `FILE` (default stdout)",
    ),
    Flag(
        ("--jobs", "-j"),
        "Runs checked in parallel (0: one per CPU).",
        value=at_least(int, 0),
        default=1,
        metavar="N",
        doc="runs checked in parallel processes (`0`: one per CPU; default 1)",
    ),
    switch(
        ("--verbose", "-v"),
        "Show skipped rules with the reason.",
        doc="also list the rules each run skipped, with the reason (e.g. "
        "`meta.num_classes not recorded`), and the rules that ran",
    ),
    switch(
        ("--watch",),
        "Follow the runs while they are written; print each finding once, as it appears.",
        doc="follow the runs while they are written (new runs too): print each finding once as "
        "it appears (and its withdrawal), in `text`, `json` (one event per line) or `github`; "
        "exit when every run has closed, or on Ctrl-C, with the exit codes below",
    ),
    switch(
        ("--quiet", "-q"),
        "Print the findings and errors only: no run headers, summary or progress line.",
        doc="print the findings and errors only: no run headers, no summary line, no progress "
        "line (text); the other formats are unchanged",
    ),
    switch(
        ("--statistics",),
        "Print the number of findings per rule instead of the findings.",
        doc="print the number of findings per rule code (like ruff's `--statistics`), most "
        "frequent first, instead of each finding; with `--format json` a list of "
        '`{"code", "name", "severity", "count"}`',
    ),
    Flag(
        ("--exclude",),
        "Folders not to walk: globs of paths relative to the checked path, or of names.",
        repeat=True,
        metavar="GLOBS",
        doc="folders not to walk into, comma-separated or repeated: a glob of the path "
        "relative to the checked path (`exp-*/version_1`), or, without `/`, of the folder's "
        "name (`checkpoints`); added to the config's `exclude`; `-v` lists what it left out",
    ),
    Flag(
        ("--baseline",),
        "Suppress the findings listed in this baseline file (gate only new findings).",
        value=Path,
        metavar="FILE",
        doc="suppress the findings listed in `FILE` (written by `--add-baseline`): a project "
        "adopting the gate fails only on new findings; suppressed findings are counted in the "
        "summary",
    ),
    Flag(
        ("--add-baseline",),
        "Write every finding of this check to a baseline file, then exit 0.",
        value=Path,
        metavar="FILE",
        doc="write the fingerprint of every finding of this check to `FILE` (code, run relative "
        "to the checked path, where: never the message's numbers) and exit 0 (2 on errors)",
    ),
    switch(
        ("--show-settings",),
        "Print the settings in force and where each came from, then exit.",
        doc="print the settings in force (selection, severities and options, metadata, read "
        "limits) and where each came from (default, which config file, which flag), then exit",
    ),
    Flag(
        ("--config",),
        "Config file (pyproject.toml or a TOML of [tool.runlint] keys).",
        value=Path,
        metavar="FILE",
        doc="a `pyproject.toml` or a TOML file of `[tool.runlint]` keys (default: `runlint.toml` "
        "or `pyproject.toml` in the working directory or the nearest folder above it; never a "
        "file inside a run)",
    ),
)


_METAVARS = {"int": "N", "float": "X", "string": "NAME"}


def meta_flag(name: str, key: MetaKey) -> Flag:
    """The flag of a user-suppliable metadata key (``num-classes`` → ``--num-classes``)."""

    def value(text: str) -> Any:
        try:
            return meta_value_from_text(key, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    value.__name__ = key.name
    return Flag(
        (f"--{name}",),
        key.flag,
        value=value,
        dest=META_DEST + key.name,
        metavar=_METAVARS.get(key.type.split()[0], "VALUE"),
        doc=f"{key.flag[:1].lower()}{key.flag[1:].rstrip('.')} (`{name}` in `[tool.runlint]`); "
        "a value the run recorded as given is never overridden, an inferred one is",
    )


def check_flags() -> list[Flag]:
    """Every flag of ``runlint check``: the declared ones, then the schema's metadata flags.

    Raises ``ValueError`` when a metadata key's flag would take the name of a declared flag.
    """
    taken = {n for flag in FLAGS for n in flag.names}
    generated = [meta_flag(name, key) for name, key in meta_options().items()]
    for flag in generated:
        if taken & set(flag.names):
            raise ValueError(f"metadata flag {flag.names[0]} is already a flag of runlint check")
    return [*FLAGS, *generated]


@dataclass
class Settings:
    """What a check runs with: the command line over ``[tool.runlint]`` over the defaults."""

    paths: list[Path | str]  # a str is a URL
    config: Config
    select: list[str] | None
    ignore: list[str]
    fail_on: Severity
    exit_zero: bool
    meta: dict[str, Any] = field(default_factory=dict)
    fmt: str = "text"
    output: Path | None = None
    jobs: int = 1
    verbose: bool = False
    quiet: bool = False
    statistics: bool = False
    #: folder globs the walk leaves out (the config's, then ``--exclude``)
    exclude: list[str] = field(default_factory=list)
    #: setting → where its value came from: "default", the config file, or the flag
    sources: dict[str, str] = field(default_factory=dict)


def _split(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def settings(args: argparse.Namespace) -> Settings:
    """Resolve the parsed command line against the config file; ``ConfigError`` if it is bad.

    ``--select`` replaces the config's ``select``, ``--ignore`` adds to its ``ignore``, a
    metadata flag overrides the config's value of the same key.
    """
    paths = list(args.paths) or [Path(".")]
    local = [p for p in paths if isinstance(p, Path)]
    path = args.config if args.config is not None else find_config(checked=local)
    cfg = load_config(path)
    where = f"{path}" + (" (--config)" if args.config is not None else "")
    sources = {"config": "--config"} if args.config is not None else {}
    for key, given in (
        ("select", cfg.select is not None),
        ("ignore", bool(cfg.ignore)),
        ("fail-on", cfg.fail_on is not None),
        ("exit-zero", cfg.exit_zero is not None),
    ):
        sources[key] = where if given else "default"
    for key in cfg.limits:
        sources[key.replace("_", "-")] = where
    meta = dict(cfg.meta)
    for key in meta:
        sources[f"meta.{key}"] = where
    for name, value in vars(args).items():
        if name.startswith(META_DEST) and value is not None:
            meta[name.removeprefix(META_DEST)] = value
            sources[f"meta.{name.removeprefix(META_DEST)}"] = f"--{name[len(META_DEST) :]}".replace(
                "_", "-"
            )
    flags = {"select": args.select, "ignore": args.ignore, "fail-on": args.fail_on}
    for key, value in flags.items():
        if value:
            sources[key] = f"--{key}" + (
                f" (added to {where})" if key == "ignore" and cfg.ignore else ""
            )
    if args.exit_zero:
        sources["exit-zero"] = "--exit-zero"
    return Settings(
        paths=paths,
        config=cfg,
        select=_split(args.select),
        ignore=_split(args.ignore) or [],
        fail_on=Severity(args.fail_on) if args.fail_on else cfg.fail_on or Severity.WARNING,
        exit_zero=args.exit_zero or bool(cfg.exit_zero),
        meta=meta,
        fmt=args.fmt,
        output=args.output,
        jobs=args.jobs or os.cpu_count() or 1,
        verbose=args.verbose,
        quiet=args.quiet,
        statistics=args.statistics,
        exclude=[*cfg.exclude, *(_split(args.exclude) or [])],
        sources=sources,
    )


def run_label(path: Path, root: Path) -> str:
    """A run's name: its path relative to the checked path (``exp-a/version_0``), or, for the
    checked path itself, its folder's name."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(path.name)
    if rel.parts:
        return rel.as_posix()
    if path.name and path.name not in (".", ".."):
        return path.name
    return Path(os.path.abspath(path)).name or str(path)


def baseline_entries(result: Any) -> list[dict[str, Any]]:
    """The baseline entries of a run's findings (those already suppressed by a baseline too: a
    new baseline covers what the old one did)."""
    kept = [
        (fp, f.code, f.where) for f, fp in zip(result.findings, result.fingerprints, strict=False)
    ]
    old = [(i.fingerprint, i.code, i.where) for i in result.suppressed if i.by == "baseline"]
    return [
        {"fingerprint": fp, "code": code, "run": result.name, "where": where}
        for fp, code, where in kept + old
    ]


def show_settings(s: Settings, rules: list[Any], out: Any) -> None:
    """What ``--show-settings`` prints: each setting, its value, where it came from."""
    from runlint.check.config import limits_of
    from runlint.report.escape import text as shown

    config = s.config.path
    found = s.sources.get("config") or (
        "found from the working directory" if config else "no runlint.toml, no [tool.runlint]"
    )
    rows: list[tuple[str, str, str]] = [
        ("config", str(config) if config else "(none)", found),
        (
            "select",
            ", ".join(s.select or s.config.select or ["ALL"]),
            s.sources.get("select", "default"),
        ),
        (
            "ignore",
            ", ".join([*s.config.ignore, *s.ignore]) or "(none)",
            s.sources.get("ignore", "default"),
        ),
        ("fail-on", s.fail_on.value, s.sources.get("fail-on", "default")),
        ("exit-zero", str(s.exit_zero).lower(), s.sources.get("exit-zero", "default")),
    ]
    limits = limits_of(s.config)
    for key in ("max-rows", "max-bytes", "max-meta-bytes", "max-files"):
        rows.append(
            (key, f"{getattr(limits, key.replace('-', '_')):,}", s.sources.get(key, "default"))
        )
    for key, value in sorted(s.meta.items()):
        rows.append((key.replace("_", "-"), repr(value), s.sources.get(f"meta.{key}", "default")))
    rows.append(
        ("rules", f"{len(rules)}: " + " ".join(r.code for r in rules), "select/ignore above")
    )
    for rule in rules:
        table = s.config.rules.get(rule.code)
        if table:
            options = ", ".join(f"{k.replace('_', '-')} = {v!r}" for k, v in table.items())
            rows.append((rule.code, options, f"{config} [tool.runlint.{rule.code}]"))
    width = max(len(r[0]) for r in rows)
    values = min(max(len(r[1]) for r in rows), 40)
    for key, value, source in rows:
        out.write(shown(f"{key:<{width}}  {value:<{values}}  # {source}") + "\n")


def run_check(args: argparse.Namespace) -> int:
    """Check the runs under ``args.paths``, print the report, return the exit code."""
    from runlint.check import engine, live
    from runlint.report import Report, make_reporter

    try:
        s = settings(args)
        catalog = engine.discover()
        rules = engine.configure(catalog, s.config, s.select, s.ignore)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    if args.show_settings:
        show_settings(s, rules, sys.stdout)
        return 0
    if getattr(args, "watch", False):  # follow runs being written: runlint.check.watch
        from runlint.check.watch import watch_command

        local = [p for p in s.paths if isinstance(p, Path)]
        if len(local) != len(s.paths):
            raise CommandError("--watch follows local folders only, not URLs")
        return watch_command(
            local,
            rules,
            fmt=s.fmt,
            output=s.output,
            fail_on=s.fail_on,
            exit_zero=s.exit_zero,
            meta=s.meta,
            problems=catalog.errors,
        )

    from runlint.check.suppress import BaselineError, Suppressor, read_baseline, write_baseline
    from runlint.check.tally import Tally
    from runlint.cli.progress import Progress
    from runlint.run.find import Found, Passed

    if s.statistics and s.fmt not in ("text", "json"):
        raise CommandError(f"--statistics works with --format text or json, not {s.fmt}")
    try:
        baseline = read_baseline(args.baseline) if args.baseline is not None else frozenset()
    except BaselineError as exc:
        raise CommandError(str(exc)) from None
    suppressor = Suppressor(s.config.per_run_ignores, bool(s.config.allow_run_ignores), baseline)
    graph = {rule.code: tuple(rule.explained_by) for rule in rules}
    limits = limits_of(s.config).with_roots(p for p in s.paths if isinstance(p, Path))
    checker = engine.Checker(
        rules,
        meta=s.meta,
        curve=s.fmt == "text" and not s.statistics,
        limits=limits,
        run_ignore_files=bool(s.config.allow_run_ignores),
    )
    try:
        target = s.output.open("w", encoding="utf-8") if s.output else nullcontext(sys.stdout)
    except OSError as exc:
        raise CommandError(f"{s.output}: cannot write ({exc.strerror or exc})") from None
    progress = Progress.on(sys.stderr, enabled=not s.quiet)
    on_terminal = s.output is None and _isatty(sys.stdout)
    results: list[engine.RunResult] = []  # kept only for a report that needs them at the end
    tally = Tally()
    entries: list[dict[str, Any]] = []  # --add-baseline's
    passed: list[tuple[str, str]] = []
    walk_errors: collections.deque[engine.RunResult] = collections.deque()
    labels: dict[str, str] = {}

    def runs() -> Iterator[Path | RemoteRun]:
        """The runs as the walk finds them: the check starts on the first before it ends."""
        for event in engine.expand_paths(s.paths, s.exclude):
            if isinstance(event, Found):
                if isinstance(event.path, RemoteRun):  # named relative to the URL checked
                    url, root = event.path.url, str(event.root).rstrip("/")
                    inside = url[len(root) :].lstrip("/") if url.startswith(root) else ""
                    labels[url] = inside or event.path.name or url
                else:
                    labels[str(event.path)] = run_label(event.path, Path(event.root))
                if progress:
                    progress.found += 1
                    progress.update()
                yield event.path
            elif isinstance(event, Passed):
                passed.append((str(event.path), event.reason))
            else:
                walk_errors.append(
                    engine.RunResult(path=str(event.path), status="error", error=event.error)
                )
        if progress:
            progress.walking = False

    with target as out:
        reporter = make_reporter(
            s.fmt,
            out,
            s.verbose,
            quiet=s.quiet,
            statistics=s.statistics,
            err=sys.stderr if s.output is None else None,
        )

        def report(result: engine.RunResult, checked: bool = False) -> None:
            if progress and on_terminal:
                progress.clear()
            reporter.add(result)
            tally.add(result)
            if args.add_baseline is not None:
                entries.extend(baseline_entries(result))
            if not reporter.streams:  # a streaming report has written it: memory stays one run's
                result.curve = result.loss_span = None
                results.append(result)
            if progress:
                progress.done += checked
                progress.update(force=on_terminal)

        for result in checker.check(runs(), s.jobs):
            while walk_errors:
                report(walk_errors.popleft())
            result.label = labels.pop(result.path, "")
            live.annotate(result)  # what a live check knew when (runlint.check.live)
            result.findings, result.fingerprints, result.suppressed = suppressor.apply(
                result.findings, result.name, result.run_ignores
            )
            result.regroup(graph)
            report(result, checked=True)
        while walk_errors:
            report(walk_errors.popleft())
        if progress:
            progress.clear()
        if checker.fallback:
            print_warning(checker.fallback)
        code = tally.exit_code(s.fail_on, s.exit_zero)
        if catalog.errors:
            code = 2
        if args.add_baseline is not None:
            code = 2 if code == 2 else 0
            try:
                written = write_baseline(args.add_baseline, entries)
            except OSError as exc:
                raise CommandError(
                    f"{args.add_baseline}: cannot write ({exc.strerror or exc})"
                ) from None
            if not s.quiet:
                print_note(f"wrote {written} findings to the baseline {args.add_baseline}")
        report_ = Report(
            results=results,
            rules=[type(r) for r in rules],
            fail_on=s.fail_on,
            exit_code=code,
            problems=list(catalog.errors),
            verbose=s.verbose,
            passed=passed,
            tally=tally,
        )
        reporter.finish(report_)
    return code


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


CHECK = Command(
    "check",
    "Check training runs against the CS231n heuristics.",
    """Check training runs against the CS231n heuristics.

Exit codes: 0 no finding at or above --fail-on (default: warning); 1 findings at or above
it; 2 usage, configuration or unreadable-input error, or a crashing rule (the other runs
are still checked and reported).""",
    check_flags,
    run_check,
)
