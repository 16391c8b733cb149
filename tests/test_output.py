"""Terminal and CI output: text wrapped by rich at the terminal's width, errors on stderr, runs
named by their path relative to the checked path, GitHub annotations on a file, ``--quiet``,
``--statistics`` and ``--output-format``."""

from __future__ import annotations

import io
import json
import re
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from helpers_cli import ROOT, check_in, invoke
from rich.cells import cell_len
from test_discovery import LOSSES, events
from test_importers import _state

from runlint import cli

CORPUS = ROOT / "fixtures" / "corpus"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs both named version_0, a run with two findings, and one unreadable run."""
    root = tmp_path_factory.mktemp("out") / "logs"
    shutil.copytree(CORPUS / "rl101-last-layer-x50", root / "exp-a" / "version_0")
    shutil.copytree(CORPUS / "rl101-cnn-last-layer-x30", root / "exp-b" / "version_0")
    bad = shutil.copytree(CORPUS / "spiral-mlp-sgd-momentum", root / "exp-c" / "broken")
    (bad / "meta.json").write_text("{")
    return root


run = check_in


def test_runs_are_named_relative_to_the_checked_path_and_errors_go_to_stderr(
    logs: Path,
) -> None:
    code, out, err = run(logs.parent, "logs", "--select", "RL101")
    assert code == 2  # findings, and an unreadable run
    assert "RL101 warning exp-a/version_0 (initial-loss-off)" in out
    assert "RL101 warning exp-b/version_0 (initial-loss-off)" in out
    assert "error:" not in out and "1 unreadable run" in out
    assert (
        [line for line in err.splitlines() if line.startswith("error: ")]
        == [line for line in err.splitlines() if "exp-c/broken" in line]
        != []
    )
    code, out, _ = run(logs.parent, "logs", "--select", "RL101", "--output-format", "github")
    assert "::hf-out" not in out and "::exp-a/version_0: initial loss" in out
    assert "::exp-b/version_0: initial loss" in out
    assert "file=logs/exp-a/version_0/meta.json" in out


def test_text_wraps_at_80_columns_on_a_terminal(
    logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.chdir(logs.parent)
    out = Terminal()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        cli.invoke(["check", "logs/exp-a", "--select", "RL101,RL104"])
    lines = ANSI.sub("", out.getvalue()).splitlines()
    assert max(cell_len(line) for line in lines) <= 80
    assert all(line == line.rstrip() for line in lines)
    message = [i for i, line in enumerate(lines) if line.lstrip().startswith("initial loss 7.1")]
    assert message, lines
    first, then = lines[message[0]], lines[message[0] + 1]
    indent = len(first) - len(first.lstrip())
    assert indent >= 2 and then.startswith(" " * (indent + 2)) and then.strip(), "it hangs"
    piped = invoke("check", str(logs / "exp-a"), "--select", "RL101").stdout  # not a terminal
    assert any(len(line) > 80 for line in piped.splitlines()), "a pipe gets whole lines"


def test_quiet_and_statistics(logs: Path) -> None:
    args = ("logs/exp-a", "logs/exp-b", "--select", "RL101,RL104")
    code, out, _ = run(logs.parent, *args)
    assert code == 1 and "findings" in out and "loss ▁" not in out
    code, quiet, _ = run(logs.parent, *args, "--quiet")
    assert code == 1 and "RL101 warning" in quiet
    assert "findings (" not in quiet and "logs/exp-a/version_0  loss" not in quiet
    code, stats, _ = run(logs.parent, *args, "--statistics")
    rows = [line.split() for line in stats.splitlines()[:-1]]
    assert rows == [
        ["2", "RL101", "[warning]", "initial-loss-off"],
        ["2", "RL104", "[warning]", "init-scale-off"],
    ], stats
    assert "fix:" not in stats and stats.splitlines()[-1].startswith("4 findings")
    code, doc, _ = run(logs.parent, *args, "--statistics", "--output-format", "json")
    assert code == 1
    assert json.loads(doc) == [
        {"code": "RL101", "name": "initial-loss-off", "severity": "warning", "count": 2},
        {"code": "RL104", "name": "init-scale-off", "severity": "warning", "count": 2},
    ]
    code, _, err = run(logs.parent, *args, "--statistics", "-f", "sarif")
    assert code == 2 and "--statistics works with" in err


def test_github_annotations_point_at_the_log_file_of_imported_runs(tmp_path: Path) -> None:
    hf = tmp_path / "logs" / "hf-out" / "checkpoint-30"
    hf.mkdir(parents=True)
    hf_state = [{"loss": v, "step": s} for s, v in enumerate(LOSSES)]
    (hf / "trainer_state.json").write_text(_state(hf_state))
    pl = tmp_path / "logs" / "pl" / "version_0"
    pl.mkdir(parents=True)
    rows = "".join(f"{s},0,{v}\n" for s, v in enumerate(LOSSES))
    (pl / "metrics.csv").write_text("step,epoch,train_loss\n" + rows)
    tb = tmp_path / "logs" / "tb"
    tb.mkdir()
    (tb / "events.out.tfevents.1.h").write_bytes(events("loss", LOSSES))
    code, out, _ = run(tmp_path, "logs", "--select", "RL103", "-f", "github")
    files = re.findall(r"^::error file=([^,]+),title=RL103", out, re.M)
    assert code == 1 and sorted(files) == [
        "logs/hf-out/checkpoint-30/trainer_state.json",
        "logs/pl/version_0/metrics.csv",
        "logs/tb/events.out.tfevents.1.h",
    ]
