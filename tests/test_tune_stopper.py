"""Stopping a Ray Tune search's broken trials: ``runlint.integrations.ray``.

The stopper's decision from a result (no Ray needed beyond the import), then a real Tune search
(``examples/tune_stop_broken_trials.py``, Ray started locally with two CPUs: 20-30 s of start-up)
over four learning rates, two of which diverge.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray.tune")  # the dev extra installs it; runlint[ray] for users

import runlint
from runlint.integrations.ray import RunlintStopper

ROOT = Path(__file__).resolve().parent.parent


class _After:
    """A stopper that stops every trial at iteration ``n``."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return bool(result.get("training_iteration", 0) >= self.n)

    def stop_all(self) -> bool:
        return False


def test_the_stopper_stops_on_runlint_stop_and_defers_otherwise() -> None:
    stopper = RunlintStopper()
    assert not stopper("a", {"val_loss": 1.0, "runlint_stop": False})
    assert not stopper("a", {"val_loss": 1.0, "runlint_stop": "yes"})  # only True counts
    assert stopper("b", {"runlint_stop": True, "runlint_reason": "RL202 lr-too-high (error)"})
    assert stopper.stopped == {"b": "RL202 lr-too-high (error)"}
    wrapped = RunlintStopper(_After(3))  # type: ignore[arg-type]
    assert not wrapped("c", {"training_iteration": 2}) and wrapped("c", {"training_iteration": 3})
    assert not wrapped.stop_all()


def _example() -> Any:
    path = ROOT / "examples" / "tune_stop_broken_trials.py"
    spec = importlib.util.spec_from_file_location("tune_stop_broken_trials", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_tune_search_stops_its_diverging_trials_and_keeps_its_best(tmp_path: Path) -> None:
    import ray
    import ray.cloudpickle
    from ray import tune

    example = _example()
    ray.cloudpickle.register_pickle_by_value(example)  # the workers cannot import it by name
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        lrs = tune.grid_search([0.03, 0.3, 10.0, 25.0])
        results = example.search(lrs, epochs=4, storage=str(tmp_path), wait=30.0)
    finally:
        ray.shutdown()
    assert not results.errors, results.errors
    by_lr = {r.config["lr"]: r for r in results}
    for lr in (10.0, 25.0):  # diverge: stopped at their first report, before their last epoch
        m = by_lr[lr].metrics
        assert m["runlint_stop"] is True and m["runlint_reason"].startswith("RL"), m
        assert m["training_iteration"] < 4, m
        run = runlint.load_run(m["runlint_run"])  # what was flushed before the stop is there
        assert len(run.epochs) >= 1
    for lr in (0.03, 0.3):  # healthy: all their epochs
        m = by_lr[lr].metrics
        assert m["runlint_stop"] is False and m["training_iteration"] == 4, m
    best = results.get_best_result()
    assert best.config["lr"] in (0.03, 0.3) and best.metrics["training_iteration"] == 4


def test_without_ray_the_stopper_names_the_extra_to_install() -> None:
    import subprocess

    code = (
        "import sys\nsys.modules['ray'] = None\nimport runlint\n"
        "try:\n    import runlint.integrations.ray\n"
        "except runlint.MissingExtra as exc:\n    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "runlint.integrations.ray needs ray, which is not installed: pip install 'runlint[ray]'"
    )
