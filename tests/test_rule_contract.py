"""A rule is checked when it is defined: a mistake is one sentence naming its file."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runlint.check import Rule, engine
from runlint.run import Run

DOC = '''"""Summary.

    ## Why it matters
    x

    ## Known problems
    x

    ## Fix
    Do y.

    ## Seed
    "z"
    """'''

GOOD = f"""
from dataclasses import dataclass
from runlint.check import Rule, Severity, option

class Sample(Rule):
    {DOC}
    code = "RL990"
    name = "sample-rule"
    severity = Severity.WARNING
    requires = ("steps.loss",)

    @dataclass
    class Options:
        limit: float = option(1.0, "the limit")

    def check(self, run):
        yield self.finding(run, "observed")
"""

MISTAKES = {
    "no name": ('    name = "sample-rule"\n', "", "name must be kebab-case"),
    "bad code": ('code = "RL990"', 'code = "R990"', "code must be 'RL' and three digits"),
    "typo in requires": ('"steps.loss"', '"steps.los"', "'steps' has no column 'los'"),
    "unknown meta key": ('"steps.loss"', '"meta.num_clases"', "did you mean 'meta.num_classes'"),
    "option without help": (
        'option(1.0, "the limit")',
        "1.0",
        "option 'limit' has no help",
    ),
    "missing section": ("    ## Known problems\n    x\n\n", "", "lacks '## Known problems'"),
    "no check": ("    def check(self, run):", "    def other(self, run):", "check(run)"),
}


def _package(tmp_path: Path) -> str:
    """A package name of its own per test (imported modules stay cached by name)."""
    return "rlpkg_" + "".join(c if c.isalnum() else "_" for c in tmp_path.name)


def _catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> engine.Catalog:
    """The catalog of a fresh package holding one rule module (``rl990_sample.py``)."""
    name = _package(tmp_path)
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "rl990_sample.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    return engine.discover.__wrapped__(name)


def test_a_well_formed_rule_is_discovered_with_its_fix_from_its_docs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = _catalog(tmp_path, monkeypatch, GOOD)
    assert catalog.errors == ()
    (rule,) = catalog.rules
    assert rule.default_fix == "Do y."
    assert [f.help for f in engine.option_fields(rule)] == ["the limit"]


@pytest.mark.parametrize("mistake", MISTAKES, ids=list(MISTAKES))
def test_a_broken_rule_is_one_sentence_naming_its_file(
    mistake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new, says = MISTAKES[mistake]
    assert old in GOOD
    catalog = _catalog(tmp_path, monkeypatch, GOOD.replace(old, new))
    assert catalog.rules == ()
    (error,) = catalog.errors
    assert error.split(": ")[:2] == [f"{_package(tmp_path)}/rl990_sample.py", "Sample"], error
    assert says in error and "\n" not in error


@pytest.mark.parametrize("rule", engine.discover().rules, ids=lambda r: r.code)
def test_shipped_rules_declare_their_data_instead_of_overriding_missing(rule: type[Rule]) -> None:
    assert rule.missing is Rule.missing, f"{rule.code} overrides missing(): use requires/any_of"
    assert rule.default_fix, rule.code


def test_the_rule_template_is_a_valid_rule_that_fires_on_a_rising_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = Path(__file__).resolve().parents[1] / "docs" / "rule_template.py"
    catalog = _catalog(tmp_path, monkeypatch, template.read_text())
    assert catalog.errors == ()
    (rule,) = catalog.rules
    loss = pd.Series(np.linspace(1.0, 2.0, 200), index=pd.RangeIndex(200, name="step"))
    run = Run(tmp_path / "run", steps=loss.to_frame("loss"))
    (finding,) = rule().check(run)
    assert (
        finding.fix
        == rule.default_fix
        == "Lower the learning rate ×0.1 and check the data pipeline."
    )
    assert list(rule().check(Run(tmp_path / "run", steps=(3 - loss).to_frame("loss")))) == []


def test_the_explained_by_graph_names_catalog_rules_and_has_no_cycle() -> None:
    catalog = engine.discover()
    graph = {rule.code: set(rule.explained_by) for rule in catalog.rules}
    assert set().union(*graph.values()) <= set(graph)
    done: set[str] = set()

    def visit(code: str, path: tuple[str, ...]) -> None:
        assert code not in path, f"cycle: {' → '.join((*path, code))}"
        if code not in done:
            for cause in graph[code]:
                visit(cause, (*path, code))
            done.add(code)

    for code in graph:
        visit(code, ())
