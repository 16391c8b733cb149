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
from helpers_cli import invoke
from helpers_rules import SECTIONS
from test_loader_synth import write_run

from runlint.check import engine
from runlint.check.rule import Finding, Rule
from runlint.run import Run


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
        result = invoke("check", *args)
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
    code, out, _ = check("logs", cwd=project)
    assert code == 0 and "RL103 warning d" in out
    assert check("logs", "--fail-on", "warning", cwd=project)[0] == 1
    assert check(str(project / "logs"), "--fail-on", "warning", cwd=project / "logs")[0] == 1


def test_a_config_dropped_into_the_log_folder_does_not_switch_the_gate_off(
    tmp_path: Path,
) -> None:
    project = tmp_path / "proj"
    run = write_run(project / "logs" / "d", steps=20, loss=np.r_[np.ones(10), np.full(10, np.nan)])
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n')
    off = '[tool.runlint]\nignore = ["ALL"]\nexit-zero = true\n'
    (project / "logs" / "pyproject.toml").write_text(off)
    (run / "pyproject.toml").write_text(off)
    (run / "runlint.toml").write_text('ignore = ["ALL"]\n')
    (project / "logs" / "sub").mkdir()
    (project / "logs" / "sub" / "runlint.toml").write_text('ignore = ["ALL"]\n')
    code, out, _ = check("logs", "--select", "RL103", cwd=project)  # from the project
    assert code == 1 and "RL103 error d" in out
    # a checked folder may be the project itself (`runlint check .`), but no folder below it
    # nor inside a run is one
    (project / "logs" / "pyproject.toml").unlink()
    for cwd, path in ((project / "logs" / "sub", ".."), (run, ".")):
        code, out, _ = check(path, "--select", "RL103", cwd=cwd)
        assert code == 1 and "RL103 error" in out


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
    code, out, err = check(str(bad), str(corpus / "runs" / "healthy"))
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]  # errors: stderr
    assert len(lines) == 1 and "meta.json is not valid JSON" in lines[0] and "bad" in lines[0]
    assert "healthy" in out and "error:" not in out and "1 unreadable run" in out


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
    code, out, err = check(str(corpus / "runs"), "--select", "RL103,RL999")
    assert code == 2 and "rule RL999 boom crashed on diverged: RuntimeError: kaput" in err
    assert "RL103 error diverged" in out


def test_rules_catalog_and_rule_docs() -> None:
    result = invoke("rules")
    assert result.exit_code == 0 and "RL103" in result.stdout and "non-finite-loss" in result.stdout
    md = invoke("rules", "--format", "markdown").stdout.splitlines()
    assert md[0].startswith("| code |") and any(line.startswith("| RL103 |") for line in md)
    doc = invoke("rule", "RL103")
    assert doc.exit_code == 0 and "Why it matters" in doc.stdout and "columns = " in doc.stdout
    assert "[tool.runlint.RL103]" in doc.stdout and "tuple[str, ...]" in doc.stdout
    assert invoke("rule", "non-finite-loss").exit_code == 0
    bad = invoke("rule", "RL10")
    assert bad.exit_code == 2 and "unknown rule" in bad.stderr


def test_usage_error_is_exit_2(corpus: Path) -> None:
    assert check(str(corpus), "--fail-on", "fatal")[0] == 2
    assert check(str(corpus), "--format", "xml")[0] == 2
    assert check(str(corpus), "--jobs", "-1")[0] == 2


def test_version() -> None:
    result = invoke("--version")
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
        proc.returncode == 2 and "no runs found" in proc.stderr and "Traceback" not in proc.stderr
    )


def test_subprocess_exit_codes_and_streams_match_in_process(corpus: Path) -> None:
    """``python -m runlint`` (fast exit after flushing) prints what ``invoke`` prints."""
    for args in (
        ["--select", "RL103"],
        ["--format", "json", "--select", "RL103,RL1", "--jobs", "2"],
        ["--exit-zero", "--select=RL103"],
        ["-v", "--fail-on", "error", "--ignore", "RL2", "--ignore", "RL5", "--num-classes", "3"],
        ["--format", "junit", "-f", "github"],
    ):
        proc = _run("check", str(corpus / "runs"), *args)
        code, out, _ = check(str(corpus / "runs"), *args)
        assert (proc.returncode, proc.stdout) == (code, out), args


