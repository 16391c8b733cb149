"""Live checking: the rule catalog, run on a run while it trains, at each flush.

``runlint.record(..., check=True)`` (or ``check=LiveCheck(...)``) starts a checker next to the
training process. After each flush is on disk the recorder sends it one short notice ("the
flush of step N is committed"); the checker reads the committed flushes from the run directory,
exactly as ``runlint check`` reads a live run, runs every selected rule that does not judge how
a run ended (``Rule.whole_run``), and compares the findings with those of its last check:

- a finding not seen before is **new**; one whose severity changed is **changed**; one that a
  later check no longer reports is **withdrawn** (the later data contradicts it), so a finding
  is reported once, not at every flush (a warning once withdrawn is not reported again until
  the check of the closed run: ``LiveState``);
- each event is appended to ``findings.jsonl`` in the run directory (``FINDINGS_FILE``: the
  event, the step the check saw, the wall time and the finding), so that ``runlint check``
  later tells what was known when (``annotate``);
- the events go back to the training process, which hands them to ``on_finding`` at the next
  step boundary (default: one ``logging`` line per event on the ``runlint.live`` logger) and,
  with a stop policy (``stop_on``), sets ``rec.should_stop``.

The checker is a separate process by default (``mode="process"``): a thread would compete with
a CPU training loop for the GIL for every pandas and rule step it takes, a process competes
only for a core, and runs at a lower priority (``nice`` +10). It checks at most as often as it
can while busy at most ``duty`` of its time (a long run's check takes longer), coalesces
notices that arrive while it checks (it always checks the latest flush), and exits when the
recorder closes (after a last check of the final flush) or when the training process dies (its
stdin closes). ``mode="thread"`` checks on a thread of the training process instead (no second
interpreter, and the cost of the checks lands on the training process; ``bench/overhead.py
--live`` measures both).

This module does not import torch; the recorder's side is ``runlint.recorder.live``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import queue
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from runlint.check.rule import Finding, Severity
from runlint.schema.layout import FINDINGS_FILE, META_FILE

__all__ = [
    "LOGGER",
    "CheckOutcome",
    "History",
    "LiveCheck",
    "LiveEvent",
    "LiveState",
    "RunChecker",
    "StopPolicy",
    "annotate",
    "finding_key",
    "live_rules",
    "log_event",
    "main",
    "read_history",
]

#: The logger the default ``on_finding`` writes to (one line per event).
LOGGER = "runlint.live"
_CODE_PREFIX_RE = re.compile(r"^RL\d{0,3}$", re.I)
_MODES = ("process", "thread")


# -- the stop policy ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StopPolicy:
    """When a live check asks training to stop: a finding at or above ``severity``, or a
    warning or error of one of ``codes`` (codes, prefixes such as ``RL1``, or rule names).
    ``StopPolicy.parse`` reads ``stop_on``; the empty policy never stops."""

    severity: Severity | None = None
    codes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: Any) -> StopPolicy:
        """``None``/``False``: never; ``"error"`` (or a ``Severity``): at that severity or above;
        a code, prefix or name, or a collection of them: a warning or error of one of them.
        Raises ``ValueError`` for anything else."""
        if value is None or value is False:
            return cls()
        if isinstance(value, StopPolicy):
            return value
        if isinstance(value, Severity):
            return cls(severity=value)
        if isinstance(value, str):
            if value.lower() in {s.value for s in Severity}:
                return cls(severity=Severity(value.lower()))
            value = [value]
        if isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
            codes = []
            for item in value:
                if not isinstance(item, str) or not item.strip():
                    raise ValueError(f"stop_on: expected rule codes or names, got {item!r}")
                token = item.strip()
                codes.append(token.upper() if _CODE_PREFIX_RE.match(token) else token.lower())
            if codes:
                return cls(codes=tuple(dict.fromkeys(codes)))
        raise ValueError(
            "stop_on must be a severity ('error', 'warning', 'info'), rule codes or names "
            f"(a string or a collection), or None; got {value!r}"
        )

    def __bool__(self) -> bool:
        return self.severity is not None or bool(self.codes)

    def matches(self, finding: Finding) -> bool:
        if self.severity is not None and finding.severity.rank >= self.severity.rank:
            return True
        if not self.codes or finding.severity.rank < Severity.WARNING.rank:
            return False
        return any(
            finding.code.startswith(c) if _CODE_PREFIX_RE.match(c) else finding.name == c
            for c in self.codes
        )

    def __str__(self) -> str:
        if not self:
            return "never"
        parts = [self.severity.value] if self.severity is not None else []
        return ", ".join([*parts, *self.codes])


# -- what the training process is told --------------------------------------------------------


@dataclass(frozen=True)
class LiveEvent:
    """What a live check learnt about one finding (what ``on_finding`` receives).

    ``kind``: ``"new"`` (first seen), ``"changed"`` (its severity changed; ``previous`` was the
    old one) or ``"withdrawn"`` (a later check no longer reports it: ``finding`` is the last
    report). ``step``: the optimizer steps the check saw; ``first_step``: the check that first
    reported the finding; ``time``: wall time of the check (``time.time()``).
    """

    kind: str
    finding: Finding
    step: int
    first_step: int
    time: float
    previous: Severity | None = None
    #: identifies the finding from one check to the next (``finding_key``)
    key: str = ""

    def line(self) -> str:
        """The event in one line: ``runlint: RL103 error at step 120 (non-finite-loss) in
        run-042: <message>`` (``fix:`` after the message of a new finding)."""
        f = self.finding
        run = Path(f.run).name if f.run else ""
        where = f" [{f.where}]" if f.where else ""
        head = f"runlint: {f.code} {f.severity.value} at step {self.step} ({f.name}){where}"
        head += f" in {run}" if run else ""
        if self.kind == "withdrawn":
            return f"{head}: withdrawn (first seen at step {self.first_step}; no longer found)"
        if self.kind == "changed" and self.previous is not None:
            head += f", was {self.previous.value}"
        return f"{head}: {f.message} — fix: {f.fix}" if f.fix else f"{head}: {f.message}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event": self.kind,
            "step": self.step,
            "first_step": self.first_step,
            "time": self.time,
            "key": self.key,
            "finding": _finding_dict(self.finding),
        }
        if self.previous is not None:
            out["previous"] = self.previous.value
        return out

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> LiveEvent:
        finding = _finding_from(doc["finding"])
        previous = doc.get("previous")
        return cls(
            kind=str(doc["event"]),
            finding=finding,
            step=int(doc["step"]),
            first_step=int(doc.get("first_step", doc["step"])),
            time=float(doc.get("time", 0.0)),
            previous=Severity(previous) if previous else None,
            key=str(doc.get("key") or finding_key(finding, 0)),
        )


def log_event(event: LiveEvent) -> None:
    """The default ``on_finding``: one line on the ``runlint.live`` logger, at the finding's
    level (``error`` → ERROR, ``warning`` → WARNING, ``info`` and withdrawals → INFO), so
    Python's default handler shows warnings and errors and nothing else."""
    level = {"error": logging.ERROR, "warning": logging.WARNING}.get(
        event.finding.severity.value, logging.INFO
    )
    if event.kind == "withdrawn":
        level = logging.INFO
    logging.getLogger(LOGGER).log(level, "%s", event.line())


