"""Documentation rendered from the code: rule pages, the catalog."""

from __future__ import annotations

import json

import pytest

from runlint import docs
from runlint.check import engine
from runlint.check.rule import DOC_SECTIONS, Rule

CATALOG = engine.discover()


@pytest.mark.parametrize("rule", CATALOG.rules, ids=lambda r: r.code)
def test_each_rule_page_renders_its_sections_and_options_with_help(rule: type[Rule]) -> None:
    page = docs.rule_page(rule)
    assert page.summary == engine.rule_summary(rule)
    assert [t for t, _ in page.sections if t in DOC_SECTIONS] == list(DOC_SECTIONS)
    fields = engine.option_fields(rule)
    assert [o.name for o in page.options] == [f.name.replace("_", "-") for f in fields] + [
        "severity"
    ]
    markdown, text = docs.rule_markdown(page), docs.rule_text(page)
    for f in fields:
        help_text = " ".join(f.help.split())
        assert help_text in text
        assert help_text.replace("|", "\\|") in " ".join(markdown.split())
    for title in DOC_SECTIONS:
        assert f"## {title}" in markdown and f"## {title}" in text
    for need in rule.needs:
        assert str(need) in text and f"`{need}`" in markdown
    assert (
        f"[tool.runlint.{rule.code}]" in markdown and f'severity = "{rule.severity.value}"' in text
    )


def test_a_rule_page_shows_an_example_finding_from_its_bad_fixture() -> None:
    rule = CATALOG.get("RL103")
    assert rule is not None
    page = docs.rule_page(rule, example=True)
    assert page.example is not None and page.example.finding.code == "RL103"
    assert "fixtures/corpus" in page.example.run.replace("\\", "/")
    text = docs.rule_text(page)
    assert "Example (fixture " in text and f"  fix: {page.example.finding.fix}" in text
    assert "```text\nRL103 " in docs.rule_markdown(page)


def test_catalog_formats_agree() -> None:
    rows = json.loads(docs.render_catalog(CATALOG.rules, "json"))
    assert [r["code"] for r in rows] == CATALOG.codes
    markdown = docs.render_catalog(CATALOG.rules, "markdown").splitlines()
    assert markdown[0] == "| code | name | severity | what it catches | needs |"
    assert len(markdown) == 2 + len(CATALOG.rules)
    text = docs.render_catalog(CATALOG.rules, "text", width=200)
    assert all(r["code"] in text and r["name"] in text for r in rows)
    with pytest.raises(ValueError, match="unknown catalog format"):
        docs.render_catalog(CATALOG.rules, "html")
