"""What the Optuna pruner and the Ray Tune stopper share: a run's live verdict, read from disk.

``verdict(run_dir, policy)`` says whether the live check of a run (``runlint.record(...,
check=True)``) has a finding that ``policy`` stops on and that no later check withdrew, or
stopped the run itself (``meta.json``'s ``stopped``). It reads the run's ``findings.jsonl`` and
``meta.json`` as JSON only (``runlint.check.live.read_history``): both are data written by the
trial, never code. Neither torch nor the search engine is imported here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from runlint.check.live import StopPolicy, read_history

__all__ = ["RUN_ATTR", "STOP_FIELD", "verdict"]

#: The Optuna user attribute (and Ray Tune result key) naming the trial's run directory; it is
#: the attribute ``runlint sweep`` reads to find a trial's run.
RUN_ATTR = "runlint_run"
#: The Ray Tune result key carrying the trial's own stop decision (``rec.should_stop``).
STOP_FIELD = "runlint_stop"


def verdict(run_dir: str | os.PathLike[str] | None, policy: StopPolicy) -> str | None:
    """Why the run in ``run_dir`` should stop under ``policy`` (one line), or None.

    A finding counts while it is live: reported by a check and not withdrawn by a later one.
    A stop the recorder itself recorded (``meta.json``'s ``stopped``) counts too, whatever its
    policy was. A missing or unreadable directory has no verdict.
    """
    if not run_dir or not policy:
        return None
    root = Path(run_dir)
    if not root.is_dir():
        return None
    history = read_history(root)
    stopped: dict[str, Any] | None = history.stopped
    if stopped and isinstance(stopped.get("reason"), str):
        return str(stopped["reason"])
    live = [(s, f) for s, w, f in history.seen.values() if w is None and policy.matches(f)]
    if not live:
        return None
    step, f = min(live, key=lambda item: (item[0], item[1].code))
    return f"{f.code} {f.name} ({f.severity.value}, first reported at step {step}): {f.message}"
