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


def test_generated_blocks_of_readme_and_format_md_are_fresh() -> None:
    files = docs.generated_files()
    assert {p.name for p in files} == {"README.md", "format.md"}
    for path, (now, regenerated) in files.items():
        assert now == regenerated, f"{path} is stale: run python -m runlint.docs --write"
    assert docs.main(["--check"]) == 0


def test_format_md_follows_the_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    from runlint.schema import layout, meta, tables

    (now, _) = docs.generated_files()[docs.ROOT / "docs" / "format.md"]
    for table in tables.TABLES.values():
        assert f"### `{table.name}`" in now
        assert all(f"| `{c.name}` | {c.type} |" in now for c in table.columns)
    assert all(f"| `{k}` |" in now for k in meta.META)
    assert f"(version {layout.FORMAT_VERSION})" in now.splitlines()[1]
    key = meta.MetaKey("warmup_steps", "int ≥ 1", "steps of learning-rate warm-up", flag="Warm-up.")
    monkeypatch.setitem(meta.META, key.name, key)
    _, regenerated = docs.generated_files()[docs.ROOT / "docs" / "format.md"]
    assert "| `warmup_steps` | int ≥ 1 | steps of learning-rate warm-up | `--warmup-steps`" in (
        regenerated
    )
    _, readme = docs.generated_files()[docs.ROOT / "README.md"]
    assert "| `--warmup-steps N` | warm-up (`warmup-steps` in `[tool.runlint]`)" in readme


def test_generated_blocks_must_all_be_there_and_known() -> None:
    blocks = {"a": lambda: "A"}
    text = "x\n<!-- generated: a -->\nold\n<!-- end -->\ny\n"
    assert docs.render_blocks(text, blocks) == "x\n<!-- generated: a -->\nA\n<!-- end -->\ny\n"
    with pytest.raises(ValueError, match="no generated block a"):
        docs.render_blocks("x\n", blocks, "F.md")
    with pytest.raises(ValueError, match="unknown generated block 'b'"):
        docs.render_blocks(text.replace(": a", ": b"), blocks, "F.md")
