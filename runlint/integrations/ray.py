"""A Ray Tune stopper that ends the trials runlint's live check diagnoses as broken.

    import runlint
    from ray import tune
    from runlint.integrations.ray import RunlintStopper, report_fields

    def train(config):
        ...
        with runlint.record(model, opt, "run", check=True) as rec:  # in the trial's folder
            for epoch in range(10):
                ...                                              # one epoch, rec.log(loss=...)
                rec.log_epoch(val_loss=val_loss)
                tune.report({"val_loss": val_loss, **report_fields(rec)})

    tune.Tuner(train, param_space={"lr": tune.loguniform(1e-3, 30)},
               tune_config=tune.TuneConfig(metric="val_loss", mode="min", num_samples=16),
               run_config=tune.RunConfig(stop=RunlintStopper())).fit()

How it decides: the trial's recorder checks its own run live (``check=True``), in the trial's
process, wherever Ray placed it. ``report_fields(rec)`` turns what that check knows into result
fields: ``runlint_stop`` (True when a finding at or above ``stop_on``, default ``"error"``, is
live, or the recorder stopped the run itself), ``runlint_reason`` (one line) and
``runlint_run`` (the run directory, which ``runlint sweep`` finds inside the trial folder
anyway). ``RunlintStopper`` runs in the driver and stops a trial whose result says
``runlint_stop``; it reads nothing but the result, so the same code stops trials on a Ray
cluster without a shared file system. Otherwise it asks the stopper it wraps (none: never).
A stopped trial's run is cut off after that report like any trial Tune stops; everything
flushed so far (every epoch: ``log_epoch`` flushes) is on disk and loadable.

The check is asynchronous: ``report_fields(rec, wait=s)`` first waits up to ``s`` seconds for
the checks of the flushes so far, which makes the decision at that epoch deterministic (tests)
at the cost of that wait; by default a finding stops the trial at the next report after the
check that found it.

Needs ``runlint[ray]``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from runlint.extras import requires_extra

with requires_extra("ray", "runlint.integrations.ray"):
    from ray.tune import Stopper

from runlint.check.live import StopPolicy
from runlint.integrations._verdict import RUN_ATTR, STOP_FIELD, verdict

__all__ = ["REASON_FIELD", "RUN_ATTR", "STOP_FIELD", "RunlintStopper", "report_fields"]

#: The result key with the reason of ``runlint_stop`` (empty when there is none).
REASON_FIELD = "runlint_reason"


def report_fields(rec: Any, stop_on: Any = "error", *, wait: float = 0.0) -> dict[str, Any]:
    """The result fields that carry the live check's verdict on ``rec``'s run (a
    ``runlint.record`` recorder with ``check=True``): ``runlint_stop``, ``runlint_reason`` and
    ``runlint_run``. ``stop_on``: what counts, as ``runlint.record``'s ``stop_on``. ``wait``:
    seconds to wait first for the checks of the flushes so far (0: do not wait)."""
    policy = StopPolicy.parse(stop_on)
    live = getattr(rec, "live", None)
    if wait > 0 and live is not None:
        live.wait(wait)
    why = None
    if bool(rec.should_stop) and live is not None and live.stopped:  # drains what was sent
        why = str(live.stopped.get("reason", "stopped by the live check"))
    if why is None and live is not None:
        matching = [f for f in live.findings if policy.matches(f)]
        if matching:
            f = matching[0]
            why = f"{f.code} {f.name} ({f.severity.value}): {f.message}"
    if why is None and live is None:  # a recorder without a live check: what its run says
        why = verdict(rec.logdir, policy)
    return {STOP_FIELD: why is not None, REASON_FIELD: why or "", RUN_ATTR: os.fspath(rec.logdir)}


class RunlintStopper(Stopper):
    """Stop a trial whose result says ``runlint_stop`` (``report_fields``), else defer to
    ``stopper`` (another Tune stopper, or None: never stop otherwise).

    ``stopped``: trial id → the reason, for the trials this stopper stopped.
    """

    def __init__(self, stopper: Stopper | None = None) -> None:
        self.stopper = stopper
        self.stopped: dict[str, str] = {}

    def __call__(self, trial_id: str, result: Mapping[str, Any]) -> bool:
        if result.get(STOP_FIELD) is True:
            self.stopped.setdefault(trial_id, str(result.get(REASON_FIELD) or "runlint_stop"))
            return True
        return bool(self.stopper is not None and self.stopper(trial_id, dict(result)))

    def stop_all(self) -> bool:
        return bool(self.stopper is not None and self.stopper.stop_all())
