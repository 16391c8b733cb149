"""``runlint check --watch PATH...``: follow runs while they are written, print each finding once.

Every ``interval`` seconds the watcher lists the runs under the paths (new runs are picked up
as they appear) and, for each run whose files changed since it last looked, checks it: with
the live catalog (the rules that do not judge how a run ended, ``Rule.whole_run``) while the
run is being written, with the whole catalog once it has closed. It compares each check with
the last one of that run (``runlint.check.live.LiveState``) and prints only what changed: a
finding when it first appears (or its severity changes), a withdrawal when a later check no
longer reports it, and a line when a run closes. It exits when every run it watches has closed
(``meta.json`` says ``complete``, or its writer is gone: the process that held the run's lock
on this host has exited), or on Ctrl-C, with ``runlint check``'s exit code for what it knows
then.

Polling, not a file-watching library: a run changes only when it flushes (every 1000 steps or
10 s, and at each epoch, by default), so one listing of each run directory per second costs
nothing next to the check it triggers; polling behaves the same on every file system (inotify
and its kin miss changes on NFS and other network file systems, where training logs often
live, and do not exist for object stores); and ``runlint check`` stays free of another
dependency that it would import at start.

Formats: ``text`` (a finding as ``runlint check`` prints it, with the step it appeared at),
``json`` (one JSON object per line: ``run``, ``new``, ``changed``, ``withdrawn``, ``closed``
and a last ``summary`` event) and ``github`` (one workflow-command annotation per finding).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TextIO

from runlint.check.live import LiveEvent, LiveState, live_rules
from runlint.check.rule import Finding, Severity
from runlint.check.tally import Tally
from runlint.schema.layout import (
    FINDINGS_FILE,
    META_FILE,
    PARTS_DIR,
    lock_name,
)

__all__ = ["FORMATS", "watch", "watch_command"]

#: The formats ``--watch`` prints (the others describe a finished check).
FORMATS = ("text", "json", "github")


@dataclass
class _Watched:
    """One run being followed."""

    path: Path
    state: LiveState = field(default_factory=LiveState)
    signature: tuple[Any, ...] | None = None
    closed: bool = False
    status: str = "incomplete"
    error: str | None = None
    rule_errors: list[str] = field(default_factory=list)
    steps: int | None = None

    @property
    def findings(self) -> list[Finding]:
        return self.state.findings


def watch(
    paths: Sequence[Path],
    rules: Sequence[Any],
    *,
    fmt: str = "text",
    out: TextIO | None = None,
    fail_on: Severity = Severity.WARNING,
    exit_zero: bool = False,
    meta: dict[str, Any] | None = None,
    interval: float = 1.0,
    until: Callable[[], bool] | None = None,
) -> int:
    """Watch the runs under ``paths`` until each has closed (or Ctrl-C, or ``until()`` is
    true); print what changes in format ``fmt``; return the exit code of ``runlint check``."""
    from runlint.check import engine

    if fmt not in FORMATS:
        raise ValueError(f"--watch prints {', '.join(FORMATS)}, not {fmt}")
    printer = _PRINTERS[fmt](out or sys.stdout)
    full = engine.Checker(list(rules), meta=dict(meta or {}))
    live = engine.Checker(live_rules(rules), meta=dict(meta or {}))
    runs: dict[Path, _Watched] = {}
    waiting: set[Path] = set()
    try:
        while True:
            for path in _runs_under(paths, waiting, printer):
                if path not in runs:
                    runs[path] = _Watched(path)
            for run in runs.values():
                if not run.closed:
                    _look(run, full, live, printer)
            if runs and all(r.closed for r in runs.values()):
                break
            if until is not None and until():
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        printer.interrupted()
    code = Tally.of(runs.values()).exit_code(fail_on, exit_zero)
    printer.summary(list(runs.values()), code)
    return code


def watch_command(
    paths: Sequence[Path],
    rules: Sequence[Any],
    *,
    fmt: str,
    output: Path | None,
    fail_on: Severity,
    exit_zero: bool,
    meta: dict[str, Any],
    problems: Sequence[str] = (),
) -> int:
    """``runlint check --watch``: ``watch`` with the command's settings (a format that
    ``--watch`` cannot stream, or an output file that cannot be written, is a usage error)."""
    from runlint.cli.flags import CommandError

    if fmt not in FORMATS:
        shown = ", ".join(FORMATS)
        raise CommandError(f"--watch prints {shown}; --format {fmt} needs a finished check")
    try:
        target: Any = (
            output.open("w", encoding="utf-8") if output else contextlib.nullcontext(sys.stdout)
        )
    except OSError as exc:
        raise CommandError(f"{output}: cannot write ({exc.strerror or exc})") from None
    with target as out:
        for problem in problems:  # rule modules that failed to load: said once, exit 2
            out.write(f"error: {problem}\n")
        code = watch(
            paths, rules, fmt=fmt, out=out, fail_on=fail_on, exit_zero=exit_zero, meta=meta
        )
    return 2 if problems else code


def _runs_under(paths: Sequence[Path], waiting: set[Path], printer: _Printer) -> Iterable[Path]:
    from runlint.run import find_runs

    for path in paths:
        if not path.exists():
            if path not in waiting:
                waiting.add(path)
                printer.waiting(path)
            continue
        with contextlib.suppress(OSError):
            yield from find_runs(path)


def _look(run: _Watched, full: Any, live: Any, printer: _Printer) -> None:
    """Check ``run`` if its files changed since the last look."""
    signature = _signature(run.path)
    doc = _meta_doc(run.path)
    closed = _closed(run.path, doc)  # also when nothing changed: a killed writer changes nothing
    if signature == run.signature and not closed:
        return
    first = run.signature is None
    run.signature = signature
    if first:
        printer.run(run.path, "closed" if closed else "being written")
    result = (full if closed else live).check_path(run.path)
    raw = doc.get("meta")
    meta: dict[str, Any] = raw if isinstance(raw, dict) else {}
    steps = meta.get("steps")
    run.steps = steps if isinstance(steps, int) else _last_step(result)
    if result.status == "error":
        if closed:  # an unreadable closed run is the check's answer; a live one may be mid-write
            run.status, run.error, run.closed = "error", result.error, True
            printer.unreadable(run.path, result.error or "")
        return
    run.status = result.status
    run.rule_errors = [f"{e.code} {e.name}: {e.error}" for e in result.rule_errors]
    events = run.state.update(
        result.findings, run.steps or 0, time.time(), result.ran, final=closed
    )
    for event in events:
        printer.event(run.path, event)
    if closed:
        run.closed = True
        for problem in run.rule_errors:
            printer.unreadable(run.path, f"rule {problem}")
        printer.closed(run, meta.get("stopped") if isinstance(meta.get("stopped"), dict) else None)


def _last_step(result: Any) -> int | None:
    span = getattr(result, "loss_span", None)
    return int(span[2]) if span else None


def _signature(root: Path) -> tuple[Any, ...]:
    """What changes when a run flushes: its files' names, sizes and times (the live check's
    own ``findings.jsonl``, lock files and temporary files left out)."""
    out: list[tuple[str, int, int]] = []
    for folder in (root, root / PARTS_DIR):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if name.startswith(".") or name == FINDINGS_FILE:
                continue
            with contextlib.suppress(OSError):
                if entry.is_file():
                    st = entry.stat()
                    out.append((f"{folder.name}/{name}", st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))


def _meta_doc(root: Path) -> dict[str, Any]:
    try:
        doc = json.loads((root / META_FILE).read_bytes())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _closed(root: Path, doc: dict[str, Any]) -> bool:
    """Whether a run is done being written: complete, not a runlint run directory (an
    imported log: checked once), or its writer is gone."""
    if doc.get("complete") is True:
        return True
    if not (root / META_FILE).is_file() and not (root / PARTS_DIR).is_dir():
        return not any(root.glob("*-r*.parquet"))  # imported logs
    return _writer_gone(root)


def _writer_gone(root: Path) -> bool:
    """Whether rank 0's writer of ``root`` has exited: its lock file names a process of this
    host that no longer exists (a run of another host is never taken for dead)."""
    path = root / lock_name(0)
    for candidate in (path, path.with_name(path.name + ".pid")):
        try:
            text = candidate.read_bytes().lstrip(b"\0 ").decode("utf-8", "replace")
        except OSError:
            continue
        try:
            owner = json.loads(text.splitlines()[0]) if text.strip() else {}
        except (ValueError, IndexError):
            return False
        pid, host = owner.get("pid"), owner.get("host")
        if not isinstance(pid, int) or host != socket.gethostname() or os.name == "nt":
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False
    return True  # no lock at all: written before runs had one, and not complete: killed


def _counts(runs: Sequence[_Watched]) -> dict[str, int]:
    return Tally.of(runs).by_severity


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def summary_line(runs: Sequence[_Watched]) -> str:
    """``N findings (E errors, W warnings, I info) in R runs; C closed`` (what is known)."""
    c = _counts(runs)
    n = sum(c.values())
    closed = sum(r.closed for r in runs)
    line = (
        f"{n} finding{_s(n)} ({c['error']} error{_s(c['error'])}, {c['warning']} "
        f"warning{_s(c['warning'])}, {c['info']} info) in {len(runs)} run{_s(len(runs))}; "
        f"{closed} closed"
    )
    unreadable = sum(r.status == "error" for r in runs)
    if unreadable:
        line += f"; {unreadable} unreadable run{_s(unreadable)}"
    return line


# -- printers ------------------------------------------------------------------------------------


class _Printer:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def _write(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def waiting(self, path: Path) -> None: ...
    def run(self, path: Path, how: str) -> None: ...
    def event(self, path: Path, event: LiveEvent) -> None: ...
    def unreadable(self, path: Path, error: str) -> None: ...
    def closed(self, run: _Watched, stopped: dict[str, Any] | None) -> None: ...
    def interrupted(self) -> None: ...
    def summary(self, runs: list[_Watched], code: int) -> None: ...


class _Text(_Printer):
    STYLES: ClassVar[dict[str, str]] = {"error": "bold red", "warning": "yellow", "info": "cyan"}

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console

        super().__init__(out)
        self.console = Console(file=out, highlight=False, soft_wrap=True, emoji=False)

    def _print(self, *parts: Any, style: str | None = None) -> None:
        from rich.text import Text

        self.console.print(Text.assemble(*parts), style=style)
        with contextlib.suppress(Exception):
            self.out.flush()

    def waiting(self, path: Path) -> None:
        self._print(f"waiting for {_shown(path)} to appear", style="dim")

    def run(self, path: Path, how: str) -> None:
        self._print(("watching ", "dim"), (_shown(path), "bold"), (f" ({how})", "dim"))

    def event(self, path: Path, event: LiveEvent) -> None:
        f = event.finding
        name = path.name
        if event.kind == "withdrawn":
            self._print(
                (f.code, "bold"),
                " withdrawn ",
                name,
                (f" ({f.name})", "dim"),
                f": no longer found at step {event.step} (first seen at step {event.first_step})",
                style="dim",
            )
            return
        was = f", was {event.previous.value}" if event.previous is not None else ""
        self._print(
            (f.code, "bold"),
            " ",
            (f.severity.value, self.STYLES[f.severity.value]),
            " ",
            name,
            (f" ({f.name})", "dim"),
            (f" at step {event.step}{was}", "dim"),
        )
        self._print("  " + f.message)
        self._print("  ", ("fix:", "bold green"), " ", f.fix)
        extra = [f"where: {f.where}"] if f.where else []
        if f.steps is not None:
            extra.append(f"steps: {f.steps[0]}–{f.steps[1]}")
        if extra:
            self._print("  " + "  ".join(extra), style="dim")

    def unreadable(self, path: Path, error: str) -> None:
        self._print(("error", "bold red"), ": ", error or _shown(path))

    def closed(self, run: _Watched, stopped: dict[str, Any] | None) -> None:
        n = len(run.findings)
        steps = f" after {run.steps} steps" if run.steps is not None else ""
        text = f"{_shown(run.path)} closed{steps}: {n} finding{_s(n)}"
        if stopped:
            text += f"; the live check stopped it at step {stopped.get('step')}"
            text += f" ({', '.join(map(str, stopped.get('codes') or []))})"
        self._print(text, style="dim")

    def interrupted(self) -> None:
        self._print("interrupted: what is known so far", style="dim")

    def summary(self, runs: list[_Watched], code: int) -> None:
        c = _counts(runs)
        style = "bold red" if c["error"] else ("yellow" if c["warning"] else "green")
        self._print(summary_line(runs), style=style)


class _Json(_Printer):
    def _emit(self, doc: dict[str, Any]) -> None:
        from runlint.report import jsonable

        self._write(json.dumps(jsonable(doc), allow_nan=False, ensure_ascii=False))

    def waiting(self, path: Path) -> None:
        self._emit({"event": "waiting", "path": str(path)})

    def run(self, path: Path, how: str) -> None:
        self._emit({"event": "run", "run": str(path), "closed": how == "closed"})

    def event(self, path: Path, event: LiveEvent) -> None:
        doc = event.to_dict()
        doc["run"] = str(path)
        self._emit(doc)

    def unreadable(self, path: Path, error: str) -> None:
        self._emit({"event": "error", "run": str(path), "error": error})

    def closed(self, run: _Watched, stopped: dict[str, Any] | None) -> None:
        self._emit(
            {
                "event": "closed",
                "run": str(run.path),
                "status": run.status,
                "steps": run.steps,
                "findings": len(run.findings),
                "stopped": stopped,
            }
        )

    def interrupted(self) -> None:
        self._emit({"event": "interrupted"})

    def summary(self, runs: list[_Watched], code: int) -> None:
        self._emit(
            {
                "event": "summary",
                "findings": sum(len(r.findings) for r in runs),
                "by_severity": _counts(runs),
                "runs": len(runs),
                "runs_closed": sum(r.closed for r in runs),
                "runs_unreadable": sum(r.status == "error" for r in runs),
                "exit_code": code,
            }
        )


class _Github(_Printer):
    LEVELS: ClassVar[dict[str, str]] = {"error": "error", "warning": "warning", "info": "notice"}

    def event(self, path: Path, event: LiveEvent) -> None:
        from runlint.report.github import command

        if event.kind == "withdrawn":
            return  # an annotation cannot be taken back
        f = event.finding
        meta = path / META_FILE
        self._write(
            command(
                self.LEVELS[f.severity.value],
                f"{path.name}: {f.message} (at step {event.step})\nfix: {f.fix}",
                file=_shown(meta if meta.is_file() else path),
                title=f"{f.code} {f.name}",
            )
        )

    def unreadable(self, path: Path, error: str) -> None:
        from runlint.report.github import command

        self._write(command("error", error, file=_shown(path), title="runlint"))

    def summary(self, runs: list[_Watched], code: int) -> None:
        self._write(f"runlint: {summary_line(runs)}")


_PRINTERS: dict[str, type[_Printer]] = {"text": _Text, "json": _Json, "github": _Github}


def _shown(path: Path) -> str:
    try:
        rel = os.path.relpath(path.resolve(), Path.cwd().resolve())
    except ValueError:
        return path.as_posix()
    return Path(rel).as_posix() if not rel.startswith("..") else path.as_posix()
