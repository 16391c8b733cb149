"""The rule engine: discover rules, select and configure them, check runs, report everything.

Rules are found by importing every module of the ``runlint.rules`` package (no registry); a
module that fails to import, or a rule that crashes on a run, becomes an error entry and never
hides the other rules. A rule whose data is missing is skipped with the reason.
"""

from __future__ import annotations

import collections
import dataclasses
import importlib
import inspect
import math
import multiprocessing
import os
import pkgutil
import re
import signal
import traceback
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from runlint.check.config import Config, ConfigError, kebab, parse_severity, snake
from runlint.check.diagnose import Diagnosis, diagnose
from runlint.check.rule import Finding, NotJudged, Rule, RuleDefinitionError, Severity
from runlint.check.suppress import RUN_IGNORE_FILE, Suppressed, parse_run_ignores
from runlint.check.tally import Tally
from runlint.extras import MissingExtra
from runlint.hints import suggest
from runlint.run import NothingLogged, Run, RunError, load_run
from runlint.run import limits as read_limits
from runlint.run.find import Found, Passed, Unreadable, walk
from runlint.run.remote import RemoteError, RemoteRun, find_remote, is_url, local_copy
from runlint.schema import META, AnyOf, Need
from runlint.schema.layout import META_FILE

__all__ = [
    "Catalog",
    "Checker",
    "RuleError",
    "RunResult",
    "Skipped",
    "build_options",
    "configure",
    "discover",
    "exit_code",
    "expand_paths",
    "select_rules",
]

RULES_PACKAGE = "runlint.rules"
_Text = TypeVar("_Text", str, str | None)
CODE_PREFIX_RE = re.compile(r"^RL\d{0,3}$")


@dataclass(frozen=True)
class Catalog:
    """Every rule class found, sorted by code, and the modules that could not be loaded."""

    rules: tuple[type[Rule], ...]
    errors: tuple[str, ...] = ()

    def get(self, code_or_name: str) -> type[Rule] | None:
        key = code_or_name.strip()
        for rule in self.rules:
            if rule.code == key.upper() or rule.name == key.lower():
                return rule
        return None

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.rules]


@dataclass
class Skipped:
    """A rule that did not run on a run, and why."""

    code: str
    name: str
    reasons: list[str]


@dataclass
class RuleError:
    """A rule (or rule module) that crashed; ``error`` names the exception and where."""

    code: str
    name: str
    error: str


