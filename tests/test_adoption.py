"""Suppression and adoption: per-run ignores, a run's own ``.runlintignore`` (honoured only when
the project's config allows it), and baselines that gate only new findings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers_cli import ROOT, check_in

from runlint.check.rule import Finding, Severity
from runlint.check.suppress import fingerprints

CORPUS = ROOT / "fixtures" / "corpus"
BAD = "rl101-last-layer-x50"  # RL101 fires on it (and RL104, its cause)
GOOD = "spiral-mlp-sgd-momentum"


def copy_run(name: str, dest: Path) -> Path:
    shutil.copytree(CORPUS / name, dest)
    return dest


check = check_in


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy_run(BAD, tmp_path / "logs" / "exp-a" / BAD)
    copy_run(GOOD, tmp_path / "logs" / "exp-a" / GOOD)
    return tmp_path


def config(project: Path, text: str) -> str:
    path = project / "runlint.toml"
    path.write_text(text)
    return str(path)


def summary(out: str) -> dict:  # type: ignore[type-arg]
    return json.loads(out)["summary"]


def test_per_run_ignore_glob_suppresses_and_counts(project: Path) -> None:
    code, out, _ = check(project, "logs", "--select", "RL101", "--config", config(project, ""))
    assert code == 1 and "RL101" in out
    cfg = config(project, '[tool.runlint.per-run-ignores]\n"exp-a/rl101-*" = ["RL101"]\n')
    code, out, _ = check(project, "logs", "--select", "RL101", "--config", cfg)
    assert code == 0, out
    assert "0 findings" in out and "1 suppressed (1 by per-run-ignores)" in out
    code, out, _ = check(project, "logs", "--select", "RL101", "--config", cfg, "-f", "json")
    assert code == 0 and summary(out)["suppressed"] == 1
    assert summary(out)["suppressed_by"] == {"per-run-ignores": 1}
    # a glob without "/" matches the run folder's name; one matching nothing suppresses nothing
    cfg = config(project, '[tool.runlint.per-run-ignores]\n"rl101-*" = ["initial-loss-off"]\n')
    assert check(project, "logs", "--select", "RL101", "--config", cfg)[0] == 0
    cfg = config(project, '[tool.runlint.per-run-ignores]\n"exp-b/*" = ["RL101"]\n')
    assert check(project, "logs", "--select", "RL101", "--config", cfg)[0] == 1


def test_per_run_ignore_with_unknown_rule_is_a_config_error(project: Path) -> None:
    cfg = config(project, '[tool.runlint.per-run-ignores]\n"*" = ["RL999"]\n')
    code, _, err = check(project, "logs", "--config", cfg)
    assert code == 2 and "per-run-ignores" in err


def test_run_ignore_file_is_not_honoured_unless_the_config_allows_it(project: Path) -> None:
    (project / "logs" / "exp-a" / BAD / ".runlintignore").write_text("RL101  # on purpose\n")
    code, out, _ = check(
        project, "logs", "--select", "RL101", "-v", "--config", config(project, "")
    )
    assert code == 1, "logs must not choose the rules that judge them"
    assert ".runlintignore not honoured" in out
    cfg = config(project, "[tool.runlint]\nallow-run-ignores = true\n")
    code, out, _ = check(project, "logs", "--select", "RL101", "--config", cfg)
    assert code == 0 and "1 suppressed (1 by .runlintignore)" in out


def test_baseline_gates_only_new_findings(project: Path) -> None:
    cfg = config(project, "")
    code, _, err = check(project, "logs", "--add-baseline", "b.json", "--config", cfg)
    assert code == 0 and "wrote 2 findings" in err  # RL101 and its cause RL104
    first = (project / "b.json").read_text()
    # the same runs: nothing new, exit 0, the suppressed findings counted
    code, out, _ = check(project, "logs", "--baseline", "b.json", "--config", cfg)
    assert code == 0 and "2 suppressed (2 by baseline)" in out
    # a fingerprint depends on the run's name relative to the checked path, not on where the
    # project lies: the same baseline works from the project moved elsewhere and rewritten
    moved = project.parent / (project.name + "-moved")
    shutil.copytree(project, moved)
    code, _, _ = check(
        moved, "logs", "--baseline", "b.json", "--config", str(moved / "runlint.toml")
    )
    assert code == 0
    check(moved, "logs", "--add-baseline", "again.json", "--config", str(moved / "runlint.toml"))
    assert (moved / "again.json").read_text() == first
    # a new finding fails the gate; only it is reported
    copy_run("rl103-lr-x1000-nan", project / "logs" / "exp-b" / "nan")
    code, out, _ = check(project, "logs", "--baseline", "b.json", "--config", cfg, "-f", "json")
    assert code == 1
    new = json.loads(out)["findings"]
    assert new and {f["code"] for f in new} >= {"RL103"}
    assert all("nan" in f["run"] for f in new)
    assert summary(out)["suppressed"] == 2


def test_bad_baseline_is_a_usage_error(project: Path) -> None:
    (project / "b.json").write_text('{"not": "a baseline"}')
    code, _, err = check(project, "logs", "--baseline", "b.json")
    assert code == 2 and "not a runlint baseline" in err


def test_fingerprint_ignores_message_numbers() -> None:
    def finding(message: str) -> Finding:
        return Finding("RL101", "initial-loss-off", Severity.WARNING, message, "fix", "run")

    a = fingerprints([finding("initial loss 7.1 at step 0")], "exp-a/run")
    b = fingerprints([finding("initial loss 7.3 at step 0")], "exp-a/run")
    assert a == b and a != fingerprints([finding("initial loss 7.1")], "exp-b/run")