@dataclass
class LiveCheck:
    """How ``runlint.record`` checks the run while it trains (its ``check=`` argument).

    ``stop_on``: ``None`` (never stop, the default), ``"error"`` (or another severity: a finding
    at or above it), or rule codes, prefixes or names (a warning or error of one of them).
    ``on_finding``: called with each ``LiveEvent`` on the training thread at a step boundary
    (default ``log_event``); it must not raise (an exception is one warning, then the default
    takes over). ``select``/``ignore``: rules as for ``runlint check`` (added to the
    ``[tool.runlint]`` found by walking up from the log directory, or ``config``). ``mode``:
    ``"process"`` (default) or ``"thread"``. ``close_timeout``: how long closing the recorder
    waits for the check of the last flush. ``duty``: the largest fraction of the time the
    checker spends checking (it waits between checks so that a slow check never hogs a core).
    """

    stop_on: Any = None
    on_finding: Callable[[LiveEvent], object] | None = None
    select: Sequence[str] | None = None
    ignore: Sequence[str] = ()
    config: str | os.PathLike[str] | None = None
    mode: str = "process"
    close_timeout: float = 10.0
    duty: float = 0.5
    policy: StopPolicy = field(init=False, repr=False, default_factory=StopPolicy)

    def __post_init__(self) -> None:
        self.policy = StopPolicy.parse(self.stop_on)
        if self.mode not in _MODES:
            raise ValueError(f"LiveCheck.mode must be one of {_MODES}, not {self.mode!r}")
        if not 0 < self.duty <= 1:
            raise ValueError(f"LiveCheck.duty must be in (0, 1], not {self.duty!r}")
        if isinstance(self.select, str):
            self.select = [self.select]
        if isinstance(self.ignore, str):
            self.ignore = [self.ignore]

    @classmethod
    def of(cls, check: Any, stop_on: Any = None, on_finding: Any = None) -> LiveCheck | None:
        """The ``LiveCheck`` of ``record``'s ``check``, ``stop_on`` and ``on_finding``
        arguments (``None``: no live check). ``stop_on`` or ``on_finding`` alone turn it on."""
        if check is None:
            check = stop_on is not None or on_finding is not None
        if check is False:
            if stop_on is not None or on_finding is not None:
                raise ValueError("check=False contradicts stop_on/on_finding: drop one")
            return None
        spec = check if isinstance(check, LiveCheck) else cls() if check is True else None
        if spec is None:
            raise TypeError(f"check must be True, False or a runlint.LiveCheck, not {check!r}")
        changes: dict[str, Any] = {}
        if stop_on is not None:
            changes["stop_on"] = stop_on
        if on_finding is not None:
            changes["on_finding"] = on_finding
        return dataclasses.replace(spec, **changes) if changes else spec

    def argv(self) -> list[str]:
        """The checker's command-line arguments for these settings (process mode)."""
        out = ["--duty", repr(self.duty)]
        for token in self.select or ():
            out += ["--select", token]
        for token in self.ignore:
            out += ["--ignore", token]
        if self.config is not None:
            out += ["--config", os.fspath(self.config)]
        return out