@dataclass
class RunResult:
    """Everything the engine learned about one run (picklable, small)."""

    path: str
    status: str = "ok"  # ok | incomplete | error
    error: str | None = None
    source: str = ""
    findings: list[Finding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    rule_errors: list[RuleError] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # readable but damaged input, one line each
    curve: list[float] | None = None  # the EMA-smoothed loss, downsampled (for sparklines)
    loss_span: LossSpan | None = None  # the logged loss: first, last, peak, at their steps
    #: per finding, the index of the finding it is a consequence of (None: a cause)
    causes: list[int | None] = field(default_factory=list)
    #: the run's diagnosis: its causes, each with its consequences (``runlint.check.diagnose``)
    diagnoses: list[Diagnosis] = field(default_factory=list)

    #: the run's name: its path relative to the checked path (``exp-a/version_0``)
    label: str = ""
    #: per finding, its stable fingerprint (``runlint.check.suppress``), once suppression ran
    fingerprints: list[str] = field(default_factory=list)
    #: findings left out by per-run ignores, the run's .runlintignore or a baseline
    suppressed: list[Suppressed] = field(default_factory=list)
    #: the selectors of the run's .runlintignore (read when the config honours it)
    run_ignores: list[str] = field(default_factory=list)
    #: what only -v shows (a .runlintignore that is not honoured)
    info: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.label or Path(self.path).name or self.path

    def regroup(self, graph: Mapping[str, Sequence[str]]) -> None:
        """Group the findings into causes and consequences again (after some were removed)."""
        self.causes, self.diagnoses = diagnose(self.findings, graph)

    def cause_of(self, index: int) -> Finding | None:
        """The finding that finding ``index`` is a consequence of, if any."""
        parent = self.causes[index] if index < len(self.causes) else None
        return self.findings[parent] if parent is not None else None


@dataclass(frozen=True)
class LossSpan:
    """The logged loss (not smoothed): its first and last finite values and its peak."""

    first: float
    first_step: int
    last: float
    last_step: int
    peak: float
    peak_step: int
    points: int  # logged points


# -- discovery ---------------------------------------------------------------------------------


def import_rule_modules(package: str) -> tuple[list[types.ModuleType], tuple[str, ...]]:
    """Import every module of ``package`` not starting with ``_``: the modules, and one error
    line per module that failed (a broken rule names its file)."""
    try:
        pkg = importlib.import_module(package)
    except Exception as exc:
        return [], (f"{package}: cannot import ({_exc_line(exc)})",)
    modules: list[types.ModuleType] = []
    errors: list[str] = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module_name = f"{package}.{info.name}"
        try:
            modules.append(importlib.import_module(module_name))
        except RuleDefinitionError as exc:
            errors.append(str(exc))
        except Exception as exc:
            errors.append(f"{module_name}: cannot import ({_exc_line(exc)}{_frame(exc)})")
    return modules, tuple(errors)


@lru_cache(maxsize=4)
def discover(package: str = RULES_PACKAGE) -> Catalog:
    """Collect the rule classes of every module of ``package`` not starting with ``_``."""
    modules, imported = import_rule_modules(package)
    found: dict[str, type[Rule]] = {}
    errors = list(imported)
    for module in modules:
        module_name = module.__name__
        for rule in _rule_classes(module):
            other = found.get(rule.code)
            if other is not None and other is not rule:
                errors.append(
                    f"{module_name}: {rule.__name__} reuses code {rule.code} "
                    f"of {other.__module__}.{other.__name__}"
                )
                continue
            found[rule.code] = rule
    return Catalog(tuple(found[c] for c in sorted(found)), tuple(errors))


def _rule_classes(module: types.ModuleType) -> Iterator[type[Rule]]:
    for obj in vars(module).values():
        if (
            inspect.isclass(obj)
            and issubclass(obj, Rule)
            and obj is not Rule
            and obj.__module__ == module.__name__
            and not obj.abstract
        ):
            yield obj


def rule_summary(rule: type[Rule]) -> str:
    """The first line of a rule's docstring."""
    doc = inspect.getdoc(rule) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def rule_doc(rule: type[Rule]) -> str:
    """A rule's docstring, dedented."""
    return inspect.getdoc(rule) or ""


# -- selection ---------------------------------------------------------------------------------


def _specificity(rule: type[Rule], token: str) -> int:
    """How specifically ``token`` names ``rule`` (-1: not at all; ALL 0, RL4 3, RL401 5)."""
    if token == "ALL":
        return 0
    upper = token.upper()
    if CODE_PREFIX_RE.match(upper) and rule.code.startswith(upper):
        return len(upper)
    if token.lower() == rule.name:
        return 6
    return -1


def check_selectors(tokens: Sequence[str], catalog: Catalog, where: str) -> None:
    """Raise ``ConfigError`` for a selector that selects no rule of the catalog: not ALL, not a
    rule name, and not a code or code prefix some rule has (``RL999``, ``RL9``: a typo that
    would run no rule and pass CI silently is a usage error, with a "did you mean")."""
    names = [r.name for r in catalog.rules]
    for token in tokens:
        upper = token.upper()
        if token == "ALL" or token.lower() in names:
            continue
        if CODE_PREFIX_RE.match(upper) and any(c.startswith(upper) for c in catalog.codes):
            continue
        if isinstance(catalog, Catalog) and _selects_a_sweep_rule(token):
            continue  # one [tool.runlint] serves both: runlint sweep judges this selector
        hint = suggest(token, [*catalog.codes, *names, "ALL"])
        why = ""
        if CODE_PREFIX_RE.match(upper):
            why = " (no rule's code starts with it)"
            if not hint and catalog.codes:
                hint = (
                    f"; did you mean one of {catalog.codes[0]}..{catalog.codes[-1]}? "
                    "('runlint rules' lists them)"
                )
        raise ConfigError(f"{where}: unknown rule selector {token!r}{why}{hint}")


def _selects_a_sweep_rule(token: str) -> bool:
    """Whether ``token`` names a rule of ``runlint sweep``'s catalog (an RL8xx code, prefix or
    name)."""
    from runlint.sweep.rule import discover as discover_sweep

    sweeps = discover_sweep()
    upper = token.upper()
    return token.lower() in (r.name for r in sweeps.rules) or (
        CODE_PREFIX_RE.match(upper) is not None and any(c.startswith(upper) for c in sweeps.codes)
    )


def select_rules(
    catalog: Catalog, select: Sequence[str] | None, ignore: Sequence[str] = ()
) -> list[type[Rule]]:
    """Rules chosen by ``select`` (default ALL) minus ``ignore``; the more specific token wins."""
    chosen = []
    for rule in catalog.rules:
        picked = max((_specificity(rule, t) for t in (select or ["ALL"])), default=-1)
        dropped = max((_specificity(rule, t) for t in ignore), default=-1)
        if picked >= 0 and picked > dropped:
            chosen.append(rule)
    return chosen


# -- options -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionField:
    """One option of a rule: its name (snake_case), type annotation, default and help."""

    name: str
    type: Any
    default: Any
    help: str


def option_fields(rule: type[Rule]) -> list[OptionField]:
    """The fields of a rule's ``Options`` dataclass."""
    options = rule.Options
    if not dataclasses.is_dataclass(options):
        return []
    try:
        hints = typing.get_type_hints(options)
    except Exception:
        hints = {}
    out = []
    for f in dataclasses.fields(options):
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        kind = hints.get(f.name, type(default) if default is not None else Any)
        out.append(OptionField(f.name, kind, default, str(f.metadata.get("help", ""))))
    return out


def type_name(tp: Any) -> str:
    """A readable name of a type annotation."""
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")


def build_options(rule: type[Rule], table: dict[str, Any], where: str) -> Any:
    """The rule's ``Options`` with the table's values, each checked against its field type."""
    fields = {f.name: (f.type, f.default) for f in option_fields(rule)}
    values = {}
    for key, value in table.items():
        name = snake(key)
        if name not in fields:
            choices = [kebab(f) for f in fields] + ["severity"]
            raise ConfigError(
                f"{where}: {rule.code} has no option {kebab(key)!r}" + suggest(kebab(key), choices)
            )
        values[name] = coerce(value, fields[name][0], f"{where}: {rule.code}.{kebab(name)}")
    try:
        return rule.Options(**values)
    except Exception as exc:  # a dataclass __post_init__ may validate further
        raise ConfigError(f"{where}: {rule.code} options rejected ({_exc_line(exc)})") from None


def coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` converted to annotation ``tp`` (TOML lists → tuples, ints → floats), or raise."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object:
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where}: expected {type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"{where}: expected one of {list(args)}, got {value!r}")
    if isinstance(tp, type) and issubclass(tp, Severity):
        return parse_severity(value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin in (tuple, list, Sequence, typing.Sequence) or tp in (tuple, list):
        if isinstance(value, list | tuple):
            if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
                if len(value) != len(args):
                    raise ConfigError(f"{where}: expected {len(args)} items, got {value!r}")
                return tuple(coerce(v, a, where) for v, a in zip(value, args, strict=True))
            item = args[0] if args else Any
            items = [coerce(v, item, where) for v in value]
            return items if origin is list or tp is list else tuple(items)
    elif origin is dict or tp is dict:
        if isinstance(value, dict):
            key_t, val_t = args if len(args) == 2 else (Any, Any)
            return {coerce(k, key_t, where): coerce(v, val_t, where) for k, v in value.items()}
    elif isinstance(tp, type):
        if isinstance(value, tp):
            return value
    else:
        return value
    raise ConfigError(f"{where}: expected {type_name(tp)}, got {value!r} ({type(value).__name__})")


def configure(
    catalog: Catalog,
    config: Config,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] = (),
) -> list[Rule]:
    """Rule instances for a check: selection (command line over config) and per-rule tables.

    ``select`` from the command line replaces the config's; ``ignore`` adds to it. Every rule
    table is validated, selected or not.
    """
    where = config.where
    check_selectors(config.select or [], catalog, where)
    check_selectors(config.ignore, catalog, where)
    check_selectors(select or [], catalog, "--select")
    check_selectors(ignore, catalog, "--ignore")
    for glob, tokens in config.per_run_ignores.items():
        check_selectors(tokens, catalog, f"{where}: per-run-ignores {glob!r}")
    built: dict[str, Rule] = {}
    for code, table in config.rules.items():
        rule = catalog.get(code)
        if rule is None or rule.code != code:
            raise ConfigError(
                f"{where}: unknown rule [tool.runlint.{code}]" + suggest(code, catalog.codes)
            )
        table = dict(table)
        severity = table.pop("severity", None)
        sev = (
            parse_severity(severity, f"{where}: {code}.severity") if severity is not None else None
        )
        built[code] = rule(build_options(rule, table, where), sev)
    chosen = select_rules(catalog, select or config.select, [*config.ignore, *ignore])
    return [built.get(rule.code) or rule() for rule in chosen]


# -- checking ----------------------------------------------------------------------------------


def expand_paths(
    paths: Iterable[Path | str], exclude: Sequence[str] = ()
) -> Iterator[Found | Passed | Unreadable]:
    """Each run below each path as it is found (``runlint.run.find.walk``), the folders passed
    over and those that could not be listed; ``Unreadable`` for a path that holds no run.

    A URL (``s3://bucket/prefix``, any fsspec URL: ``runlint.run.remote``) is listed once and
    yields a ``Found`` of a ``RemoteRun`` for each run found in it (``exclude`` is for local
    walks).
    """
    for path in paths:
        if is_url(path):
            url = str(path)
            try:
                remote = find_remote(url)
            except (RemoteError, MissingExtra) as exc:
                yield Unreadable(url, str(exc), url)
                continue
            yield from (Found(run, url) for run in remote)
            if not remote:
                yield Unreadable(url, f"{url}: no runs found", url)
            continue
        path = Path(path)
        if not os.path.lexists(path):
            yield Unreadable(path, f"{path}: no such file or directory", path)
            continue
        found = False
        for event in walk(path, exclude=exclude):
            found = found or isinstance(event, Found)
            yield event
        if not found:
            yield Unreadable(path, f"{path}: no runs found", path)


def runs_or_errors(
    paths: Iterable[Path | str],
) -> Iterator[tuple[Path | RemoteRun | str, str | None]]:
    """``expand_paths`` as ``(run, None)`` for each run found and ``(path, error)`` for each
    path or folder that could not be read (what was passed over is left out)."""
    for event in expand_paths(paths):
        if isinstance(event, Found):
            yield event.path, None
        elif isinstance(event, Unreadable):
            yield event.path, event.error


@dataclass
class Checker:
    """Checks runs with configured rules; ``jobs > 1`` uses a process pool (results in order)."""

    rules: list[Rule]
    meta: dict[str, Any] = field(default_factory=dict)
    curve: bool = False
    #: what a run may take to read (``runlint.run.limits``); its ``roots`` are the checked trees
    limits: read_limits.Limits = read_limits.DEFAULT
    #: why ``check`` ran one run at a time although asked for more (no process pool here)
    fallback: str | None = None
    #: read the runs' .runlintignore files (the config's allow-run-ignores)
    run_ignore_files: bool = False

    @property
    def graph(self) -> dict[str, tuple[str, ...]]:
        """Rule code → the codes of rules whose problem can cause its own (``explained_by``)."""
        return {rule.code: tuple(rule.explained_by) for rule in self.rules}

    def check_path(self, path: Path | RemoteRun) -> RunResult:
        """Load one run and check it with every rule; never raises for bad input or bad rules.

        A ``RemoteRun`` is fetched into a temporary folder, checked there, reported under its
        URL, and the folder deleted.
        """
        if isinstance(path, RemoteRun):
            return self._check_remote(path)
        with read_limits.using(self.limits):
            return self._check_path(path)

    def _check_path(self, path: Path) -> RunResult:
        result = RunResult(path=str(path))
        try:
            run = load_run(path)
        except NothingLogged as exc:  # readable, just empty so far: no rule has anything to judge
            result.status = "incomplete"
            result.notes.append(_line(str(exc)))
            return result
        except RunError as exc:
            result.status, result.error = "error", _line(str(exc))
            return result
        except Exception as exc:  # an importer or reader bug: still one line, never a traceback
            result.status, result.error = "error", f"{path}: cannot read ({_exc_line(exc)})"
            return result
        if run.source == "runlint" and not (Path(path) / META_FILE).is_file():
            result.notes.append(
                f"{path}: no {META_FILE} (metadata lost: rules that need it are skipped; "
                "--num-classes/--batch-size supply it)"
            )
        self._read_run_ignores(Path(path), result)
        return self.check_run(run, result)

    def check_run(self, run: Run, result: RunResult | None = None) -> RunResult:
        """Check a loaded ``run`` with every rule (``result``: one to fill, else a new one);
        never raises for bad input or bad rules."""
        if result is None:
            result = RunResult(path=str(run.path))
        path = result.path
        result.source = run.source
        if not run.complete:
            result.status = "incomplete"
        self._apply_meta(run)
        unreadable = vet_metadata(run)
        if unreadable:
            result.notes.append(
                _line(
                    f"{path}: unreadable metadata: {'; '.join(unreadable)} (rules that need it "
                    "are skipped)"
                )
            )
        for rule in self.rules:
            self._run_rule(rule, run, result)
        result.regroup(self.graph)
        if self.curve and result.status != "error":
            try:
                result.curve, result.loss_span = loss_curve(run)
            except RunError as exc:
                result.status, result.error = "error", _line(str(exc))
            except Exception:  # a sparkline is decoration: never fail a check over it
                result.curve = None
        return result

    def _check_remote(self, remote: RemoteRun) -> RunResult:
        try:
            with local_copy(remote) as local:
                result = self.check_path(local)
        except (RemoteError, MissingExtra) as exc:
            return RunResult(path=remote.url, status="error", error=str(exc))
        result.path = _renamed(result.path, local, remote.url)
        result.error = _renamed(result.error, local, remote.url)
        result.notes = [_renamed(n, local, remote.url) for n in result.notes]
        for f in result.findings:
            f.run = _renamed(f.run, local, remote.url)
        for e in result.rule_errors:
            e.error = _renamed(e.error, local, remote.url)
        return result

    def check(self, paths: Iterable[Path | RemoteRun], jobs: int = 1) -> Iterator[RunResult]:
        """Results in the order of ``paths``, each yielded as soon as it (and those before it)
        are ready; ``paths`` is consumed as the check goes, so a long walk streams.

        With ``jobs > 1`` runs are checked in a process pool with at most ``2 × jobs`` runs in
        flight, so memory stays bounded by the pool whatever the number of runs. A worker that
        dies (the OOM killer, a segfault in a native library) breaks the pool: the runs that
        were in flight are checked again, each alone in a process of its own, and the one whose
        process dies again is reported as an error naming the signal; the check goes on.
        """
        todo = iter(paths)
        if jobs > 1:
            yield from self._check_in_pool(todo, jobs)
        for path in todo:  # one at a time (asked for, or no process pool could run)
            yield self.check_path(path)

    def _check_in_pool(self, todo: Iterator[Path | RemoteRun], jobs: int) -> Iterator[RunResult]:
        """``check`` with a pool; returns when ``todo`` is done, or early (``fallback`` says
        why) when no process can be started here, leaving the rest of ``todo`` unchecked."""
        try:
            pool = self._pool(jobs)
        except Exception as exc:  # no semaphores, no /dev/shm, ...
            self._no_pool(jobs, exc)
            return
        pending: collections.deque[tuple[Path | RemoteRun, Future[RunResult]]] = collections.deque()
        starting = True  # until a submit fails for another reason than a broken pool
        try:
            while True:
                while starting and len(pending) < 2 * jobs:
                    queued = next(todo, None)
                    if queued is None:
                        break
                    try:
                        pending.append((queued, pool.submit(_check_in_worker, queued)))
                    except BrokenProcessPool:
                        pending.append((queued, _broken()))
                        break
                    except Exception as exc:  # the pool could not start a process
                        self._no_pool(jobs, exc)
                        pending.append((queued, _broken()))
                        starting = False
                if not pending:
                    return
                path, future = pending[0]
                try:
                    result = future.result()
                except BrokenProcessPool:
                    lost = list(pending)
                    pending.clear()
                    pool.shutdown(wait=True, cancel_futures=True)
                    for path, future in lost:  # finished before the break, or checked alone
                        done = (
                            future.done() and not future.cancelled() and future.exception() is None
                        )
                        yield future.result() if done else self._check_alone(path)
                    if not starting:
                        return
                    pool = self._pool(jobs)
                    continue
                pending.popleft()
                yield result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _no_pool(self, jobs: int, exc: BaseException) -> None:
        self.fallback = (
            f"--jobs {jobs}: no worker process can start here ({_exc_line(exc)}); "
            "checking one run at a time"
        )

    def _pool(self, jobs: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=jobs, mp_context=_context(), initializer=_init_worker, initargs=(self,)
        )

    def _check_alone(self, path: Path | RemoteRun) -> RunResult:
        """Check one run in a process of its own; a process that dies is an error result."""
        receive, send = _context().Pipe(duplex=False)
        process = _context().Process(target=_check_and_send, args=(self, path, send), daemon=True)
        try:
            process.start()
        except Exception as exc:  # no process can start: check it here
            self._no_pool(2, exc)
            receive.close()
            send.close()
            return self.check_path(path)
        send.close()
        try:
            result: RunResult = receive.recv()
        except EOFError:  # the process died before it sent a result
            process.join()
            return RunResult(
                path=str(path), status="error", error=f"{path}: {_death(process.exitcode)}"
            )
        finally:
            receive.close()
        process.join()
        return result

    def _read_run_ignores(self, path: Path, result: RunResult) -> None:
        """The selectors of the run's ``.runlintignore``, when the config honours it."""
        file = path / RUN_IGNORE_FILE if path.is_dir() else None
        if file is None or not os.path.lexists(file):
            return
        if not self.run_ignore_files:
            result.info.append(
                f"{RUN_IGNORE_FILE} not honoured: set allow-run-ignores = true in the config"
            )
            return
        try:
            text = read_limits.read_meta_bytes(file).decode("utf-8", errors="replace")
        except (OSError, ValueError) as exc:
            result.notes.append(_line(f"{path}: {RUN_IGNORE_FILE} cannot be read ({exc})"))
            return
        result.run_ignores, problems = parse_run_ignores(text)
        if problems:
            result.notes.append(_line(f"{path}: {RUN_IGNORE_FILE}: {'; '.join(problems)}"))

    def _apply_meta(self, run: Run) -> None:
        """Fill metadata the run lacks, or only inferred, from config / command line."""
        for key, value in self.meta.items():
            if run.meta.get(key) is None or not run.setup.given(key):
                run.set_meta(key, value, "configured")

    def _run_rule(self, rule: Rule, run: Run, result: RunResult) -> None:
        if result.status == "error":
            return
        try:
            missing = [n for n in rule.needs if not run.has(n)]
            if missing:
                reasons = [describe_missing(run, m) for m in missing]
                result.skipped.append(Skipped(rule.code, rule.name, reasons))
                return
            elsewhere = rule.applies(run)
            if elsewhere is not None:
                result.skipped.append(Skipped(rule.code, rule.name, [elsewhere]))
                return
            found = list(rule.check(run))
            for item in found:
                if not isinstance(item, Finding):
                    raise TypeError(f"check() yielded {type(item).__name__}, not a Finding")
        except NotJudged as exc:
            result.skipped.append(Skipped(rule.code, rule.name, [_line(str(exc))]))
            return
        except RunError as exc:
            result.status, result.error = "error", _line(str(exc))
            return
        except Exception as exc:
            result.rule_errors.append(
                RuleError(rule.code, rule.name, f"{_exc_line(exc)}{_frame(exc)}")
            )
            return
        result.ran.append(rule.code)
        result.findings.extend(found)


_WORKER: Checker | None = None


def _context() -> Any:
    """Worker processes fork where the platform can (no re-import of rules and pandas)."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def _init_worker(checker: Checker) -> None:
    global _WORKER
    _WORKER = checker


def _renamed(text: _Text, local: Path, url: str) -> _Text:
    """``text`` with the temporary copy's path of a remote run replaced by the run's URL."""
    if text is None:
        return text
    return text.replace(str(local), url)


def _check_in_worker(path: Path | RemoteRun) -> RunResult:
    assert _WORKER is not None
    return _WORKER.check_path(path)


def _check_and_send(checker: Checker, path: Path, send: Any) -> None:
    send.send(checker.check_path(path))
    send.close()


def _broken() -> Future[RunResult]:
    future: Future[RunResult] = Future()
    future.set_exception(BrokenProcessPool("the pool broke"))
    return future


def _death(exitcode: int | None) -> str:
    """Why the process checking a run ended without a result, in words."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        why = " (out of memory: the OOM killer?)" if -exitcode == signal.SIGKILL else ""
        return f"the process checking this run was killed by {name}{why}; no result"
    return f"the process checking this run exited with code {exitcode} before reporting"


#: Metadata lists of named items (``runlint.schema.meta``) whose names the rules use as keys.
_NAMED_LISTS = ("params", "modules")


def vet_metadata(run: Run) -> list[str]:
    """What of the run's metadata cannot be read, one phrase per key (``meta.params is
    unreadable (item 2 is a string, not an object)``), after leaving it out of the run.

    The schema's own reading (``Run.setup``) leaves out a known key whose value has the wrong
    shape and names it in ``Setup.problems``; the rules then skip what needs it. On top of it, a
    list of named items (``params``, ``modules``) must name each item once with a non-empty
    string, since rules index by those names; a key that fails that, or metadata the schema
    cannot read at all, is taken out of the run here, so no rule ever sees it.
    """
    try:
        problems = list(run.setup.problems)
    except Exception as exc:  # the reader itself failed: no metadata key can be trusted
        known = [k for k in META if k in run.meta]
        run.meta = {k: v for k, v in run.meta.items() if k not in META}
        return [f"meta ({', '.join(known) or 'all keys'}) is unreadable ({_exc_line(exc)})"]
    dropped = []
    for key in _NAMED_LISTS:
        raw = run.meta.get(key)
        if not isinstance(raw, list) or any(p.startswith(f"meta.{key} ") for p in problems):
            continue
        names = [item.get("name") if isinstance(item, dict) else None for item in raw]
        bad = next((i for i, n in enumerate(names) if not isinstance(n, str) or not n), None)
        if bad is not None:
            problems.append(f"meta.{key} is unreadable (item {bad} has no name)")
        elif len(set(names)) != len(names):
            twice = next(n for n in names if names.count(n) > 1)
            problems.append(f"meta.{key} is unreadable (two items are named {twice!r})")
        else:
            continue
        dropped.append(key)
    if dropped:
        run.meta = {k: v for k, v in run.meta.items() if k not in dropped}
    return problems


def describe_missing(run: Run, need: Need) -> str:
    """Why a requirement is missing: absent, all NaN, or metadata not recorded (or unreadable)."""
    if isinstance(need, AnyOf):
        return (
            "none of "
            + " or ".join(" + ".join(map(str, option)) for option in need.options)
            + " recorded"
        )
    if need.table == "meta":
        problem = next((p for p in run.setup.problems if p.startswith(f"meta.{need.column} ")), "")
        if problem:
            return problem
        flag = META[need.column].flag
        hint = f" (set {kebab(need.column)} in [tool.runlint] or pass --{kebab(need.column)})"
        return f"{need} not recorded" + (hint if flag else "")
    spec = need.spec
    if spec is not None and spec.absent:
        return spec.absent
    frame = getattr(run, need.table)
    if frame is None or not hasattr(frame, "columns"):
        return f"no {need.table} table"
    if frame.empty:
        return f"{need.table} table is empty"
    if need.column and run.column(need.table, need.column) is not None:
        return f"{need} is NaN at every row"
    return f"no {need}"


def loss_curve(run: Run, points: int = 40) -> tuple[list[float] | None, LossSpan | None]:
    """The loss smoothed by an EMA and averaged into ``points`` bins (NaN marks non-finite),
    over the steps that logged it (a loss logged every 10th step is not NaN in between), and
    the logged values a header quotes (first, last and peak, at their steps)."""
    import numpy as np
    import pandas as pd

    steps = run.steps
    if steps.empty or "loss" not in steps.columns:
        return None, None
    values = steps["loss"].to_numpy(dtype=float, na_value=np.nan)
    logged = run.logged("steps", "loss")  # a step without a loss is not a NaN loss
    values, at = values[logged], steps.index.to_numpy()[logged]
    if values.size == 0:
        return None, None
    finite = np.isfinite(values)
    alpha = max(0.01, min(0.3, 20.0 / values.size))
    smooth = pd.Series(np.where(finite, values, np.nan)).ewm(alpha=alpha, adjust=False)
    smoothed = smooth.mean().to_numpy(dtype=float, copy=True)
    smoothed[~finite] = np.nan
    bins = np.array_split(smoothed, min(points, values.size))
    curve = [float(b.mean()) if np.isfinite(b).all() else math.nan for b in bins]
    if finite[0] and len(curve) > 1:  # the line starts where the log starts, not at a bin mean
        curve[0] = float(values[0])
    span = None
    if finite.any():
        idx = np.flatnonzero(finite)
        peak = idx[int(np.argmax(values[idx]))]
        span = LossSpan(
            float(values[idx[0]]),
            int(at[idx[0]]),
            float(values[idx[-1]]),
            int(at[idx[-1]]),
            float(values[peak]),
            int(at[peak]),
            int(values.size),
        )
    return curve, span


def exit_code(results: Iterable[RunResult], fail_on: Severity, exit_zero: bool) -> int:
    """2 for any unreadable run or rule error; else 1 for findings at or above ``fail_on``."""
    return Tally.of(results).exit_code(fail_on, exit_zero)


def _line(text: str) -> str:
    return " ".join(text.split())


def _exc_line(exc: BaseException) -> str:
    message = _line(str(exc))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _frame(exc: BaseException) -> str:
    """`` at file.py:LINE`` of the innermost frame (the rule's own code, usually)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" at {Path(last.filename).name}:{last.lineno}"
