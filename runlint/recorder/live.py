"""The training side of live checking: starts the checker, tells it of each committed flush,
and hands its findings to the training loop at step boundaries.

What the training thread does for it: at each flush, after the flush's files are on disk (on
the writer thread for CUDA models), one ``os.write`` of a short line to the checker's stdin; at
each step boundary, one test of whether the checker sent anything (``pending``). Everything
else (reading the run, the rules, comparing checks, ``findings.jsonl``) happens in the checker
process (``runlint.check.live``), or on a thread with ``mode="thread"``. The checker's replies
are read by a thread of this process that spends its life blocked on the pipe.

Nothing here raises into the training loop: a checker that cannot start, or dies, is one
warning, and training goes on unchecked.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import IO, Any

from runlint.check.live import CheckOutcome, LiveCheck, LiveEvent, log_event, serve
from runlint.check.rule import Finding

__all__ = ["LiveHook"]

_log = logging.getLogger("runlint.live")


class LiveHook:
    """One live check of the run recorded into ``root`` (see ``runlint.check.live``).

    ``pending`` is true when the checker has sent something that ``drain`` has not handled;
    ``drain(step)`` (training thread) hands the events to ``on_finding`` and applies the stop
    policy: ``should_stop`` and ``stopped`` (what ``meta.json`` records). ``findings``: what the
    last check reported; ``checks``, ``cpu``, ``wall``: the checks done and their cost.
    """

    def __init__(self, root: Path, spec: LiveCheck) -> None:
        self.root = root
        self.spec = spec
        self.should_stop = False
        self.stopped: dict[str, Any] | None = None
        self.checks = 0
        self.cpu = 0.0  # CPU seconds of the checks (the checker's thread)
        self.wall = 0.0
        self.skipped_notices = 0
        self.rules: list[str] = []
        self._inbox: collections.deque[dict[str, Any]] = collections.deque()
        self._current: dict[str, Finding] = {}
        self._sent = 0  # notices sent
        self._answered = 0  # the latest notice a check answered
        self._answer = threading.Condition()
        self._done = threading.Event()
        self._off: str | None = None  # why the live check is off
        self._on_finding = spec.on_finding or log_event
        self._proc: subprocess.Popen[bytes] | None = None
        self._stdin: int | None = None
        self._requests: queue.Queue[dict[str, Any] | None] | None = None
        self._threads: list[threading.Thread] = []
        self._rule_errors: set[str] = set()

    # -- life -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the checker. Never raises: a failure is one warning, and no live check."""
        try:
            if self.spec.mode == "thread":
                self._start_thread()
            else:
                self._start_process()
        except Exception as exc:
            self._fail(f"cannot start the checker ({_one_line(exc)})")

    def _start_process(self) -> None:
        import runlint

        package_root = str(Path(runlint.__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, "1")  # one core at most, for the numpy the rules run
        entry = "import sys; from runlint.check.live import main; sys.exit(main())"
        argv = [sys.executable, "-c", entry, "--run", str(self.root)]
        self._proc = proc = subprocess.Popen(
            argv + self.spec.argv(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        self._stdin = proc.stdin.fileno()
        with contextlib.suppress(OSError, AttributeError):
            os.set_blocking(self._stdin, False)  # a stuck checker never blocks training
        self._spawn(self._read_process, proc.stdout)

    def _start_thread(self) -> None:
        from runlint.check.live import RunChecker

        spec = self.spec
        requests: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._requests = requests

        def run() -> None:
            try:
                checker = RunChecker(self.root, spec.select, spec.ignore, spec.config)
            except Exception as exc:
                self._receive({"type": "error", "message": _one_line(exc)})
                self._done.set()
                return
            self._receive({"type": "ready", "rules": [r.code for r in checker.rules]})
            try:
                serve(checker, requests, self._receive, spec.duty)
            except Exception as exc:
                self._receive({"type": "error", "message": _one_line(exc)})
            finally:
                self._done.set()

        self._spawn(run)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name="runlint-live", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _read_process(self, stdout: IO[bytes]) -> None:
        try:
            for line in stdout:
                with contextlib.suppress(ValueError):
                    self._receive(json.loads(line))
        except (OSError, ValueError):
            pass
        finally:
            self._done.set()
            with self._answer:
                self._answer.notify_all()

    def _receive(self, doc: dict[str, Any]) -> None:
        """On the reader (or checker) thread: queue a message for the training thread."""
        if doc.get("type") == "check":
            with self._answer:
                self._answered = max(self._answered, int(doc.get("seq", 0)))
                self._answer.notify_all()
        self._inbox.append(doc)

    def notify(self, step: int) -> None:
        """A flush holding the first ``step`` steps is on disk: ask for a check. Never raises,
        never blocks (a notice the pipe cannot take now is dropped: the next one supersedes
        it)."""
        if self._off is not None:
            return
        self._sent += 1
        request = {"op": "check", "step": int(step), "seq": self._sent}
        if self._requests is not None:
            self._requests.put(request)
            return
        if self._stdin is None:
            return
        try:
            os.write(self._stdin, (json.dumps(request) + "\n").encode())
        except BlockingIOError:
            self.skipped_notices += 1
        except OSError as exc:  # the checker is gone: say why, if it said
            said = [d.get("message") for d in self._inbox if d.get("type") == "error"]
            self._fail(f"the checker failed: {said[0]}" if said else f"the checker stopped ({exc})")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every flush notified so far is checked (tests, examples); whether it
        was within ``timeout`` seconds. Does not drain."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._answer:
            while self._answered < self._sent and not self._done.is_set():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._answer.wait(left)
        return self._answered >= self._sent

    def close(self, step: int, *, wait: bool = True) -> None:
        """Ask for the check of the last flush, wait for it (at most ``close_timeout`` s),
        hand its events over and stop the checker. Never raises."""
        try:
            if self._requests is not None:
                self._requests.put({"op": "close"})
            elif self._stdin is not None and self._off is None:
                with contextlib.suppress(OSError):
                    os.set_blocking(self._stdin, True)
                    os.write(self._stdin, b'{"op": "close"}\n')
            if wait and self._off is None:
                self._done.wait(self.spec.close_timeout)
            self.drain(step)
        except Exception as exc:
            warnings.warn(f"runlint: live check: {exc}", RuntimeWarning, stacklevel=2)
        finally:
            self._stop_process()

    def _stop_process(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        with contextlib.suppress(OSError, ValueError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2.0)
        with contextlib.suppress(OSError, ValueError):
            if proc.stdout is not None:
                proc.stdout.close()

    # -- the training thread ----------------------------------------------------------------
    @property
    def pending(self) -> bool:
        return bool(self._inbox)

    @property
    def findings(self) -> list[Finding]:
        """What the latest check handed over reported (withdrawn findings left out)."""
        return list(self._current.values())

    def drain(self, step: int) -> None:
        """Hand what the checker sent to ``on_finding``; apply the stop policy. ``step``: the
        optimizer steps done now (recorded with a stop)."""
        inbox = self._inbox
        while inbox:
            doc = inbox.popleft()
            kind = doc.get("type")
            if kind == "check":
                self._handle(CheckOutcome.from_dict(doc), step)
            elif kind == "ready":
                self.rules = list(doc.get("rules", []))
            elif kind == "error":
                self._fail(f"the checker failed: {doc.get('message')}")

    def _handle(self, outcome: CheckOutcome, step: int) -> None:
        self.checks += 1
        self.cpu += outcome.cpu
        self.wall += outcome.wall
        for problem in outcome.rule_errors:
            code = problem.split(" ", 1)[0]
            if code not in self._rule_errors:
                self._rule_errors.add(code)
                _log.warning("runlint: live check: rule %s crashed", problem)
        for event in outcome.events:
            if event.kind == "withdrawn":
                self._current.pop(event.key, None)
            else:
                self._current[event.key] = event.finding
            self._tell(event)
        if self.should_stop or not self.spec.policy:
            return
        for event in outcome.events:
            if event.kind != "withdrawn" and self.spec.policy.matches(event.finding):
                self._stop(event, step)
                return

    def _tell(self, event: LiveEvent) -> None:
        try:
            self._on_finding(event)
        except Exception as exc:
            warnings.warn(
                f"runlint: on_finding raised {_one_line(exc)}; logging the findings instead",
                RuntimeWarning,
                stacklevel=4,
            )
            self._on_finding = log_event
            log_event(event)

    def _stop(self, event: LiveEvent, step: int) -> None:
        f = event.finding
        matching = [x for x in self._current.values() if self.spec.policy.matches(x)]
        codes = sorted({x.code for x in matching} | {f.code})
        reason = f"{f.code} {f.name} ({f.severity.value}): {f.message}"
        self.should_stop = True
        self.stopped = {
            "step": int(step),
            "checked_step": event.step,
            "codes": codes,
            "reason": reason,
            "time": event.time,
            "policy": str(self.spec.policy),
        }
        _log.warning(
            "runlint: stopping training at step %d (stop_on=%s): %s", step, self.spec.policy, reason
        )

    def _fail(self, why: str) -> None:
        if self._off is not None:
            return
        self._off = why
        warnings.warn(
            f"runlint: live check is off: {why}; training goes on unchecked",
            RuntimeWarning,
            stacklevel=3,
        )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
