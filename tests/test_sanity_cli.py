"""``runlint sanity`` end to end, in a real subprocess."""

from __future__ import annotations

import json
import textwrap
from functools import partial
from pathlib import Path

from helpers_cli import run_runlint

_run = partial(run_runlint, "sanity")


def test_svm_example_passes_with_the_expected_numbers() -> None:
    proc = _run("examples/svm.py:make")
    assert proc.returncode == 0, proc.stderr
    assert "PASS initial-loss: initial loss 9.007; expected C−1 for a 10-class SVM" in proc.stdout
    assert "= 9" in proc.stdout
    assert "PASS overfit-small-subset: 20 examples fitted" in proc.stdout
    assert "sanity: 2 passed, 0 warned, 0 failed, 1 skipped" in proc.stdout


def test_badly_initialized_model_fails_with_fix_in_json(tmp_path: Path) -> None:
    factory = tmp_path / "big_init.py"
    factory.write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn

            def make():
                torch.manual_seed(0)
                model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 10))
                with torch.no_grad():
                    model[2].weight.mul_(50)
                return {"model": model, "loss_fn": nn.CrossEntropyLoss(),
                        "batch": (torch.randn(20, 8), torch.arange(20) % 10)}
            """
        )
    )
    proc = _run(f"{factory}:make", "--format", "json", "--overfit-steps", "20")
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    checks = {c["name"]: c for c in data["checks"]}
    initial = checks["initial-loss"]
    assert initial["status"] == "fail"
    assert initial["details"]["expected"] > 2.30 and initial["details"]["observed"] > 3
    assert "×0.01" in initial["fix"]
    assert data["fail"] >= 1
