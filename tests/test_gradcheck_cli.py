"""``runlint gradcheck`` end to end, in a real subprocess."""

from __future__ import annotations

import json
from functools import partial

from helpers_cli import run_runlint

_run = partial(run_runlint, "gradcheck")


def test_correct_model_prints_the_table_and_exits_0() -> None:
    proc = _run("examples/regularized.py:make", "--coords", "5")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "float64" in out and "h = 1e-05" in out
    assert "data loss:" in out and "data loss + regularization:" in out
    assert "0.weight" in out and "max rel err" in out
    assert "> 1e-2 wrong" in out
    assert "gradcheck: passed" in out


def test_buggy_backward_exits_1_with_json() -> None:
    proc = _run("examples/buggy.py:make_transposed", "--format", "json", "--burn-in", "3")
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["command"] == "gradcheck" and data["verdict"] == "wrong"
    assert data["burn_in"]["steps"] == 3
    params = {p["name"]: p for p in data["phases"][0]["params"]}
    assert params["0.weight"]["verdict"] == "wrong"
    assert params["0.weight"]["max_rel_error"] > 1e-2
    assert params["2.weight"]["verdict"] == "good"
