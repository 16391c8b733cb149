"""An Optuna pruner that prunes the trials runlint's live check diagnoses as broken.

    import optuna, runlint
    from runlint.integrations.optuna import RunlintPruner, report

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-3, 10, log=True)
        ...
        with runlint.record(model, opt, f"runs/trial-{trial.number}", check=True) as rec:
            for epoch in range(10):
                ...                                 # train one epoch, rec.log(loss=loss)
                rec.log_epoch(val_loss=val_loss)
                report(trial, rec, val_loss, epoch)  # raises optuna.TrialPruned when pruned
        return val_loss

    study = optuna.create_study(pruner=RunlintPruner(optuna.pruners.MedianPruner()))

How it decides: each trial records its run with ``runlint.record(..., check=True)``, whose live
check writes every finding it reports (and withdraws) to ``findings.jsonl`` in the run
directory. ``report`` stores the run directory in the trial's ``runlint_run`` user attribute
(the one ``runlint sweep`` reads), reports the value and asks the study's pruner.
``RunlintPruner.prune`` reads that file (JSON only: it is data the trial wrote) and prunes when
a finding at or above ``stop_on`` (default ``"error"``: the run is broken, ``docs/severity.md``)
is live, or when the recorder stopped the run itself; otherwise it asks the pruner it wraps
(none: never). So a diverging trial ends at the first epoch after runlint sees it, before its
metric alone would tell (a median pruner waits for its warm-up steps and startup trials, and
for the metric to be worse than the others'), and a healthy trial is left to the inner pruner.

The pruner needs nothing from the trial's process but the run directory on a file system it
can read: with a shared storage and file system the same code prunes trials of a distributed
study. The check is asynchronous: ``report(..., wait=s)`` first waits up to ``s`` seconds for
the checks of the flushes so far (an epoch boundary flushes), which makes the decision at that
epoch deterministic (tests, benchmarks) at the cost of that wait; the default does not wait,
and a finding then prunes at the next report after the check that found it.

Needs ``runlint[optuna]``; imports neither torch nor the recorder.
"""

from __future__ import annotations

import os
from typing import Any

from runlint.extras import requires_extra

with requires_extra("optuna", "runlint.integrations.optuna"):
    import optuna

from runlint.check.live import StopPolicy
from runlint.integrations._verdict import RUN_ATTR, verdict

__all__ = ["REASON_ATTR", "RUN_ATTR", "RunlintPruner", "report"]

#: The user attribute where ``RunlintPruner`` writes why it pruned a trial.
REASON_ATTR = "runlint_pruned"


class RunlintPruner(optuna.pruners.BasePruner):
    """Prune a trial whose run has a live finding at or above ``stop_on``, else defer to
    ``pruner`` (another Optuna pruner, or None: never prune otherwise).

    The trial names its run directory in the ``runlint_run`` user attribute (``report`` does
    it). ``stop_on`` is ``runlint.record``'s: a severity, or rule codes, prefixes or names.
    """

    def __init__(self, pruner: optuna.pruners.BasePruner | None = None, stop_on: Any = "error"):
        self.pruner = pruner
        self.policy = StopPolicy.parse(stop_on)
        if not self.policy:
            raise ValueError("RunlintPruner needs a stop_on that can stop: 'error', codes, ...")

    def reason(self, trial: optuna.trial.FrozenTrial) -> str | None:
        """Why runlint prunes ``trial`` (one line), or None."""
        run = trial.user_attrs.get(RUN_ATTR)
        return verdict(run, self.policy) if isinstance(run, str) else None

    def prune(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if self.reason(trial) is not None:
            return True
        return bool(self.pruner is not None and self.pruner.prune(study, trial))


def report(
    trial: optuna.trial.Trial,
    rec: Any,
    value: float,
    step: int,
    *,
    wait: float = 0.0,
) -> None:
    """Report ``value`` at ``step`` for ``trial``, whose run ``rec`` records, and raise
    ``optuna.TrialPruned`` (saying why) when the study's pruner prunes it.

    ``rec``: the trial's ``runlint.record(...)`` recorder, or its run directory. ``wait``:
    seconds to wait first for the live checks of the flushes so far (0: do not wait).
    """
    run = os.fspath(getattr(rec, "logdir", rec))
    if trial.user_attrs.get(RUN_ATTR) != run:
        trial.set_user_attr(RUN_ATTR, run)
    live = getattr(rec, "live", None)
    if wait > 0 and live is not None:
        live.wait(wait)
    trial.report(float(value), step)
    if not trial.should_prune():
        return
    pruner = trial.study.pruner
    why = verdict(run, pruner.policy) if isinstance(pruner, RunlintPruner) else None
    if why is not None:
        trial.set_user_attr(REASON_ATTR, why)
    raise optuna.TrialPruned(f"runlint: {why}" if why else f"pruned at step {step}")