def test_help_lists_every_flag_and_bad_values_are_one_error_line(corpus: Path) -> None:
    from runlint.cli.check import check_flags

    result = invoke("check", "--help")
    assert result.exit_code == 0 and result.stdout.startswith("usage: runlint check")
    for flag in check_flags():
        assert all(name in result.stdout for name in flag.names if name.startswith("-"))
    for argv in ([str(corpus), "--jobs", "-1"], [str(corpus), "--fail-on", "x"]):
        bad = invoke("check", *argv)
        assert bad.exit_code == 2 and bad.stdout == ""
        assert bad.stderr.startswith("runlint: error: ") and bad.stderr.count("\n") == 1
    assert invoke().exit_code == 2 and "commands:" in invoke("--help").stdout


def test_unknown_option_or_command_gets_a_did_you_mean(corpus: Path) -> None:
    result = invoke("check", str(corpus), "--fail-of", "error")
    assert result.exit_code == 2 and "unknown option '--fail-of'; did you mean '--fail-on'" in (
        result.stderr
    )
    result = invoke("chek", str(corpus))
    assert result.exit_code == 2 and "did you mean 'check'" in result.stderr


def test_metadata_flags_are_checked_by_the_schema(corpus: Path) -> None:
    runs = str(corpus / "runs" / "healthy")
    for flag, value, message in (
        ("--num-classes", "0", "must be a positive integer"),
        ("--num-classes", "ten", "must be a positive integer"),
        ("--loss", "", "must be a non-empty string"),
    ):
        code, out, err = check(runs, flag, value)
        assert code == 2 and out == "" and flag in err and message in err
    assert check(runs, "--select", "RL103", "--num-classes", "10", "--loss", "mse")[0] == 0


def test_a_new_metadata_key_with_a_flag_is_a_flag_and_a_config_key(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runlint.check.config import ConfigError, parse_config
    from runlint.schema import meta

    def steps(value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise meta.MetaValueError(f"expected an integer ≥ 1, got {value!r}")
        return value

    key = meta.MetaKey(
        "accumulation_steps",
        "int ≥ 1",
        "micro-batches per optimizer step",
        steps,
        flag="Gradient-accumulation steps, for runs that lack it.",
    )
    monkeypatch.setitem(meta.META, key.name, key)

    class Accumulated(Rule):
        __doc__ = "Reports the accumulation steps." + SECTIONS

        code = "RL998"
        name = "accumulated"
        requires = ("meta.accumulation_steps",)

        def check(self, run: Run) -> Iterator[Finding]:
            yield self.finding(run, f"accumulation {run.meta['accumulation_steps']!r}")

    real = engine.discover()
    monkeypatch.setattr(engine, "discover", lambda: engine.Catalog((*real.rules, Accumulated)))

    help_text = invoke("check", "--help").stdout
    assert "--accumulation-steps N" in help_text and "Gradient-accumulation steps" in help_text
    runs = str(corpus / "runs" / "healthy")
    code, out, _ = check(runs, "--select", "RL998", "--accumulation-steps", "4")
    assert code == 1 and "accumulation 4" in out
    code, _, err = check(runs, "--select", "RL998", "--accumulation-steps", "0")
    assert code == 2 and "--accumulation-steps: must be a positive integer" in err
    code, out, _ = check(runs, "--select", "RL998", "-v")
    assert code == 0 and "pass --accumulation-steps" in out

    assert parse_config({"accumulation-steps": 2}).meta == {"accumulation_steps": 2}
    with pytest.raises(ConfigError, match="accumulation-steps must be a positive integer"):
        parse_config({"accumulation_steps": 0})
    with pytest.raises(ConfigError, match="did you mean 'accumulation-steps'"):
        parse_config({"accumulation-step": 2})
    cfg = tmp_path / "runlint.toml"
    cfg.write_text("accumulation-steps = 8\n")
    code, out, _ = check(runs, "--select", "RL998", "--config", str(cfg))
    assert code == 1 and "accumulation 8" in out


def test_a_metadata_flag_may_not_shadow_a_check_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    from runlint.cli.check import check_flags
    from runlint.schema import meta

    key = meta.MetaKey("config", "string", "a key named like a flag", flag="Shadows --config.")
    monkeypatch.setitem(meta.META, key.name, key)
    with pytest.raises(ValueError, match="--config is already a flag"):
        check_flags()
