"""Selectors and config as a ruff user expects: a selector that selects nothing is a usage
error with a "did you mean", the config comes from the working directory whatever the order of
the paths, and ``--show-settings`` says what is in force and where it came from."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers_cli import Result, invoke
from test_loader_synth import write_run

NAN_LOSS = np.r_[np.linspace(2.3, 1.0, 30), np.full(10, np.nan)]


def run_in(cwd: Path, *args: str) -> Result:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return invoke("check", *args)
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("settings")
    write_run(root / "a" / "run", steps=40, loss=NAN_LOSS)
    write_run(root / "b" / "run", steps=40, loss=NAN_LOSS)
    return root


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--select", "RL999"), "--select: unknown rule selector 'RL999' (no rule's code starts"),
        (("--select", "RL9"), "--select: unknown rule selector 'RL9'"),
        (("--ignore", "RL1O1"), "--ignore: unknown rule selector 'RL1O1'; did you mean 'RL101'?"),
        (("--select", "dead-relux"), "did you mean 'dead-relu'?"),
        (("--select", "RL103,RL2O2"), "did you mean 'RL202'?"),
    ],
)
def test_a_selector_that_selects_no_rule_is_a_usage_error(
    logs: Path, args: tuple[str, ...], message: str
) -> None:
    result = run_in(logs, "a", *args)
    assert result.exit_code == 2 and result.stdout == ""
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_a_config_selector_that_selects_no_rule_is_a_config_error(
    logs: Path, tmp_path: Path
) -> None:
    (tmp_path / "runlint.toml").write_text('select = ["RL9"]\n')
    result = run_in(tmp_path, str(logs / "a"))
    assert result.exit_code == 2 and "unknown rule selector 'RL9'" in result.stderr
    assert "runlint.toml" in result.stderr


def test_results_do_not_depend_on_the_order_of_the_paths(logs: Path) -> None:
    (logs / "a" / "pyproject.toml").write_text('[tool.runlint]\nignore = ["ALL"]\n')
    (logs / "b" / "pyproject.toml").write_text('[tool.runlint]\nselect = ["RL103"]\n')
    one = json.loads(run_in(logs, "a", "b", "-f", "json").stdout)
    two = json.loads(run_in(logs, "b", "a", "-f", "json").stdout)
    assert len(one["findings"]) == len(two["findings"]) > 0
    assert sorted(f["code"] for f in one["findings"]) == sorted(f["code"] for f in two["findings"])


def test_show_settings_says_what_is_in_force_and_where_it_came_from(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.runlint]\nselect = ["RL1"]\n')
    (tmp_path / "runlint.toml").write_text(
        'ignore = ["RL103"]\nfail-on = "error"\nmax-bytes = "256 MiB"\n'
        'num-classes = 10\n[RL101]\nseverity = "error"\n'
    )
    result = run_in(tmp_path, "--show-settings", "--select", "RL1,RL4", "--batch-size", "32")
    assert result.exit_code == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    config = str(tmp_path / "runlint.toml")
    assert config in lines["config"] and "found from the working directory" in lines["config"]
    assert "RL1, RL4" in lines["select"] and "# --select" in lines["select"]
    assert "RL103" in lines["ignore"] and lines["ignore"].endswith(config)
    assert "error" in lines["fail-on"] and "exit-zero" in lines
    assert "268,435,456" in lines["max-bytes"] and "# default" in lines["max-rows"]
    assert "32" in lines["batch-size"] and "# --batch-size" in lines["batch-size"]
    assert "10" in lines["num-classes"] and lines["num-classes"].endswith(config)
    assert "RL101" in lines["rules"] and "RL103" not in lines["rules"] and "RL401" in lines["rules"]
    assert "severity = 'error'" in lines["RL101"] and "[tool.runlint.RL101]" in lines["RL101"]


def test_without_a_path_the_working_directory_is_checked(logs: Path) -> None:
    result = run_in(logs / "a", "--select", "RL103", "-f", "json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 1 and [r["status"] for r in doc["runs"]] == ["ok"]
