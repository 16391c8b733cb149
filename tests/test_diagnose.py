"""One diagnosis per run: findings grouped into causes and consequences by the rules'
``explained_by`` graph and the step each signal appeared; the cause carries the fix."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from helpers_cli import ROOT, invoke
from test_loader_synth import write_run

from runlint.check.diagnose import Diagnosis, causes_of, diagnose
from runlint.check.engine import LossSpan
from runlint.check.rule import Finding, Severity
from runlint.report.text import loss_summary, sparkline

GRAPH = {
    "RL401": ("RL202", "RL503"),
    "RL503": ("RL202",),
    "RL204": ("RL202", "RL503"),
    "RL103": ("RL202",),
}


def finding(code: str, start: int | None, end: int = 100) -> Finding:
    steps = (start, end) if start is not None else None
    return Finding(
        code, code.lower(), Severity.WARNING, f"{code} message", f"{code} fix", steps=steps
    )


def test_a_chain_is_grouped_under_its_cause_in_the_order_the_signals_appeared() -> None:
    findings = [finding("RL401", 30), finding("RL202", 2), finding("RL503", 10)]
    parents, diagnoses = diagnose(findings, GRAPH)
    assert parents == [2, None, 1]  # RL401 ← RL503 (the nearest) ← RL202
    assert diagnoses == [Diagnosis(cause=1, consequences=(2, 0))]


def test_a_signal_that_appeared_before_its_would_be_cause_is_a_cause_itself() -> None:
    findings = [finding("RL202", 50), finding("RL503", 10)]
    assert causes_of(findings, GRAPH) == [None, None]
    _, diagnoses = diagnose(findings, GRAPH)
    assert [d.cause for d in diagnoses] == [1, 0]  # ordered by when they appeared


def test_findings_without_steps_are_judged_by_the_graph_alone() -> None:
    findings = [finding("RL204", None), finding("RL202", 5), finding("RL103", 7)]
    parents, diagnoses = diagnose(findings, GRAPH)
    assert parents == [1, None, 1]
    assert diagnoses == [Diagnosis(1, (0, 2))]


def test_unrelated_findings_are_separate_causes() -> None:
    findings = [finding("RL301", 3), finding("RL202", 1)]
    parents, diagnoses = diagnose(findings, GRAPH)
    assert parents == [None, None] and [d.chain for d in diagnoses] == [(1,), (0,)]


CORPUS = ROOT / "fixtures" / "corpus"


def test_the_diverging_run_gets_one_diagnosis_and_no_contradicting_fix() -> None:
    run = CORPUS / "rl202-cnn-lr-x20"  # lr ×20: the loss spikes, ReLUs die, updates collapse
    text = invoke("check", str(run)).stdout
    assert re.search(
        r"diagnosis: RL202 lr-too-high \(step 0\) → .*RL401 update-ratio-off .*→ RL503 dead-relu",
        text,
    )
    assert "fix: lower the learning rate" in text
    assert "raise the learning rate" not in text  # RL401's own fix, which contradicts the cause
    assert text.index("RL202 warning") < text.index("↳ RL401") < text.index("↳ RL503")
    doc = json.loads(invoke("check", str(run), "-f", "json").stdout)
    codes = [f["code"] for f in doc["findings"]]
    (diagnosis,) = doc["diagnoses"]
    chain = ["RL202", "RL204", "RL401", "RL503", "RL108"]  # back at chance after the spike
    assert [codes[i] for i in diagnosis["chain"]] == chain
    cause = diagnosis["cause"]
    assert doc["findings"][cause]["fix"] and doc["findings"][cause]["cause"] is None
    chain = diagnosis["chain"]
    for k, i in enumerate(chain[1:], start=1):  # each explained by one before it, with no fix
        assert doc["findings"][i]["cause"] in chain[:k] and doc["findings"][i]["fix"] == ""
    direct = [i for i in chain[1:] if doc["findings"][i]["cause"] == cause]
    assert sorted(doc["findings"][cause]["consequences"]) == sorted(direct)
    github = invoke("check", str(run), "-f", "github").stdout
    assert "raise the learning rate" not in github and "a consequence of RL202" in github


def test_the_header_quotes_logged_values_and_a_diverged_run_does_not_look_healthy(
    tmp_path: Path,
) -> None:
    loss = np.r_[2.30, 400.0, 2085.0, np.geomspace(1500, 30, 97)]
    run = write_run(tmp_path / "diverged", steps=100, loss=loss)
    out = invoke("check", str(run), "--select", "RL103").stdout
    header = out.splitlines()[0]
    assert "2.3 at step 0 → 30 at step 99 (×13, up; peak 2.08e+03 at step 2)" in header
    bars = re.search(r"loss ([▁▂▃▄▅▆▇█×]+)", header)
    assert bars is not None and bars.group(1)[-1] > bars.group(1)[0]  # ends above its start


def test_sparkline_uses_a_log_scale_for_values_spanning_orders_of_magnitude() -> None:
    assert sparkline([2.3, 2085.0, 30.0]) == "▁█▄"  # linear would draw ▁█▁: a healthy decay
    assert sparkline([3.0, 2.0, 1.0]) == "█▅▁"


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (LossSpan(2.3, 0, 0.1, 99, 2.3, 0, 100), "2.3 at step 0 → 0.1 at step 99"),
        (LossSpan(2.3, 0, 2.3, 9, 9.0, 4, 10), "2.3 at step 0 → 2.3 at step 9 (peak 9 at step 4)"),
    ],
)
def test_loss_summary(span: LossSpan, text: str) -> None:
    assert loss_summary(span) == text
