"""``runlint check`` / ``rules`` / ``rule``: exit codes, flags, config, bad input, subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers_rules import SECTIONS
from test_loader_synth import write_run
from typer.testing import CliRunner

from runlint.check import engine
from runlint.check.rule import Finding, Rule
from runlint.cli import app
from runlint.run import Run

runner = CliRunner()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    loss = np.linspace(2.3, 0.5, 60)
    write_run(root / "runs" / "healthy", steps=60, loss=loss)
    nan = loss.copy()
    nan[40:] = np.nan
    write_run(root / "runs" / "diverged", steps=60, loss=nan)
    (root / "empty").mkdir()
    (root / "unrelated").mkdir()
    (root / "unrelated" / "notes.txt").write_text("not a run")
    return root


def check(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = runner.invoke(app, ["check", *args])
    finally:
        os.chdir(old)
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def test_clean_run_exits_0(corpus: Path) -> None:
    code, out, _ = check(str(corpus / "runs" / "healthy"), "--select", "RL103")
    assert code == 0 and "0 findings" in out


def test_findings_exit_1_and_fail_on_exit_zero(corpus: Path) -> None:
    runs = str(corpus / "runs")
    code, out, _ = check(runs, "--select", "RL103")
    assert code == 1 and "RL103 error diverged" in out and "fix:" in out
    assert check(runs, "--select", "RL103", "--exit-zero")[0] == 0
    assert check(runs, "--select", "RL103", "--fail-on", "error")[0] == 1
    assert check(runs, "--ignore", "RL1,RL2,RL3,RL4,RL5")[0] == 0


def test_per_rule_severity_from_pyproject_found_above_the_runs(
    corpus: Path, tmp_path: Path
) -> None:
    project = tmp_path / "proj"
    (project / "logs").mkdir(parents=True)
    write_run(project / "logs" / "d", steps=20, loss=np.r_[np.ones(10), np.full(10, np.inf)])
    (project / "pyproject.toml").write_text(
        '[tool.runlint]\nselect = ["RL103"]\nfail-on = "error"\n'
        '[tool.runlint.RL103]\nseverity = "warning"\n'
    )
    code, out, _ = check(str(project / "logs"))
    assert code == 0 and "RL103 warning d" in out
    assert check(str(project / "logs"), "--fail-on", "warning")[0] == 1


def test_bad_config_is_exit_2_with_one_line(tmp_path: Path, corpus: Path) -> None:
    cfg = tmp_path / "runlint.toml"
    cfg.write_text('[tool.runlint]\nfail_onn = "error"\n')
    code, out, err = check(str(corpus / "runs"), "--config", str(cfg))
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "did you mean 'fail-on'" in err
    code, _, err = check(str(corpus / "runs"), "--select", "RL1O3")
    assert code == 2 and "unknown rule selector 'RL1O3'" in err and "RL103" in err


@pytest.mark.parametrize(
    ("sub", "message"),
    [
        ("missing", "no such file or directory"),
        ("empty", "no runs found"),
        ("unrelated", "no runs found"),
    ],
)
def test_bad_paths_are_exit_2_and_others_still_checked(
    corpus: Path, sub: str, message: str
) -> None:
    code, out, _ = check(
        str(corpus / sub), str(corpus / "runs"), "--format", "json", "--select", "RL103"
    )
    doc = json.loads(out)
    assert code == 2
    assert doc["runs"][0]["status"] == "error" and message in doc["runs"][0]["error"]
    assert [f["code"] for f in doc["findings"]] == ["RL103"]


def test_unreadable_run_among_good_ones(corpus: Path, tmp_path: Path) -> None:
    bad = write_run(tmp_path / "bad", steps=10)
    (bad / "meta.json").write_text("{")
    code, out, _ = check(str(bad), str(corpus / "runs" / "healthy"))
    assert code == 2
    lines = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "meta.json is not valid JSON" in lines[0] and "bad" in lines[0]
    assert "healthy" in out


def test_output_file_and_verbose(corpus: Path, tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    code, out, _ = check(str(corpus / "runs"), "--format", "json", "-o", str(target))
    assert out == "" and json.loads(target.read_text())["version"] == 1 and code in (1, 2)
    code, out, _ = check(str(corpus / "runs" / "healthy"), "-v", "--select", "RL103")
    assert "ran 1 rules: RL103" in out


def test_crashing_rule_is_reported_and_exits_2(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Boom(Rule):
        __doc__ = "Crashes." + SECTIONS

        code = "RL999"
        name = "boom"

        def check(self, run: Run) -> Iterator[Finding]:
            raise RuntimeError("kaput")

    real = engine.discover()
    monkeypatch.setattr(engine, "discover", lambda: engine.Catalog((*real.rules, Boom)))
    code, out, _ = check(str(corpus / "runs"), "--select", "RL103,RL999")
    assert code == 2 and "rule RL999 boom crashed on diverged: RuntimeError: kaput" in out
    assert "RL103 error diverged" in out


def test_rules_catalog_and_rule_docs() -> None:
    result = runner.invoke(app, ["rules"])
    assert result.exit_code == 0 and "RL103" in result.stdout and "non-finite-loss" in result.stdout
    md = runner.invoke(app, ["rules", "--format", "markdown"]).stdout.splitlines()
    assert md[0].startswith("| code |") and any(line.startswith("| RL103 |") for line in md)
    doc = runner.invoke(app, ["rule", "RL103"])
    assert doc.exit_code == 0 and "Why it matters" in doc.stdout and "columns = " in doc.stdout
    assert "[tool.runlint.RL103]" in doc.stdout and "tuple[str, ...]" in doc.stdout
    assert runner.invoke(app, ["rule", "non-finite-loss"]).exit_code == 0
    bad = runner.invoke(app, ["rule", "RL10"])
    assert bad.exit_code == 2 and "unknown rule" in bad.stderr


def test_usage_error_is_exit_2(corpus: Path) -> None:
    assert check(str(corpus), "--fail-on", "fatal")[0] == 2
    assert check(str(corpus), "--format", "xml")[0] == 2
    assert check(str(corpus), "--jobs", "-1")[0] == 2


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("runlint 0.")


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runlint", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_subprocess_exit_codes_and_streams(corpus: Path) -> None:
    proc = _run("check", str(corpus / "runs"), "--select", "RL103", "--format", "github")
    assert proc.returncode == 1 and proc.stderr == ""
    assert (
        proc.stdout.startswith("::error file=") and "title=RL103 non-finite-loss::" in proc.stdout
    )
    proc = _run("check", str(corpus / "empty"))
    assert (
        proc.returncode == 2 and "no runs found" in proc.stdout and "Traceback" not in proc.stderr
    )


def test_fast_parser_has_exactly_the_typer_flags() -> None:
    import typer.main

    from runlint.cli import fast_parser

    command = typer.main.get_command(app).commands["check"]  # type: ignore[attr-defined]
    typer_flags = {opt for p in command.params for opt in p.opts if opt.startswith("-")}
    fast_flags = {opt for a in fast_parser()._actions for opt in a.option_strings}
    assert fast_flags == typer_flags


@pytest.mark.parametrize(
    "args",
    [
        ["--select", "RL103"],
        ["--format", "json", "--select", "RL103,RL1", "--jobs", "2"],
        ["--exit-zero", "--select=RL103"],
        ["-v", "--fail-on", "error", "--ignore", "RL2", "--ignore", "RL5", "--num-classes", "3"],
        ["--format", "junit", "-f", "github"],
    ],
)
def test_fast_path_behaves_like_typer(
    corpus: Path,
    args: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from runlint.cli import fast_check

    fast = fast_check([str(corpus / "runs"), *args])
    fast_out = capsys.readouterr().out
    code, typer_out, _ = check(str(corpus / "runs"), *args)
    assert fast is not None and (fast, fast_out) == (code, typer_out)


def test_fast_path_leaves_help_and_bad_values_to_typer(corpus: Path) -> None:
    from runlint.cli import fast_check

    for argv in (["--help"], [str(corpus), "--jobs", "-1"], [str(corpus), "--fail-on", "x"], []):
        assert fast_check(argv) is None
