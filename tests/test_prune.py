"""Pruning a search with runlint's live findings: ``runlint.integrations.optuna``.

The decision from a run directory's ``findings.jsonl`` (no training), then a small Optuna study
(``bench/prune.py``'s objective: 6 trials of 3 epochs, 3 of them at a learning rate that
diverges) run with and without ``RunlintPruner``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

optuna = pytest.importorskip("optuna")  # the dev extra installs it; runlint[optuna] for users

from runlint.check.live import LiveEvent, append_events  # noqa: E402
from runlint.check.rule import Finding, Severity  # noqa: E402
from runlint.integrations.optuna import RunlintPruner  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _event(kind: str, code: str, severity: Severity, step: int) -> LiveEvent:
    f = Finding(
        code, "some-rule", severity, "the loss spiked", "lower the lr", "run", None, None, {}
    )
    return LiveEvent(kind, f, step, 16, 1.0, key=f"{code}||0")


class _Frozen:
    """What ``prune`` reads of a frozen trial: its user attributes."""

    def __init__(self, attrs: dict[str, Any]) -> None:
        self.user_attrs = attrs


def _trial(run: Path | None) -> Any:
    return _Frozen({} if run is None else {"runlint_run": str(run)})


class _Always(optuna.pruners.BasePruner):
    def prune(self, study: Any, trial: Any) -> bool:
        return True


def test_the_pruner_prunes_on_a_live_error_and_not_once_it_is_withdrawn(tmp_path: Path) -> None:
    pruner = RunlintPruner()
    assert not pruner.prune(None, _trial(tmp_path))
    append_events(tmp_path, [_event("new", "RL403", Severity.WARNING, 16)])
    assert not pruner.prune(None, _trial(tmp_path))
    append_events(tmp_path, [_event("new", "RL202", Severity.ERROR, 32)])
    with (tmp_path / "findings.jsonl").open("a") as fh:
        fh.write('{"event": "new", "finding": {"code": "RL1\n')  # a line cut short: skipped
    why = pruner.reason(_trial(tmp_path))
    assert why is not None and why.startswith("RL202 some-rule (error")
    assert pruner.prune(None, _trial(tmp_path))
    append_events(tmp_path, [_event("withdrawn", "RL202", Severity.ERROR, 80)])
    assert not pruner.prune(None, _trial(tmp_path))
    assert RunlintPruner(stop_on="warning").prune(None, _trial(tmp_path))


def test_without_a_verdict_the_pruner_defers_to_the_one_it_wraps(tmp_path: Path) -> None:
    assert RunlintPruner(_Always()).prune(None, _trial(tmp_path))
    assert not RunlintPruner().prune(None, _trial(None))
    assert not RunlintPruner().prune(None, _trial(tmp_path / "absent"))
    # the recorder's own stop (meta.json) is a verdict whatever the policy was
    meta = {"meta": {"stopped": {"reason": "RL103 non-finite-loss (error): nan", "step": 9}}}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    assert RunlintPruner().reason(_trial(tmp_path)) == "RL103 non-finite-loss (error): nan"
    with pytest.raises(ValueError, match="stop_on"):
        RunlintPruner(stop_on=None)


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_prune", ROOT / "bench" / "prune.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_prune"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_a_study_prunes_its_diverging_trials_early_and_keeps_its_best(tmp_path: Path) -> None:
    """Seed 3 samples lr 0.292, 1.48, 0.020, 0.194, 9.95 and 10.3: the three above 1 diverge."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    bench = _bench()
    base, ours = bench.compare(trials=6, epochs=3, seed=3, inner="none", root=tmp_path)
    by_number = {t["number"]: t for t in ours.trials}
    diverged = [
        t["number"]
        for t in base.trials
        if not t["finite"] or not math.isfinite(t["value"]) or t["value"] > 10 * math.log(4)
    ]
    assert len(diverged) >= 2, base.trials  # the search does hold broken trials
    assert not base.pruned  # the inner pruner alone (none) prunes nothing
    for number in diverged:
        trial = by_number[number]
        assert trial["state"] == "PRUNED" and trial["epochs"] < 3, trial
        assert trial["why"].startswith("RL"), trial
    assert {t["number"] for t in ours.pruned} == set(diverged)  # no healthy trial pruned
    assert ours.epochs < base.epochs
    assert base.best is not None and ours.best is not None
    assert ours.best["number"] == base.best["number"]
    assert ours.best["value"] == pytest.approx(base.best["value"])


WITHOUT = """
import sys
sys.modules[{module!r}] = None  # as if it were not installed
import runlint
try:
    import runlint.integrations.{name}
except runlint.MissingExtra as exc:
    print(exc)
"""


def test_without_optuna_the_pruner_names_the_extra_to_install() -> None:
    import subprocess

    code = WITHOUT.format(module="optuna", name="optuna")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "runlint.integrations.optuna needs optuna, which is not installed: "
        "pip install 'runlint[optuna]'"
    )