# -- comparing checks --------------------------------------------------------------------------


def finding_key(finding: Finding, index: int) -> str:
    """What identifies a finding from one check to the next: its rule, where it points, and
    its rank among the findings of the same rule and place (the numbers of its message change
    with every flush; ``RL401|fc1.weight|0``)."""
    return f"{finding.code}|{finding.where or ''}|{index}"


def keyed(findings: Iterable[Finding]) -> Iterator[tuple[str, Finding]]:
    """Each finding with its ``finding_key``, in order."""
    seen: dict[tuple[str, str], int] = {}
    for f in findings:
        place = (f.code, f.where or "")
        n = seen.get(place, 0)
        seen[place] = n + 1
        yield finding_key(f, n), f


@dataclass
class _Known:
    finding: Finding
    first_step: int
    missed: int = 0  # consecutive checks that did not report it


#: Consecutive checks that must no longer report a finding before it is withdrawn: a finding
#: at the edge of its threshold (a spike one flush's smoothing hides) is not withdrawn and then
#: reported again a few flushes later. Replaying drawn set 4000 flush by flush, 3 checks left
#: 19 flaps (2 on healthy runs), 5 left 9 and 6 leave 6 (none on a healthy run), with the same
#: time to detect; the price is a finding that no longer holds staying up 6 flushes.
WITHDRAW_AFTER = 6

#: Consecutive checks that must report a warning or an info before it is reported: one seen at
#: a single flush (a short curve's shape at the edge of a threshold) is noise, and reporting it
#: would mean withdrawing it. Errors (NaN, a dead network) are reported at once: the stop policy
#: must not wait, and they do not come and go.
CONFIRM_AFTER = 2


