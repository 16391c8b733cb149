"""The corpus of recorded runs: each fault is caught by the rules it names; healthy runs are quiet.

Reads ``fixtures/corpus/manifest.json`` and checks the whole corpus once through the CLI's JSON
contract (``runlint check --format json --exit-zero``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runlint
from runlint.check import Rule, engine

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fixtures" / "corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())
RUNS: list[dict[str, Any]] = MANIFEST["runs"]
LOUD = {"warning", "error"}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """The JSON report of one ``runlint check`` of the whole corpus."""
    paths = [str(CORPUS / r["path"]) for r in RUNS]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "runlint",
            "check",
            *paths,
            "--format",
            "json",
            "--exit-zero",
            "-j",
            "2",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc: dict[str, Any] = json.loads(proc.stdout)
    assert all(run["status"] == "ok" for run in doc["runs"]), doc["runs"]
    return doc


def _name(path: str) -> str:
    return {(CORPUS / r["path"]).resolve(): r["name"] for r in RUNS}[Path(path).resolve()]


@pytest.fixture(scope="module")
def findings(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Code → loudest severity per run name."""
    by_path = {(CORPUS / r["path"]).resolve(): r["name"] for r in RUNS}
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for finding in report["findings"]:
        codes = out[by_path[Path(finding["run"]).resolve()]]
        if codes.get(finding["code"]) not in LOUD:
            codes[finding["code"]] = finding["severity"]
    return out


@pytest.fixture(scope="module")
def fired(findings: dict[str, dict[str, str]]) -> dict[str, set[str]]:
    """Codes at warning or error per run name."""
    return defaultdict(
        set,
        {run: {c for c, sev in codes.items() if sev in LOUD} for run, codes in findings.items()},
    )


def test_manifest_lists_every_run_directory_and_a_healthy_set() -> None:
    on_disk = {p.name for p in CORPUS.iterdir() if p.is_dir()}
    assert on_disk == {r["path"] for r in RUNS}
    assert sum(r["healthy"] for r in RUNS) >= 10
    assert all(
        (r["expect"] or r.get("expect_info")) and r["family"] for r in RUNS if not r["healthy"]
    )


CATALOG = engine.discover()


def _examples(code: str) -> list[str]:
    """The runs that document a rule: the faults it must catch, and its declared examples."""
    keys = ("expect", "expect_info", "example_of")
    return [r["name"] for r in RUNS if any(code in r.get(k, []) for k in keys)]


def test_the_catalog_loads_without_errors() -> None:
    assert CATALOG.errors == () and len(CATALOG.rules) >= 20


@pytest.mark.parametrize("rule", CATALOG.rules, ids=lambda r: r.code)
def test_every_rule_has_a_bad_fixture_it_fires_on(
    rule: type[Rule], findings: dict[str, dict[str, str]]
) -> None:
    bad = _examples(rule.code)
    assert bad, f"{rule.code} has no bad fixture in fixtures/corpus/manifest.json"
    assert all(rule.code in findings[name] for name in bad), (rule.code, bad)


@pytest.mark.parametrize("rule", CATALOG.rules, ids=lambda r: r.code)
def test_every_rule_has_a_good_fixture_it_runs_on_and_stays_silent(
    rule: type[Rule], report: dict[str, Any], findings: dict[str, dict[str, str]]
) -> None:
    skipped = {(_name(s["run"]), s["code"]) for s in report["summary"]["skipped"]}
    good = [
        r["name"]
        for r in RUNS
        if r["healthy"]
        and (r["name"], rule.code) not in skipped
        and rule.code not in findings[r["name"]]
    ]
    assert good, f"{rule.code}: no healthy run on which it runs and reports nothing"


@pytest.mark.parametrize("run", [r for r in RUNS if not r["healthy"]], ids=lambda r: r["name"])
def test_faulty_run_is_caught_by_its_expected_rules(
    run: dict[str, Any], fired: dict[str, set[str]]
) -> None:
    missed = set(run["expect"]) - fired[run["name"]]
    assert not missed, f"{run['name']} ({run['fault']}): {sorted(missed)} did not fire"


@pytest.mark.parametrize("run", [r for r in RUNS if r.get("expect_info")], ids=lambda r: r["name"])
def test_advisory_fault_is_reported(
    run: dict[str, Any], findings: dict[str, dict[str, str]]
) -> None:
    missed = set(run["expect_info"]) - set(findings[run["name"]])
    assert not missed, f"{run['name']} ({run['fault']}): {sorted(missed)} reported nothing"


@pytest.mark.parametrize("run", [r for r in RUNS if r["healthy"]], ids=lambda r: r["name"])
def test_healthy_run_gets_no_warning(run: dict[str, Any], fired: dict[str, set[str]]) -> None:
    assert not fired[run["name"]], f"{run['name']}: {sorted(fired[run['name']])}"


def test_regenerating_one_run_reproduces_it(tmp_path: Path) -> None:
    name = "rl401-sgd-lr-1e-5"
    proc = subprocess.run(
        [sys.executable, "fixtures/make_corpus.py", "--only", name, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [r["name"] for r in manifest["runs"]] == [name]
    fresh, committed = runlint.load_run(tmp_path / name), runlint.load_run(CORPUS / name)
    assert fresh.meta["num_classes"] == 10
    assert len(fresh.steps) == len(committed.steps) > 100
    assert not fresh.params.empty and not fresh.epochs.empty
    np.testing.assert_allclose(
        fresh.steps["loss"].to_numpy()[:50], committed.steps["loss"].to_numpy()[:50], rtol=1e-3
    )
