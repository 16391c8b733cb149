"""``runlint sweep``: check's report formats, exit codes and ``[tool.runlint]``; the sweep
rules' contract and their separate catalog."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from helpers_cli import invoke
from helpers_sweep import optuna_study

from runlint.check import RuleDefinitionError, engine
from runlint.docs import rule_page, rule_text
from runlint.sweep import SweepRule, discover

optuna = pytest.importorskip("optuna", reason="the sweep CLI tests read Optuna studies")


def linear(trial: Any) -> dict[str, float]:
    return {
        "lr": trial.suggest_float("lr", 1e-6, 1e-1),  # linear over five decades: RL801
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
    }


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    optuna_study(root / "study.db", linear, trials=32, epochs=2)
    return root / "study.db"


def test_findings_exit_1_and_the_gate_flags_work(study: Path) -> None:
    result = invoke("sweep", str(study))
    assert result.exit_code == 1, result.output
    assert "RL801 warning study.db (linear-scale-search)" in result.stdout
    assert "in a search of 32 trials (32 with a result)" in result.stdout
    assert invoke("sweep", str(study), "--exit-zero").exit_code == 0
    assert invoke("sweep", str(study), "--fail-on", "error").exit_code == 0
    assert invoke("sweep", str(study), "--ignore", "RL801,RL802").exit_code == 0
    only = invoke("sweep", str(study), "--select", "best-on-border", "-f", "json")
    assert {f["code"] for f in json.loads(only.stdout)["findings"]} <= {"RL802"}


@pytest.mark.parametrize("fmt", ["json", "github", "sarif", "junit"])
def test_every_report_format_of_check_writes_a_search(study: Path, fmt: str) -> None:
    result = invoke("sweep", str(study), "--format", fmt)
    assert result.exit_code == 1, result.output
    out = result.stdout
    if fmt == "json":
        doc = json.loads(out)
        assert doc["version"] == 1 and doc["runs"][0]["status"] == "ok"
        assert doc["findings"][0]["code"] == "RL801" and doc["search"]["best"] is not None
        assert doc["summary"]["exit_code"] == 1
    elif fmt == "github":
        assert "::warning file=" in out and "title=RL801 linear-scale-search::" in out
    elif fmt == "sarif":
        run = json.loads(out)["runs"][0]
        assert "RL801" in [r["id"] for r in run["tool"]["driver"]["rules"]]
        assert run["results"][0]["ruleId"] == "RL801"
    else:
        root = ET.fromstring(out.split("\n", 1)[1])
        assert int(root.get("failures", "0")) >= 1
        assert any("RL801" in (c.get("name") or "") for c in root.iter("testcase"))


def test_sweep_rules_are_configured_in_pyproject_and_check_never_sees_them(
    study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "proj"
    folder.mkdir()
    monkeypatch.chdir(folder)  # the config is the project's: found from the working directory
    db = folder / "study.db"
    db.write_bytes(study.read_bytes())
    (folder / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [tool.runlint]
            ignore = ["RL802"]
            [tool.runlint.RL801]
            severity = "info"
            min-trials = 10
            [tool.runlint.sweep]
            direction = "min"
            """
        )
    )
    result = invoke("sweep", f"sqlite:///{db}", "-f", "json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 0, result.output
    assert [(f["code"], f["severity"]) for f in doc["findings"]] == [("RL801", "info")]
    # runlint check reads the same pyproject: the RL8xx table is not "an unknown rule" there
    run = Path(__file__).resolve().parents[1] / "fixtures" / "corpus" / "spiral-mlp-sgd-momentum"
    checked = invoke("check", str(run), "--config", str(folder / "pyproject.toml"))
    assert checked.exit_code == 0, checked.output


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[tool.runlint.sweep]\nobjetive = 'val_loss'", "did you mean 'objective'"),
        ("[tool.runlint.RL899]\nx = 1", "unknown sweep rule [tool.runlint.RL899]"),
        ("[tool.runlint.RL802]\nedges = 0.2", "did you mean 'edge'"),
        ("[tool.runlint]\nselect = ['best-on-bordr']", "did you mean 'best-on-border'"),
    ],
)
def test_a_bad_sweep_config_is_exit_2_with_one_line(
    study: Path, tmp_path: Path, table: str, message: str
) -> None:
    config = tmp_path / "runlint.toml"
    config.write_text(table + "\n")
    result = invoke("sweep", str(study), "--config", str(config))
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_an_unreadable_source_is_exit_2_and_the_others_are_still_linted(
    study: Path, tmp_path: Path
) -> None:
    result = invoke(
        "sweep", str(study), "nosuch://bucket/runs", str(tmp_path / "missing"), "-f", "json"
    )
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    errors = [r["error"] for r in doc["runs"] if r["status"] == "error"]
    assert len(errors) == 2 and any("unsupported URL scheme 'nosuch'" in e for e in errors)
    assert any(f["code"] == "RL801" for f in doc["findings"])


def test_a_crashing_sweep_rule_is_reported_and_hides_no_other(
    study: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rule = discover().get("RL803")
    assert rule is not None

    def boom(self: Any, search: Any) -> Any:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(rule, "check", boom)
    result = invoke("sweep", str(study), "-f", "json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 2
    assert doc["summary"]["rule_errors"][0]["code"] == "RL803"
    assert any(f["code"] == "RL801" for f in doc["findings"])


def test_the_two_catalogs_never_mix() -> None:
    run_codes = set(engine.discover().codes)
    sweep_codes = set(discover().codes)
    assert sweep_codes == {f"RL80{i}" for i in range(1, 8)}
    assert not run_codes & sweep_codes and not any(c.startswith("RL8") for c in run_codes)


def test_a_sweep_rule_is_checked_when_it_is_defined() -> None:
    with pytest.raises(RuleDefinitionError, match="a sweep rule's code is RL8"):

        class Wrong(SweepRule):  # a run rule's family
            """Summary.

            ## Why it matters
            x

            ## Known problems
            x

            ## Fix
            y

            ## Seed
            z
            """

            code = "RL299"
            name = "wrong-family"

            def check(self, search: Any) -> Any:
                yield from ()

    with pytest.raises(RuleDefinitionError, match=r"requires 'curve'.*did you mean 'curves'"):

        class Typo(SweepRule):
            """Summary.

            ## Why it matters
            x

            ## Known problems
            x

            ## Fix
            y

            ## Seed
            z
            """

            code = "RL899"
            name = "typo"
            requires = ("curve",)

            def check(self, search: Any) -> Any:
                yield from ()


@pytest.mark.parametrize("rule", discover().rules, ids=lambda r: r.code)
def test_each_sweep_rule_page_renders_with_its_options(rule: type[SweepRule]) -> None:
    page = rule_page(rule)  # type: ignore[arg-type]
    assert page.summary and page.section("Fix") and page.section("Seed")
    assert all(o.help for o in page.options)
    assert "[tool.runlint." + rule.code + "]" in rule_text(page)


def test_rule_and_rules_know_the_sweep_rules() -> None:
    explained = invoke("rule", "best-on-border")
    assert explained.exit_code == 0 and "RL802 best-on-border" in explained.stdout
    listed = invoke("rules", "--format", "json")
    assert "RL805" in [r["code"] for r in json.loads(listed.stdout)]