class LiveState:
    """The findings of the last check, and the events that turn one check into the next.

    A warning or an info is reported once ``confirm_after`` consecutive checks report it (an
    error at once; everything at once in the ``final`` check of a run that has closed), as first
    seen at the first of them. A finding is withdrawn when ``withdraw_after`` consecutive checks
    no longer report it (at once in the final check); one that comes back meanwhile was never
    withdrawn and is not reported again. A warning or an info once withdrawn is not reported
    again while the run trains (it sits at the edge of its threshold: reporting it anew would
    be a flap); the final check of the closed run, like ``runlint check``, reports it if it
    holds then. An error that comes back is reported: a stop must not wait."""

    def __init__(
        self, withdraw_after: int = WITHDRAW_AFTER, confirm_after: int = CONFIRM_AFTER
    ) -> None:
        self.current: dict[str, _Known] = {}
        self.withdraw_after = max(1, withdraw_after)
        self.confirm_after = max(1, confirm_after)
        #: findings seen but not yet confirmed: their code, the step of their first check and
        #: how many checks in a row reported them
        self.pending: dict[str, tuple[str, int, int]] = {}
        #: keys of the findings withdrawn so far
        self.withdrawn: set[str] = set()

    def update(
        self,
        findings: Iterable[Finding],
        step: int,
        now: float,
        judged: Iterable[str] | None = None,
        *,
        final: bool = False,
    ) -> list[LiveEvent]:
        """Compare a check's findings with the last ones: new, changed and withdrawn events.

        ``judged``: the codes of the rules that ran in this check (default: all). A finding of a
        rule that did not run this time (skipped, crashed) is kept, not withdrawn: no news.
        ``final``: the run has closed; what this check does not report is withdrawn now.
        """
        events: list[LiveEvent] = []
        fresh: dict[str, _Known] = {}
        pending: dict[str, tuple[str, int, int]] = {}
        for key, f in keyed(findings):
            known = self.current.get(key)
            if known is None:
                at_once = final or f.severity is Severity.ERROR  # neither waits nor is held
                if key in self.withdrawn and not at_once:
                    continue  # came back: held until the run closes, not reported anew
                _, first, seen = self.pending.get(key, (f.code, step, 0))
                seen += 1
                if seen < self.confirm_after and not at_once:
                    pending[key] = (f.code, first, seen)
                    continue
                fresh[key] = _Known(f, first)
                events.append(LiveEvent("new", f, step, first, now, key=key))
            else:
                fresh[key] = _Known(f, known.first_step)
                if known.finding.severity != f.severity:
                    was = known.finding.severity
                    events.append(LiveEvent("changed", f, step, known.first_step, now, was, key))
        ran = set(judged) if judged is not None else None
        for key, known in self.current.items():
            if key in fresh:
                continue
            if ran is not None and known.finding.code not in ran:
                fresh[key] = known
                continue
            if not final and known.missed + 1 < self.withdraw_after:
                fresh[key] = _Known(known.finding, known.first_step, known.missed + 1)
                continue
            events.append(
                LiveEvent("withdrawn", known.finding, step, known.first_step, now, key=key)
            )
            self.withdrawn.add(key)
        for key, entry in self.pending.items():  # a rule that did not run: no news either way
            if key not in pending and ran is not None and entry[0] not in ran:
                pending[key] = entry
        self.current = fresh
        self.pending = pending
        return events

    def replay(self, events: Iterable[LiveEvent]) -> None:
        """Take up the state that ``events`` (a ``findings.jsonl``) left (a resumed run)."""
        for event in events:
            key = event.key
            if event.kind == "withdrawn":
                self.current.pop(key, None)
                self.withdrawn.add(key)
            else:
                self.current[key] = _Known(event.finding, event.first_step)

    @property
    def findings(self) -> list[Finding]:
        return [k.finding for k in self.current.values()]


# -- findings.jsonl ------------------------------------------------------------------------------


