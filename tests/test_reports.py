"""Every output format: structure, JSON safety, and crashes / unreadable runs shown in each."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers_rules import SECTIONS
from test_loader_synth import write_run

from runlint.check.engine import Checker, exit_code
from runlint.check.rule import Finding, Rule, Severity
from runlint.report import FORMATS, Report, jsonable, make_reporter
from runlint.report.github import escape_data, escape_property
from runlint.report.text import sparkline
from runlint.run import Run


class Spiky(Rule):
    __doc__ = "Reports the loss with odd characters and non-finite evidence." + SECTIONS

    code = "RL905"
    name = "spiky"
    requires = ("steps.loss",)

    def check(self, run: Run) -> Iterator[Finding]:
        yield self.finding(
            run,
            "loss 100% up,\nthen: nan",
            "halve the learning rate",
            steps=(3, 9),
            where="loss",
            evidence={
                "peak": float("inf"),
                "ratio": np.float32(0.5),
                "nan": np.nan,
                "arr": np.arange(2),
            },
        )
        yield self.finding(run, "minor", "nothing", severity=Severity.INFO)


class Broken(Rule):
    __doc__ = "Crashes." + SECTIONS

    code = "RL906"
    name = "broken"

    def check(self, run: Run) -> Iterator[Finding]:
        raise KeyError("update_ratio")


class Skips(Rule):
    __doc__ = "Needs a table nobody has." + SECTIONS

    code = "RL907"
    name = "skips"
    requires = ("meta.label_smoothing",)

    def check(self, run: Run) -> Iterator[Finding]:
        yield from ()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    root = tmp_path_factory.mktemp("reports")
    good = write_run(root / "run-a", steps=40)
    bad = write_run(root / "run-b", steps=10)
    (bad / "steps-r0.parquet").write_bytes(b"junk")
    rules = [Spiky(), Broken(), Skips()]
    results = list(Checker(rules, curve=True).check([good, bad]))
    code = exit_code(results, Severity.WARNING, False)
    return Report(results, [type(r) for r in rules], Severity.WARNING, code)


def render(report: Report, fmt: str, verbose: bool = False) -> str:
    out = io.StringIO()
    reporter = make_reporter(fmt, out, verbose)
    for result in report.results:
        reporter.add(result)
    reporter.finish(report)
    return out.getvalue()


def test_json_has_the_design_shape_and_is_strict_json(report: Report) -> None:
    doc = json.loads(render(report, "json"), parse_constant=lambda c: pytest.fail(c))
    # DESIGN §3's version-1 shape, with the fields docs/json-report.md lists added
    assert set(doc) >= {"version", "runs", "findings", "summary"} and doc["version"] == 1
    assert set(doc) - {"version", "runs", "findings", "summary"} <= {"diagnoses"}
    assert [set(r) for r in doc["runs"]] == [{"path", "status", "error"}] * 2
    assert [r["status"] for r in doc["runs"]] == ["ok", "error"]
    keys = {"code", "name", "severity", "message", "fix", "run", "steps", "where", "evidence"}
    added = {"cause", "consequences", "fingerprint"}
    assert all(set(f) == keys | added for f in doc["findings"])
    first = doc["findings"][0]
    assert first["steps"] == [3, 9] and first["severity"] == "warning"
    assert first["evidence"] == {"peak": "inf", "ratio": 0.5, "nan": "nan", "arr": [0, 1]}
    summary = doc["summary"]
    assert summary["by_severity"] == {"info": 1, "warning": 1, "error": 0}
    assert summary["rule_errors"][0]["code"] == "RL906"
    assert "KeyError" in summary["rule_errors"][0]["error"]
    assert summary["skipped"][0]["code"] == "RL907" and summary["exit_code"] == 2


def test_text_reads_like_a_compiler_error(report: Report) -> None:
    text = render(report, "text", verbose=True)
    assert re.search(r"RL905 warning run-a \(spiky\)", text)
    assert "  fix: halve the learning rate" in text and "steps: 3–9" in text
    assert re.search(r"loss [▁▂▃▄▅▆▇█]{20,}", text)
    assert re.search(r"error: .*run-b: steps-r0.parquet is not a readable Parquet file", text)
    assert "rule RL906 broken crashed on run-a: KeyError" in text
    assert "skipped RL907 skips: meta.label_smoothing not recorded" in text
    assert text.rstrip().endswith(
        "2 findings (0 errors, 1 warning, 1 info) in 2 runs; 1 skipped rule; "
        "1 unreadable run; 1 rule error"
    )
    assert "skipped RL907" not in render(report, "text", verbose=False)


def test_github_lines_are_workflow_commands(report: Report) -> None:
    lines = render(report, "github").splitlines()
    commands = [line for line in lines if line.startswith("::")]
    pattern = re.compile(r"^::(error|warning|notice) (file=[^,:]+)?(,?title=[^:]+)?::\S.*$")
    assert commands and all(pattern.match(line) for line in commands)
    warning = next(line for line in commands if line.startswith("::warning"))
    assert "title=RL905 spiky::" in warning and "meta.json" in warning
    assert "loss 100%25 up,%0Athen: nan%0Afix: halve" in warning
    assert any("::notice" in line for line in commands)
    assert any(line.startswith("::error") and "RL906" in line for line in commands)
    assert any(line.startswith("::error") and "run-b" in line for line in commands)
    assert not lines[-1].startswith("::")


def test_github_escaping() -> None:
    assert escape_data("a%b\r\nc") == "a%25b%0D%0Ac"
    assert escape_property("x:y,z") == "x%3Ay%2Cz"


def test_sarif_has_required_fields(report: Report) -> None:
    doc = json.loads(render(report, "sarif"))
    assert doc["version"] == "2.1.0" and doc["$schema"].endswith("sarif-2.1.0.json")
    (run,) = doc["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "runlint"
    assert [r["id"] for r in driver["rules"]] == ["RL905", "RL906", "RL907"]
    assert all(r["help"]["text"] and r["shortDescription"]["text"] for r in driver["rules"])
    levels = [r["level"] for r in run["results"]]
    assert levels == ["warning", "note"]
    for result in run["results"]:
        assert result["ruleId"] == driver["rules"][result["ruleIndex"]]["id"]
        assert result["message"]["text"]
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri.endswith("run-a/meta.json")
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert run["invocations"][0]["executionSuccessful"] is False
    assert {n["level"] for n in notes} == {"error"} and len(notes) == 2


def test_junit_parses_with_one_suite_per_run(report: Report) -> None:
    root = ET.fromstring(render(report, "junit"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 2
    a, b = suites
    cases = {c.get("name"): c for c in a.findall("testcase")}
    assert set(cases) == {"RL905 spiky", "RL906 broken", "RL907 skips"}
    assert cases["RL905 spiky"].find("failure") is not None
    assert cases["RL906 broken"].find("error") is not None
    assert cases["RL907 skips"].find("skipped") is not None
    assert (a.get("tests"), a.get("failures"), a.get("errors"), a.get("skipped")) == (
        "3",
        "1",
        "1",
        "1",
    )
    assert b.find("testcase/error") is not None and root.get("errors") == "2"


def test_findings_below_fail_on_do_not_fail_junit(report: Report) -> None:
    strict = Report(report.results, report.rules, Severity.ERROR, report.exit_code)
    root = ET.fromstring(render(strict, "junit"))
    assert root.get("failures") == "0"
    assert "loss 100% up" in (root.findtext(".//system-out") or "")


def test_every_format_renders_an_empty_report() -> None:
    empty = Report([], [], Severity.WARNING, 0)
    for fmt in FORMATS:
        assert render(empty, fmt)


def test_sparkline_and_jsonable() -> None:
    assert sparkline([3.0, 2.0, 1.0, float("nan")]) == "█▅▁×"
    assert sparkline([1.0, 1.0]) == "▄▄"
    assert jsonable({"a": (1, float("-inf")), "b": Path("x")}) == {"a": [1, "-inf"], "b": "x"}


def test_sarif_rule_help_is_the_rule_page_for_every_rule_of_the_catalog() -> None:
    from runlint.check.engine import discover, option_fields

    catalog = discover()
    doc = json.loads(render(Report([], list(catalog.rules), Severity.WARNING, 0), "sarif"))
    rules = {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert list(rules) == catalog.codes
    for rule in catalog.rules:
        sarif = rules[rule.code]
        assert sarif["properties"]["requires"] == [str(n) for n in rule.needs]
        assert f"[tool.runlint.{rule.code}]" in sarif["help"]["markdown"]
        for f in option_fields(rule):
            assert " ".join(f.help.split()) in sarif["help"]["text"]