def _finding_dict(f: Finding) -> dict[str, Any]:
    from runlint.report import jsonable

    evidence = f.evidence
    return {
        "code": f.code,
        "name": f.name,
        "severity": f.severity.value,
        "message": f.message,
        "fix": f.fix,
        "run": f.run,
        "steps": jsonable(list(f.steps)) if f.steps is not None else None,
        "where": f.where,
        "evidence": jsonable(evidence),
    }


def _finding_from(doc: Mapping[str, Any]) -> Finding:
    steps = doc.get("steps")
    span = (int(steps[0]), int(steps[1])) if isinstance(steps, list) and len(steps) == 2 else None
    return Finding(
        code=str(doc["code"]),
        name=str(doc.get("name", "")),
        severity=Severity(doc["severity"]),
        message=str(doc.get("message", "")),
        fix=str(doc.get("fix", "")),
        run=str(doc.get("run", "")),
        steps=span,
        where=doc.get("where"),
        evidence=dict(doc.get("evidence") or {}),
    )


def read_events(root: str | os.PathLike[str]) -> list[LiveEvent]:
    """The events of a run's ``findings.jsonl``, in order (none when it has no file; a line
    that cannot be read, such as the last one of a writer killed mid-line, is skipped)."""
    path = Path(root) / FINDINGS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            out.append(LiveEvent.from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def append_events(root: Path, events: Sequence[LiveEvent]) -> None:
    """Append ``events`` to ``root/findings.jsonl`` in one write (``O_APPEND``)."""
    if not events:
        return
    text = "".join(
        json.dumps(e.to_dict(), allow_nan=False, ensure_ascii=False) + "\n" for e in events
    )
    fd = os.open(root / FINDINGS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


@dataclass
class History:
    """What the live check of a run learnt, from its ``findings.jsonl`` and ``meta.json``."""

    #: key → (first step seen, the check's step when withdrawn or None, last report)
    seen: dict[str, tuple[int, int | None, Finding]]
    stopped: dict[str, Any] | None
    steps: int | None  # steps of the run

    @property
    def empty(self) -> bool:
        return not self.seen and not self.stopped

    def note(self) -> str:
        """One line: the stop, when each finding was first seen, what was withdrawn."""
        parts = []
        stopped = self.stopped or {}
        if stopped:
            codes = ",".join(map(str, stopped.get("codes") or [])) or "?"
            parts.append(
                f"stopped training at step {stopped.get('step', '?')} ({codes}, stop_on="
                f"{stopped.get('policy', '?')})"
            )
        first = [(s, f) for s, w, f in self.seen.values() if w is None]
        if first:
            shown = ", ".join(
                f"{f.code} at step {s}{self._share(s)}" for s, f in sorted(first, key=_by_step)
            )
            parts.append(f"first seen: {shown}")
        gone = [(s, w, f) for s, w, f in self.seen.values() if w is not None]
        if gone:
            shown = ", ".join(f"{f.code} (steps {s}–{w})" for s, w, f in sorted(gone))
            parts.append(f"withdrawn: {shown}")
        return "live check: " + "; ".join(parts)

    def _share(self, step: int) -> str:
        if not self.steps:
            return ""
        return f" ({100 * step / self.steps:.0f}%)"


def _by_step(item: tuple[int, Finding]) -> tuple[int, str]:
    return item[0], item[1].code


def read_history(root: str | os.PathLike[str]) -> History:
    """The live history of run directory ``root`` (empty when it was not checked live)."""
    seen: dict[str, tuple[int, int | None, Finding]] = {}
    for e in read_events(root):
        if e.kind == "withdrawn":
            if e.key in seen:
                first, _, f = seen[e.key]
                seen[e.key] = (first, e.step, f)
        elif e.kind == "new" or e.key not in seen or seen[e.key][1] is not None:
            seen[e.key] = (e.first_step, None, e.finding)
        else:
            seen[e.key] = (seen[e.key][0], None, e.finding)
    stopped = steps = None
    with contextlib.suppress(OSError, ValueError, AttributeError):
        meta = json.loads((Path(root) / META_FILE).read_bytes()).get("meta") or {}
        stopped = meta.get("stopped") if isinstance(meta.get("stopped"), dict) else None
        steps = meta.get("steps") if isinstance(meta.get("steps"), int) else None
    return History(seen, stopped, steps)


def annotate(result: Any) -> None:
    """``runlint check``'s hook: a run that was checked live gets one note saying what the live
    check knew when (and whether it stopped training), and each of its findings that the live
    check had reported gets ``evidence["live_first_step"]``. Never raises."""
    try:
        path = Path(result.path)
        if not (path / FINDINGS_FILE).is_file() and not (path / META_FILE).is_file():
            return
        history = read_history(path)
        if history.empty:
            return
        for key, f in keyed(result.findings):
            known = history.seen.get(key)
            if known is not None and known[1] is None:
                f.evidence["live_first_step"] = known[0]
        result.notes.append(history.note())
    except Exception:  # decoration: never fail a check over it
        return


# -- checking a run directory ----------------------------------------------------------------


def live_rules(rules: Iterable[Any]) -> list[Any]:
    """The rules a live check runs: those that do not judge how the run ended."""
    return [r for r in rules if not getattr(type(r), "whole_run", False)]


@dataclass
class CheckOutcome:
    """One live check of a run: its events and what it cost."""

    step: int
    events: list[LiveEvent]
    findings: int
    cpu: float  # seconds of CPU time (this thread's, in the checker)
    wall: float
    status: str = "ok"
    error: str | None = None
    rule_errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "check",
            "step": self.step,
            "events": [e.to_dict() for e in self.events],
            "findings": self.findings,
            "cpu": self.cpu,
            "wall": self.wall,
            "status": self.status,
            "error": self.error,
            "rule_errors": self.rule_errors,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> CheckOutcome:
        return cls(
            step=int(doc["step"]),
            events=[LiveEvent.from_dict(e) for e in doc.get("events", [])],
            findings=int(doc.get("findings", 0)),
            cpu=float(doc.get("cpu", 0.0)),
            wall=float(doc.get("wall", 0.0)),
            status=str(doc.get("status", "ok")),
            error=doc.get("error"),
            rule_errors=list(doc.get("rule_errors", [])),
        )


class RunChecker:
    """Checks one run directory with the live catalog each time it is asked, compares with the
    last check and appends the events to ``findings.jsonl`` (``record=False``: it does not).

    The catalog is the one ``runlint check`` would run on the directory (``[tool.runlint]``
    found by walking up from it, or ``config``; plus ``select``/``ignore``) without the
    ``whole_run`` rules. Raises ``ConfigError`` for a bad configuration.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        select: Sequence[str] | None = None,
        ignore: Sequence[str] = (),
        config: str | os.PathLike[str] | None = None,
        *,
        record: bool = True,
        rules: Sequence[Any] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        from runlint.check import engine
        from runlint.check.config import ConfigError, find_config, load_config

        self.root = Path(root)
        if rules is None:
            path = Path(config) if config is not None else find_config(self.root)
            cfg = load_config(path)
            catalog = engine.discover()
            if catalog.errors:
                raise ConfigError("; ".join(catalog.errors))
            rules = engine.configure(catalog, cfg, list(select) if select else None, ignore)
            meta = {**cfg.meta, **(meta or {})}
        self.rules = live_rules(rules)
        self.checker = engine.Checker(self.rules, meta=dict(meta or {}))
        self.record = record
        self.state = LiveState()
        if record:
            self.state.replay(read_events(self.root))  # a resumed run: go on from its state

    def check(self, step: int, *, final: bool = False) -> CheckOutcome:
        """Check the run as it is on disk now; ``step``: the optimizer steps it holds;
        ``final``: the recorder has closed (the last check: withdrawals are not deferred)."""
        c0, t0 = time.thread_time(), time.perf_counter()
        result = self.checker.check_path(self.root)
        now = time.time()
        outcome = CheckOutcome(step, [], 0, 0.0, 0.0, status=result.status, error=result.error)
        if result.status != "error":  # an unreadable moment (a part being compacted) is no news
            outcome.events = self.state.update(result.findings, step, now, result.ran, final=final)
            outcome.findings = len(result.findings)
            outcome.rule_errors = [f"{e.code} {e.name}: {e.error}" for e in result.rule_errors]
            if self.record:
                append_events(self.root, outcome.events)
        outcome.cpu = time.thread_time() - c0
        outcome.wall = time.perf_counter() - t0
        return outcome


# -- the checker process -------------------------------------------------------------------------


def _send(out: IO[str], doc: Mapping[str, Any]) -> None:
    out.write(json.dumps(doc, allow_nan=False, ensure_ascii=False) + "\n")
    out.flush()


def serve(
    checker: RunChecker,
    requests: queue.Queue[dict[str, Any] | None],
    emit: Callable[[dict[str, Any]], None],
    duty: float = 0.5,
) -> None:
    """The checker's loop: take the latest check request (notices that came in meanwhile are
    coalesced), check, ``emit`` the outcome, wait so that checking takes at most ``duty`` of
    the time; a ``close`` request (or ``None``: the training process is gone) ends it after the
    check of the last notice."""
    pending: dict[str, Any] | None = None
    closing = False
    rest_until = 0.0
    while True:
        timeout = max(0.0, rest_until - time.monotonic()) if pending is not None else None
        if closing:
            timeout = 0.0
        try:
            msg = requests.get(timeout=timeout) if timeout != 0.0 else requests.get_nowait()
        except queue.Empty:
            msg = {"op": "none"}
        while True:  # everything that came in: keep the latest check request
            if msg is None or msg.get("op") == "close":
                closing = True
            elif msg.get("op") == "check":
                pending = msg
            try:
                msg = requests.get_nowait()
            except queue.Empty:
                break
        resting = time.monotonic() < rest_until and not closing
        if pending is not None and not resting:
            outcome = checker.check(int(pending.get("step", 0)), final=closing)
            doc = outcome.to_dict()
            doc["seq"] = pending.get("seq", 0)
            emit(doc)
            pending = None
            # CPU time, not wall time: a check that waited for a core (it runs at a lower
            # priority) cost training nothing while it waited
            rest_until = time.monotonic() + outcome.cpu * (1 / duty - 1)
        if closing and pending is None:
            emit({"type": "done"})
            return


def main(argv: Sequence[str] | None = None) -> int:
    """The checker process (``--run DIR``; the recorder starts it with ``python -c``). Reads
    JSON requests on stdin (``{"op": "check", "step": N, "seq": K}``, ``{"op": "close"}``) and
    writes JSON lines on stdout (``ready``, ``check`` outcomes, ``error``, ``done``)."""
    parser = argparse.ArgumentParser(prog="runlint-live-checker")
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--select", action="append")
    parser.add_argument("--ignore", action="append", default=[])
    parser.add_argument("--config", type=Path)
    parser.add_argument("--duty", type=float, default=0.5)
    args = parser.parse_args(argv)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout = sys.stderr  # the protocol owns stdout: anything printed goes to stderr
    with contextlib.suppress(ValueError, OSError, AttributeError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the training process's
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)  # training comes first
    try:
        checker = RunChecker(args.run, args.select, args.ignore, args.config)
    except Exception as exc:
        _send(out, {"type": "error", "message": _one_line(exc)})
        return 2
    _send(out, {"type": "ready", "rules": [r.code for r in checker.rules]})
    requests: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def read() -> None:
        for line in sys.stdin:
            with contextlib.suppress(ValueError):
                requests.put(json.loads(line))
        requests.put(None)  # the training process closed the pipe (or died)

    threading.Thread(target=read, name="runlint-live-stdin", daemon=True).start()
    try:
        serve(checker, requests, lambda doc: _send(out, doc), max(1e-3, min(1.0, args.duty)))
    except BrokenPipeError:
        return 0
    return 0


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


if __name__ == "__main__":
    raise SystemExit(main())
